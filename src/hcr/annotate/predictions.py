"""Annotated predictions (``hcr predict --annotate``): one PNG with each input's thumbnail,
its model input and its answer, coloured by how sure the answer is. Needs matplotlib (the
captions' text), so it is not part of the inference-only install; :mod:`hcr.report`
re-exports :func:`annotate_predictions`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .figure import DPI, message_png, save_png
from .thumbs import fit_thumb, model_input_image


class PredictionLike(Protocol):
    """What :func:`annotate_predictions` reads from each answer (:class:`hcr.predictor.Prediction`)."""

    label: str | None
    confidence: float
    blank: bool
    uncertain: bool
    error: str | None
    file: str | None
    box: tuple[int, int, int, int] | None
    input: np.ndarray | None


_OK, _UNCERTAIN, _BLANK, _ERROR = "#1a7f37", "#b35900", "#666666", "#c62828"


def _text_width_px(text: str, points: float) -> int:
    """Rendered width of one line of ``text`` at ``points`` (default font) in pixels at :data:`DPI`."""
    if not text:
        return 0
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    w, _, _ = RendererAgg(1, 1, DPI).get_text_width_height_descent(text, FontProperties(size=points), ismath=False)
    return int(math.ceil(w))


def _shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, the middle elided."""
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: (keep + 1) // 2] + "\u2026" + text[len(text) - keep // 2 :]


def _caption(p: PredictionLike) -> tuple[str, str]:
    """The answer line and its colour."""
    if p.error is not None:
        msg = p.error
        if p.file and msg.startswith(f"{p.file}: "):
            msg = msg[len(p.file) + 2 :]
        return f"error: {msg}", _ERROR
    if p.blank or p.label is None:
        return "no character", _BLANK
    if p.uncertain:
        return f"uncertain: {p.label} {p.confidence:.2f}", _UNCERTAIN
    return f"{p.label}  {p.confidence:.2f}", _OK


