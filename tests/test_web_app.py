"""The Streamlit page (hcr.web.app) through streamlit.testing's AppTest, and ``hcr app``.

AppTest runs the page's script in-process and can set widgets and upload files, but cannot
draw on the canvas (a custom component): tests/test_browser.py does that in Chromium.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import handwritten, handwritten_line
from PIL import Image, ImageDraw, ImageFont
from streamlit.testing.v1 import AppTest

from hcr.cli import build_parser
from hcr.errors import HcrError
from hcr.pretrained import pretrained_path
from hcr.web import APP_PATH, ENV_APP_MAX_UPLOAD_MB, ENV_APP_MODEL, run_app, streamlit_command
from hcr.web.service import SUMMARY_COLUMNS

from helpers_train import single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
LINE_JPG = ROOT / "docs" / "images" / "line.jpg"  # "Anna 2024", handwritten
UPLOAD_MODEL = "Upload a model file..."  # the model chooser's entry (hcr.web.app.UPLOAD_MODEL; the page is not importable)


def line_png(text: str) -> bytes:
    img = handwritten_line(text)  # real handwriting (samples/): machine-drawn text is printed, and left out
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def form_png(label: str, value: str) -> bytes:
    """A scanned form field: a printed label (and a printed row cut off by the top edge),
    then a handwritten value, letters 0.6 heights apart."""
    img = Image.new("L", (520, 90), 250)
    draw = ImageDraw.Draw(img)
    draw.text((8, 38), label, font=ImageFont.load_default(size=15), fill=20)
    draw.text((8, -9), "DATE DE NAISSANCE  CLASSE", font=ImageFont.load_default(size=15), fill=20)
    arr = np.asarray(img).copy()
    x = 130
    for g in handwritten(value, 34):
        arr[28 : 28 + g.shape[0], x : x + g.shape[1]] = np.minimum(arr[28 : 28 + g.shape[0], x : x + g.shape[1]], g)
        x += g.shape[1] + int(0.6 * 34)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.delenv(ENV_APP_MODEL, raising=False)
    monkeypatch.delenv(ENV_APP_MAX_UPLOAD_MB, raising=False)
    return AppTest.from_file(str(APP_PATH), default_timeout=120)


def texts(at: AppTest) -> dict[str, list[str]]:
    return {
        "markdown": [m.value for m in at.markdown],
        "info": [m.value for m in at.info],
        "warning": [m.value for m in at.warning],
        "error": [m.value for m in at.error],
        "success": [m.value for m in at.success],
        "code": [m.value for m in at.code],
        "subheader": [m.value for m in at.subheader],
    }


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="uploads").set_value([(name, data, "application/octet-stream") for name, data in files])
    return at.run()


def test_the_page_opens_with_its_controls(page: AppTest) -> None:
    at = page.run()
    assert not at.exception
    t = texts(at)
    assert any("The canvas is empty" in s for s in t["info"])  # friendly empty-canvas message
    assert any("Upload one or more images" in s for s in t["info"])
    assert at.selectbox(key="model").options == ["chars", "digits", "letters", "words", UPLOAD_MODEL]  # not the printed helper
    assert at.selectbox(key="model").value == "chars"
    assert "digits" in at.selectbox(key="charset").options
    assert at.slider(key="threshold").value == 0.5
    assert at.radio(key="mode").options == ["Auto", "One character", "Text", "Form field"]
    assert at.button(key="clear")
    assert [t.label for t in at.tabs] == ["Draw", "Upload images"]


def test_uploads_show_answer_and_what_the_model_sees(page: AppTest) -> None:
    at = page.run()
    at.selectbox(key="model").set_value("digits").run()
    at = upload(at, ("digit_3_paper.png", (SAMPLES / "digit_3_paper.png").read_bytes()),
                ("digit_7_chalk.png", (SAMPLES / "digit_7_chalk.png").read_bytes()),
                ("blank_canvas.png", (SAMPLES / "blank_canvas.png").read_bytes()))
    assert not at.exception
    t = texts(at)
    assert t["subheader"] == ["digit_3_paper.png", "digit_7_chalk.png", "blank_canvas.png", "Summary"]  # several: a summary
    answers = [m for m in t["markdown"] if m.startswith("#### Answer:")]
    assert answers[0].startswith("#### Answer: `3`") and answers[1].startswith("#### Answer: `7`")
    assert sum("What the model sees" in m for m in t["markdown"]) == 3  # the blank one shows its stages too
    assert any("No character found in blank_canvas.png" in w for w in t["warning"])
    assert not t["error"]


def test_threshold_and_charset_controls(page: AppTest) -> None:
    at = page.run()
    at.slider(key="threshold").set_value(1.0).run()
    at = upload(at, ("digit_3_paper.png", (SAMPLES / "digit_3_paper.png").read_bytes()))
    assert any(w.startswith("Not sure:") for w in texts(at)["warning"])
    at.selectbox(key="charset").set_value("custom...").run()
    at.text_input(key="charset_custom").set_value("€").run()
    assert any("'€' is not a class of this model" in e for e in texts(at)["error"])
    at.text_input(key="charset_custom").set_value("ABC").run()
    answer = next(m for m in texts(at)["markdown"] if m.startswith("#### Answer:"))
    assert answer[len("#### Answer: `")] in "ABC"


def test_friendly_messages_for_non_images_and_large_files(page: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    at = page.run()
    at = upload(at, ("notes.txt", b"shopping list"), ("empty.png", b""))
    errors = texts(at)["error"]
    assert any("notes.txt: not an image file" in e for e in errors)
    assert any("empty.png" in e and "empty" in e for e in errors)
    monkeypatch.setenv(ENV_APP_MAX_UPLOAD_MB, "0.01")
    at = upload(at, ("digit_3_paper.png", (SAMPLES / "digit_3_paper.png").read_bytes()))
    assert any("digit_3_paper.png: the file is too large" in e and "0.01 MB" in e for e in texts(at)["error"])


def test_several_characters_are_read_as_text_with_boxes(page: AppTest) -> None:
    at = page.run()
    at.selectbox(key="model").set_value("digits").run()
    at = upload(at, ("date.png", line_png("2357")))
    t = texts(at)
    assert "#### Text read" in t["markdown"] and t["code"] == ["2357"]
    assert len(at.dataframe) == 1 and list(at.dataframe[0].value["character"]) == list("2357")
    at.radio(key="mode").set_value("One character").run()  # forced single-character view
    t = texts(at)
    assert "#### Text read" not in t["markdown"] and any(m.startswith("#### Answer:") for m in t["markdown"])


def test_the_words_model_reads_lines_and_form_fields(page: AppTest) -> None:
    at = page.run()
    at.radio(key="mode").set_value("One character").run()
    at.selectbox(key="model").set_value("words").run()
    assert not at.exception and not texts(at)["error"]
    assert at.radio(key="mode").options == ["Auto", "Text", "Form field"]  # no single-character view
    assert at.radio(key="mode").value == "Auto"  # "One character" is not kept for a word model
    assert any("One character* needs a character model" in c.value for c in at.caption)
    at = upload(at, ("line.jpg", LINE_JPG.read_bytes()))
    t = texts(at)
    assert not at.exception and not t["error"]
    assert "#### Text read" in t["markdown"] and t["code"] == ["Anna 2024"]
    assert not any(m.startswith("#### Answer:") for m in t["markdown"])
    assert list(at.dataframe[0].value["character"]) == list("Anna2024")
    # Form field: the handwritten value, without the printed label or the cut-off row
    at.radio(key="mode").set_value("Form field").run()
    at = upload(at, ("field.png", form_png("PRENOM :", "REAR")))
    t = texts(at)
    assert not at.exception and not t["error"] and len(t["code"]) == 1
    assert t["code"][0].replace(" ", "") and "NOM" not in t["code"][0].upper() and "DATE" not in t["code"][0].upper()
    # back to a character model: every view is offered again
    at.selectbox(key="model").set_value("chars").run()
    assert at.radio(key="mode").options == ["Auto", "One character", "Text", "Form field"] and at.radio(key="mode").value == "Form field"
    assert texts(at)["code"] == ["REAR"]


def test_several_uploads_get_a_summary_table_and_downloads(page: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.runtime.media_file_manager import MediaFileManager

    served: dict[str, tuple[str, bytes | str]] = {}  # file name -> (MIME type, content) of each download
    add = MediaFileManager.add

    def recording_add(self: MediaFileManager, data: bytes | str, mimetype: str, coordinates: str, file_name: str | None = None, *args: object, **kw: object) -> str:
        if file_name:
            served[file_name] = (mimetype, data)
        return add(self, data, mimetype, coordinates, file_name, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(MediaFileManager, "add", recording_add)
    at = page.run()
    at.selectbox(key="model").set_value("digits").run()
    at = upload(at, ("digit_3_paper.png", (SAMPLES / "digit_3_paper.png").read_bytes()))
    assert not any(list(d.value.columns) == list(SUMMARY_COLUMNS) for d in at.dataframe)  # one image: no summary
    at = upload(at, ("digit_3_paper.png", (SAMPLES / "digit_3_paper.png").read_bytes()), ("date.png", line_png("2357")),
                ("blank_canvas.png", (SAMPLES / "blank_canvas.png").read_bytes()), ("notes.txt", b"shopping list"))
    assert not at.exception
    assert "Summary" in texts(at)["subheader"]
    summary = next(d.value for d in at.dataframe if list(d.value.columns) == list(SUMMARY_COLUMNS))
    assert list(summary["file"]) == ["digit_3_paper.png", "date.png", "blank_canvas.png", "notes.txt"]
    assert list(summary["mode"]) == ["character", "text", "character", "auto"]
    assert list(summary["text"]) == ["3", "2357", "", ""]
    assert list(summary["characters"]) == [1, 4, 0, 0]
    assert summary["blank"][2] and not summary["blank"][0]
    assert "not an image file" in summary["error"][3]
    assert [b.proto.label for b in at.get("download_button")] == ["Download CSV", "Download JSON"]
    mime, data = served["hcr-results.csv"]
    text = data.decode() if isinstance(data, bytes) else data
    assert mime.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["file"] for r in rows] == list(summary["file"]) and [r["text"] for r in rows] == ["3", "2357", "", ""]
    assert rows[2]["blank"] == "true" and rows[0]["confidence"] and not rows[3]["confidence"]
    mime, data = served["hcr-results.json"]
    assert mime == "application/json"
    parsed = json.loads(data)
    assert [r["file"] for r in parsed] == list(summary["file"]) and parsed[1]["characters"] == 4 and parsed[3]["blank"] is None
    assert all(list(r) == list(SUMMARY_COLUMNS) for r in parsed)


def test_summary_rows_csv_and_json() -> None:
    from hcr.predictor import Prediction
    from hcr.reader import ReadChar, ReadLine, ReadResult
    from hcr.web.service import summary_csv, summary_json, summary_row

    sure = Prediction("7", 0.987654, blank=False)
    unsure = Prediction("1", 0.31, uncertain=True)
    blank = Prediction(None, 0.0, blank=True)
    chars = [ReadChar("4", 0.9, (0, 0, 5, 9)), ReadChar("2", 0.4, (6, 0, 5, 9), uncertain=True)]
    two_lines = ReadResult("42\nx,y", [ReadLine("42", (0, 0, 11, 9), chars), ReadLine("x,y", (0, 20, 11, 9), [ReadChar("x", 0.8, (0, 20, 5, 9), line=1)])])
    empty_field = ReadResult("", [], field=True)
    rows = [summary_row("a.png", "character", sure), summary_row("b.png", "character", unsure), summary_row("c.png", "character", blank),
            summary_row("d.png", "text", two_lines), summary_row("e.png", "field", empty_field),
            summary_row("f.txt", "auto", error="f.txt: not an image file")]
    assert rows[0] == {"file": "a.png", "mode": "character", "text": "7", "confidence": 0.9877, "characters": 1, "uncertain": 0, "blank": False, "error": None}
    assert (rows[1]["uncertain"], rows[2]["text"], rows[2]["confidence"], rows[2]["blank"]) == (1, "", None, True)
    assert rows[3] == {"file": "d.png", "mode": "text", "text": "42\nx,y", "confidence": 0.4, "characters": 3, "uncertain": 1, "blank": False, "error": None}
    assert (rows[4]["blank"], rows[4]["characters"], rows[4]["confidence"]) == (True, 0, None)
    assert rows[5]["error"] == "f.txt: not an image file" and rows[5]["blank"] is None and rows[5]["text"] == ""
    assert all(list(r) == list(SUMMARY_COLUMNS) for r in rows)
    text = summary_csv(rows)
    assert text.splitlines()[0] == ",".join(SUMMARY_COLUMNS)
    back = list(csv.DictReader(io.StringIO(text)))
    assert [r["file"] for r in back] == ["a.png", "b.png", "c.png", "d.png", "e.png", "f.txt"]
    assert back[3]["text"] == "42\nx,y"  # a text of two lines stays one (quoted) cell
    assert (back[0]["blank"], back[2]["blank"], back[5]["blank"], back[2]["confidence"]) == ("false", "true", "", "")
    assert json.loads(summary_json(rows)) == rows
    assert summary_csv([]) == ",".join(SUMMARY_COLUMNS) + "\n" and json.loads(summary_json([])) == []


def test_an_uploaded_model_file_is_used(page: AppTest) -> None:
    at = page.run()
    at.selectbox(key="model").set_value(UPLOAD_MODEL).run()
    assert any("Choose a model file" in s for s in texts(at)["info"])
    at.file_uploader(key="model_file").set_value(("broken.pt", b"not a model", "application/octet-stream")).run()
    assert any("This model file cannot be used" in e for e in texts(at)["error"])
    at.file_uploader(key="model_file").set_value(("my-digits.pt", pretrained_path("digits").read_bytes(), "application/octet-stream")).run()
    assert any("my-digits.pt" in s for s in texts(at)["success"])
    at = upload(at, ("digit_9_scan.png", (SAMPLES / "digit_9_scan.png").read_bytes()))
    assert any(m.startswith("#### Answer: `9`") for m in texts(at)["markdown"])
    assert any(o.startswith("my-digits.pt [") for o in at.selectbox(key="model").options)


def test_hcr_app_model_option(page: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_APP_MODEL, "letters")
    at = page.run()
    assert at.selectbox(key="model").value == "letters"


def test_hcr_app_command_line() -> None:
    args = build_parser().parse_args(["app", "--port", "8600", "--headless", "-m", "digits"])
    assert (args.port, args.headless, args.model, args.host) == (8600, True, "digits", "127.0.0.1")
    cmd = streamlit_command("0.0.0.0", 8600, headless=True)
    assert cmd[1:5] == ["-m", "streamlit", "run", str(APP_PATH)]
    assert cmd[cmd.index("--server.port") + 1] == "8600" and cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0"
    with pytest.raises(HcrError, match="no such model file"):  # checked before Streamlit starts
        run_app(model="/nonexistent/model.pt")
    with pytest.raises(HcrError, match="must be positive"):
        run_app(max_upload_mb=0)
