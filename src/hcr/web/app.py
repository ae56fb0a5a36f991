"""The hcr web page (``hcr app``): draw or upload characters and see what the model answers.

Run with ``hcr app`` (which runs ``streamlit run`` on this file). Everything that touches
pixels or labels is the library's: images go through :class:`hcr.predictor.Predictor` and
:class:`hcr.reader.Reader` from a shared :class:`hcr.web.service.ModelRegistry`; this file
only lays out controls and results.

*Model* (sidebar): the shipped character models (``chars``, ``digits``, ``letters``), the
word/line model ``words`` (read with :class:`hcr.reader.CrnnReader`: text views only), and
model files. *Read as*: **Auto** reads each image as text first and shows the text with the
character and line boxes when it holds more than one character, else the single-character
view (answer, top-5 chart, preprocessing stages and the 28x28 model input; with ``words``
Auto is Text); **One character** (character models only) and **Text** force one view;
**Form field** reads the handwritten value of a field crop
(:meth:`hcr.reader.Reader.read_field`). Printed words are left out of the text. With
several uploads a summary table (one row per image) follows, with CSV and JSON downloads
(:func:`hcr.web.service.summary_row`).

The drawing canvas and the answer sit side by side in a wrapping row: the canvas pane has
the canvas's fixed width, the answer pane a minimum width, so where both do not fit (a
1024 px window with the sidebar open) the answer goes below the canvas instead of the
canvas being cut off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from hcr.charset import NAMED_CHARSETS
from hcr.errors import HcrError
from hcr.modelfile import TASKS
from hcr.preprocess import Preprocessed
from hcr.reading import ReadResult
from hcr.reading.char import Prediction, Predictor
from hcr.web import ENV_APP_MAX_UPLOAD_MB, ENV_APP_MODEL
from hcr.web.service import (
    DEFAULT_MAX_UPLOAD_BYTES,
    SUMMARY_COLUMNS,
    ModelRegistry,
    annotated_reading_png,
    check_upload,
    format_mb,
    stage_images,
    summary_csv,
    summary_json,
    summary_row,
)

UPLOAD_MODEL = "Upload a model file..."
ANY_CHARSET = "any"
CUSTOM_CHARSET = "custom..."
AUTO, ONE, TEXT, FIELD = "Auto", "One character", "Text", "Form field"
#: The mode a summary row names (an image that could not be read: the mode asked for).
MODE_NAMES = {AUTO: "auto", ONE: "character", TEXT: "text", FIELD: "field"}
CANVAS_SIDE = 280
CANVAS_PANE = CANVAS_SIDE + 16  # the canvas pane's fixed width (px)
ANSWER_MIN = 400  # the answer pane's minimum width (px): narrower, it goes below the canvas
TOP_K = 5
STAGE_SIDE = 112  # pixels; a multiple of 28, so the model input is shown with square pixels
STAGES_PER_ROW = 3


@dataclass(frozen=True)
class Settings:
    model: str
    task: str  # "classify" (a character model) or "sequence" (words and lines)
    charset: str | None
    ignore_case: bool
    threshold: float
    mode: str
    max_bytes: int


@st.cache_resource(show_spinner="Loading the models...")
def registry() -> ModelRegistry:
    """One registry for every session of this server: each model is loaded once."""
    return ModelRegistry(tasks=TASKS)  # character classifiers and word/line models, not the printed-or-handwritten helper


def start_model(reg: ModelRegistry) -> str:
    """The model selected when the page opens (``hcr app --model``; default: the registry's)."""
    spec = os.environ.get(ENV_APP_MODEL)
    return reg.add(spec) if spec else reg.default


def max_upload_bytes() -> int:
    try:
        return int(float(os.environ.get(ENV_APP_MAX_UPLOAD_MB, "")) * 2**20)
    except ValueError:
        return DEFAULT_MAX_UPLOAD_BYTES


# --------------------------------------------------------------------------- controls


def model_control(reg: ModelRegistry) -> str:
    """The model chooser: the shipped models, ``hcr app --model``'s, this session's uploads."""
    first = start_model(reg)
    uploads: list[str] = st.session_state.setdefault("uploaded_models", [])
    offered = [first] + [e.name for e in map(reg.entry, reg.names()) if e.source == "pretrained" and e.name != first]
    options = offered + [n for n in uploads if n not in offered] + [UPLOAD_MODEL]
    choice = st.selectbox("Model", options, key="model", help="the shipped pretrained models, or a model file of your own")
    if choice != UPLOAD_MODEL:
        return str(choice)
    file = st.file_uploader("Model file (from hcr train, or an exported model)", key="model_file")
    if file is None:
        st.info(f"Choose a model file; meanwhile the answers come from `{first}`.")
        return first
    try:
        name = reg.add_upload(file.getvalue(), file.name)
    except HcrError as e:
        st.error(f"This model file cannot be used: {e}")
        return first
    if name not in uploads:
        uploads.append(name)
    st.success(f"Using the uploaded model {file.name}.")
    return name


def charset_control() -> str | None:
    choice = st.selectbox("Allowed characters", [ANY_CHARSET, *NAMED_CHARSETS, CUSTOM_CHARSET], key="charset",
                          help="limit the answers to a set of characters (probabilities renormalised over them)")
    if choice == ANY_CHARSET:
        return None
    if choice == CUSTOM_CHARSET:
        text = st.text_input("Characters", key="charset_custom", placeholder="e.g. 0123456789ABCDEF")
        return text.strip() or None
    return str(choice)


def sidebar(reg: ModelRegistry) -> Settings:
    with st.sidebar:
        st.header("Settings")
        model = model_control(reg)
        entry = reg.entry(model)
        st.caption(entry.description)
        charset = charset_control()
        ignore_case = st.checkbox("Ignore letter case", key="ignore_case", help="o/O, s/S, ... count as one answer")
        threshold = st.slider("Rejection threshold", 0.0, 1.0, 0.5, 0.05, key="threshold",
                              help="answers less confident than this are marked uncertain")
        task = reg.task(model)
        modes = [AUTO, ONE, TEXT, FIELD] if task == "classify" else [AUTO, TEXT, FIELD]
        if st.session_state.get("mode") not in modes:  # "One character" chosen with a character model
            st.session_state["mode"] = AUTO
        mode = st.radio("Read as", modes, key="mode", horizontal=True,
                        help="Auto: text (with character boxes) when an image holds several characters, else one character; "
                             "Form field: the handwritten value of a field crop, without its printed label or neighbouring rows")
        if task == "sequence":
            st.caption(f"`{model}` reads whole words and lines, so Auto reads as text; "
                       "*One character* needs a character model (chars, digits, letters).")
    return Settings(model, task, charset, ignore_case, float(threshold), str(mode), max_upload_bytes())


def check_settings(reg: ModelRegistry, s: Settings) -> None:
    """Make (and cache) the model variant the settings ask for: a bad charset fails here, once."""
    if s.task == "sequence":
        reg.reader(s.model, charset=s.charset, ignore_case=s.ignore_case, threshold=s.threshold)
    else:
        reg.predictor(s.model, charset=s.charset, ignore_case=s.ignore_case, threshold=s.threshold)


# --------------------------------------------------------------------------- results


def show_prediction(pre: Preprocessed, pred: Prediction, settings: Settings, name: str) -> None:
    """One character: the answer, the top-5 chart and what the model saw."""
    if pred.blank or pred.label is None:
        st.warning(f"No character found in {name}: the image looks empty, or its strokes are too faint.")
    else:
        st.markdown(f"#### Answer: `{pred.label}` ({pred.confidence:.1%})")
        if pred.uncertain:
            st.warning(f"Not sure: {pred.confidence:.0%} is below the rejection threshold ({settings.threshold:.0%}); "
                       "the image may not hold a character the model knows.")
        chart = pd.DataFrame({"answer": [s for s, _ in pred.top_k], "confidence": [float(p) for _, p in pred.top_k]})
        st.bar_chart(chart, x="answer", y="confidence", horizontal=True, sort="-confidence", height=40 + 32 * len(chart))
    st.markdown("**What the model sees** (the preprocessing stages, in order)")
    stages = stage_images(pre, STAGE_SIDE)
    for row in range(0, len(stages), STAGES_PER_ROW):
        for col, (title, img) in zip(st.columns(STAGES_PER_ROW), stages[row : row + STAGES_PER_ROW]):
            col.image(img, caption=title, width=STAGE_SIDE)


def show_reading(result: ReadResult, name: str) -> None:
    """Several characters: the text, the boxes drawn on the image, each character's answers."""
    if not result.text:
        what = "only printed text" if result.printed_only else "no handwriting (a blank field)" if result.field else "no writing"
        st.warning(f"{name}: {what} found.")
    else:
        st.markdown("#### Text read")
        st.code(result.text, language=None)
        if result.uncertain:
            st.caption(f"{result.uncertain} of {len(result.characters)} characters are uncertain (orange boxes).")
    st.image(annotated_reading_png(result), caption="green: sure, orange: uncertain, blue: punctuation, purple: a line read, red: ink left out")
    if result.characters:
        rows = [{"character": c.char, "confidence": round(c.confidence, 3), "line": c.line + 1, "word": c.word + 1,
                 "box (x, y, w, h)": ", ".join(map(str, c.box)), "alternatives": "  ".join(f"{s} {p:.2f}" for s, p in c.top_k[1:4])}
                for c in result.characters]
        st.dataframe(pd.DataFrame(rows), hide_index=True)


def show_image(data: bytes, name: str, settings: Settings, reg: ModelRegistry) -> dict[str, Any]:
    """Answer for one image (a drawing or an upload), in the view the mode asks for (a word/line
    model: always the text view); returns its summary row."""
    try:
        check_upload(data, name, settings.max_bytes)
        sequence = settings.task == "sequence"
        if settings.mode != ONE or sequence:
            reader = reg.reader(settings.model, charset=settings.charset, ignore_case=settings.ignore_case, threshold=settings.threshold)
            result = reader.read(data, name=name, field=settings.mode == FIELD)
            if sequence or settings.mode in (TEXT, FIELD) or len(result.characters) > 1:
                show_reading(result, name)
                return summary_row(name, "field" if result.field else "text", result)
        predictor: Predictor = reg.predictor(settings.model, charset=settings.charset, ignore_case=settings.ignore_case, threshold=settings.threshold)
        pre = predictor.preprocess(data, stages=True, name=name)
        prediction = predictor.predict_inputs([pre], top_k=TOP_K)[0]
        show_prediction(pre, prediction, settings, name)
        return summary_row(name, "character", prediction)
    except HcrError as e:
        st.error(str(e))
        return summary_row(name, MODE_NAMES.get(settings.mode, settings.mode), error=str(e))


def draw_tab(settings: Settings, reg: ModelRegistry) -> None:
    from streamlit_drawable_canvas import st_canvas

    # a wrapping row rather than st.columns: the canvas pane keeps the canvas's width and the
    # answer pane a minimum width (CSS on the row's item that holds it, found by the pane's key
    # class), so a narrow main area (1024 px with the sidebar open) puts the answer below the
    # canvas instead of cutting the canvas off
    st.html(f"<style>.st-key-draw-row > .st-key-answer-pane, .st-key-draw-row > :has(> .st-key-answer-pane) "
            f"{{ min-width: min({ANSWER_MIN}px, 100%); }}</style>")
    with st.container(horizontal=True, gap="large", key="draw-row"):
        left = st.container(width=CANVAS_PANE, key="canvas-pane")
        right = st.container(width="stretch", key="answer-pane")
    with left:
        st.caption("Draw one character (or a few) with the mouse or a finger.")
        generation = st.session_state.setdefault("canvas_generation", 0)
        stroke = int(st.session_state.get("stroke", 18))
        drawing = st_canvas(stroke_width=stroke, stroke_color="#000000", background_color="#FFFFFF", height=CANVAS_SIDE,
                            width=CANVAS_SIDE, drawing_mode="freedraw", return_image_data=True, key=f"canvas-{generation}")
        if st.button("Clear the canvas", key="clear"):
            st.session_state["canvas_generation"] = generation + 1
            st.rerun()
        st.slider("Pen width", 6, 40, 18, key="stroke")
    with right:
        objects = (drawing.json_data or {}).get("objects") if drawing is not None else None
        data = drawing.image_bytes if objects else None
        if not data:
            st.info("The canvas is empty: draw a character on it and its answer appears here.")
            return
        show_image(data, "drawing", settings, reg)


def upload_tab(settings: Settings, reg: ModelRegistry) -> None:
    files = st.file_uploader(f"Images (PNG, JPEG, ...; up to {format_mb(settings.max_bytes)} each)", accept_multiple_files=True, key="uploads")
    if not files:
        st.info("Upload one or more images: a character, or a line or page of separately written characters.")
        return
    rows = []
    for file in files:
        st.divider()
        st.subheader(file.name)
        rows.append(show_image(file.getvalue(), file.name, settings, reg))
    if len(rows) > 1:
        show_summary(rows)


def show_summary(rows: list[dict[str, Any]]) -> None:
    """Several uploads: one row per image, and the same rows as CSV and JSON downloads."""
    st.divider()
    st.subheader("Summary")
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    st.dataframe(table, hide_index=True, key="summary")
    with st.container(horizontal=True):
        st.download_button("Download CSV", summary_csv(rows), file_name="hcr-results.csv", mime="text/csv", key="download_csv", on_click="ignore")
        st.download_button("Download JSON", summary_json(rows), file_name="hcr-results.json", mime="application/json", key="download_json", on_click="ignore")


def main() -> None:
    st.set_page_config(page_title="hcr: handwritten character recognition", layout="wide")
    reg = registry()
    try:
        settings = sidebar(reg)
        check_settings(reg, settings)
    except HcrError as e:  # a charset the model cannot answer with, a damaged model file
        st.error(str(e))
        st.stop()
    st.title("hcr: handwritten character recognition")
    st.caption(f"Model `{settings.model}`" + (f", characters `{settings.charset}`" if settings.charset else "")
               + (", case ignored" if settings.ignore_case else "") + f", threshold {settings.threshold:.2f}, read as: {settings.mode.lower()}.")
    draw, upload = st.tabs(["Draw", "Upload images"])
    with draw:
        draw_tab(settings, reg)
    with upload:
        upload_tab(settings, reg)


main()