def annotate_predictions(
    predictions: Sequence[PredictionLike],
    path: Path | str,
    *,
    thumb: int = 96,
    show_input: bool = True,
    ncols: int | None = None,
    title: str = "",
    max_images: int = 500,
) -> Path:
    """One PNG showing each input with its answer.

    Each cell holds a ``thumb``-pixel thumbnail of the original image (as
    :func:`hcr.preprocess.load_image` decodes it: EXIF orientation applied, transparency
    flattened; the ink box the preprocessing found drawn in blue), with ``show_input`` the
    exact 28x28 model input beside it, then the file name and the answer: ``label
    confidence`` (green), ``uncertain: label confidence`` (orange), ``no character`` (grey)
    or the error (red). Inputs given as arrays (no file) and the pages of documents show
    their model input. At most
    ``max_images`` cells are drawn (the title says so when there were more). Written
    atomically; returns ``path``.
    """
    from ..preprocess import load_image

    path = Path(path)
    total = len(predictions)
    preds = list(predictions)[: max(0, max_images)]
    if not preds:
        return message_png(title or "no images", path)
    if thumb < 16:
        raise ValueError(f"thumb must be at least 16 pixels, got {thumb}")
    n = len(preds)
    ncols = max(1, min(ncols or (6 if n <= 36 else 10), n))
    nrows = math.ceil(n / ncols)
    pad, gap = 8, 6
    side = max(28, (thumb * 7 // 12) // 28 * 28) if show_input else 0  # whole multiples of 28: sharp pixels
    band = 46  # caption: file name + answer
    cw = pad + thumb + (gap + side if show_input else 0) + pad
    ch = pad + thumb + band
    heading = title + (f" (first {n} of {total})" if total > n else "")
    head = 30 if heading else 4
    width, height = max(ncols * cw, _text_width_px(heading, 10) + 24), head + nrows * ch  # the title must fit
    canvas = np.full((height, width), 255, np.uint8)

    boxes: list[tuple[float, float, float, float]] = []
    placeholders: list[tuple[int, int]] = []
    for i, p in enumerate(preds):
        r, c = divmod(i, ncols)
        x0, y0 = c * cw + pad, head + r * ch + pad
        img: np.ndarray | None = None
        scale = 1.0
        if p.error is None and p.file is not None and not getattr(p, "page", None):  # a document's page: its model input
            try:
                img, scale = fit_thumb(load_image(p.file), thumb)
            except Exception:  # noqa: BLE001  (the file changed since it was read: show a placeholder)
                img = None
        if img is None and p.error is None and p.input is not None:
            img = model_input_image(p.input, thumb)
            scale = 0.0  # no ink box on a model input
        if img is None:
            canvas[y0 : y0 + thumb, x0 : x0 + thumb] = 235
            placeholders.append((x0, y0))
        else:
            th, tw = img.shape
            ox, oy = x0 + (thumb - tw) // 2, y0 + (thumb - th) // 2
            canvas[oy : oy + th, ox : ox + tw] = img
            if p.box is not None and scale > 0:
                bx, by, bw, bh = p.box
                boxes.append((ox + bx * scale - 0.5, oy + by * scale - 0.5, bw * scale, bh * scale))
        if show_input:
            small = model_input_image(p.input, side)
            if small is not None:
                sx = x0 + thumb + gap
                canvas[y0 : y0 + side, sx : sx + side] = small

    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_axis_off()
    chars = max(8, int((cw - 4) / 7.0))  # characters that fit a caption line at 7 pt
    for i, p in enumerate(preds):
        r, c = divmod(i, ncols)
        x0, y0 = c * cw + pad, head + r * ch + pad
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), thumb, thumb, fill=False, edgecolor="0.8", linewidth=0.6))
        if show_input and p.input is not None:
            ax.add_patch(Rectangle((x0 + thumb + gap - 0.5, y0 - 0.5), side, side, fill=False, edgecolor="0.6", linewidth=0.6))
            ax.text(x0 + thumb + gap + side / 2, y0 + side + 2, "model input", ha="center", va="top", fontsize=5.5, color="0.45")
        page = getattr(p, "page", None)  # a document's page (hcr.predictor.Prediction.page)
        name = (Path(p.file).name if p.file else f"#{i + 1}") + (f" p.{page}" if page else "")
        ax.text(x0, y0 + thumb + 4, _shorten(name, chars), ha="left", va="top", fontsize=7, color="0.25", parse_math=False)
        text, colour = _caption(p)
        if p.error is None:
            ax.text(x0, y0 + thumb + 20, _shorten(text, int(chars * 7 / 9.5)), ha="left", va="top", fontsize=9,
                    color=colour, weight="bold", parse_math=False)
        else:  # errors are long: two lines at most, cut at the end
            lines = textwrap.wrap(text, int(chars * 7 / 6.5)) or [""]
            if len(lines) > 2:
                rest, room = " ".join(lines[1:]), int(chars * 7 / 6.5)
                lines = [lines[0], rest[: room - 1] + "\u2026"]
            ax.text(x0, y0 + thumb + 19, "\n".join(lines), ha="left", va="top", fontsize=6.5, color=colour,
                    linespacing=1.1, parse_math=False)
    for left, top, bw_px, bh_px in boxes:
        ax.add_patch(Rectangle((left, top), bw_px, bh_px, fill=False, edgecolor="tab:blue", linewidth=0.7, alpha=0.8))
    for x0, y0 in placeholders:
        ax.text(x0 + thumb / 2, y0 + thumb / 2, "unreadable", ha="center", va="center", fontsize=7, color=_ERROR)
    if heading:
        ax.text(width / 2, head / 2, heading, ha="center", va="center", fontsize=10, parse_math=False)
    return save_png(fig, path)


__all__ = ["PredictionLike", "annotate_predictions"]
