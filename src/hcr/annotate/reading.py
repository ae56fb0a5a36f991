"""Annotated readings: the image read, each character's box and answer drawn on it, and a
box around each line read (``hcr read --annotate``, the web page's text view).

Labels are placed by :func:`label_layout`, a small pure function: each label goes above its
character, else below it, else one more label height further out, alternating, so no two
labels overlap and none covers another character when there is room; the image grows a
margin where labels fall outside it. Needs only OpenCV and NumPy (no matplotlib), so it
works on an inference-only install. :mod:`hcr.report` re-exports :func:`annotate_reading`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = [
    "LINE_BOX_BGR",
    "ReadingLike",
    "ReadingPlan",
    "annotate_reading",
    "annotated_reading_bgr",
    "label_layout",
    "plan_reading",
    "reading_png",
    "rects_overlap",
]

#: A rectangle ``(x, y, w, h)`` in pixels (floats allowed).
Rect = tuple[float, float, float, float]

# BGR, for OpenCV drawing
_BGR_OK, _BGR_UNCERTAIN, _BGR_MARK, _BGR_REMOVED = (55, 127, 26), (0, 89, 179), (200, 110, 20), (120, 120, 235)
#: Colour of the line boxes (purple, BGR): distinct from the characters' green, orange and blue.
LINE_BOX_BGR = (170, 50, 150)
_BACKGROUND = 245  # the margin added around the image where labels fall outside it
_FONT_MIN, _FONT_MAX = 0.35, 2.5


def rects_overlap(a: Rect, b: Rect) -> bool:
    """Whether two ``(x, y, w, h)`` rectangles share an area (touching edges do not count)."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _grown(r: Rect, by: float) -> Rect:
    return (r[0] - by, r[1] - by, r[2] + 2 * by, r[3] + 2 * by)


def label_layout(boxes: Sequence[Rect], sizes: Sequence[tuple[float, float]], *, gap: float = 2.0, width: float | None = None, max_levels: int = 8) -> list[Rect]:
    """Where to draw each box's label: one ``(x, y, w, h)`` per box, no two overlapping.

    ``boxes`` are the characters' ``(x, y, w, h)`` in drawing order (line by line, left to
    right), ``sizes`` each label's ``(w, h)``. A label is centred on its box (kept inside
    ``0 .. width`` when given and it fits) and put at the first free place of: just above
    the box, just below it, one label height (plus ``gap``) further above, further below,
    ... (``max_levels`` each way). Free means at least ``gap`` away from every label already
    placed and clear of every character box. When no such place exists, the first place
    clear of the labels alone is taken (it may cover some ink), and failing that the label
    goes above everything placed. Deterministic; rectangles may lie outside the image (the
    drawing adds a margin for them)."""
    if len(boxes) != len(sizes):
        raise ValueError(f"{len(boxes)} boxes but {len(sizes)} label sizes")
    placed: list[Rect] = []
    for (bx, by, bw, bh), (lw, lh) in zip(boxes, sizes):
        x = bx + bw / 2 - lw / 2
        if width is not None and lw <= width:
            x = min(max(x, 0.0), width - lw)
        candidates: list[Rect] = []
        for level in range(max(1, max_levels)):
            step = level * (lh + gap)
            candidates.append((x, by - gap - lh - step, lw, lh))  # above
            candidates.append((x, by + bh + gap + step, lw, lh))  # below

        def clear_of_labels(r: Rect) -> bool:
            return not any(rects_overlap(_grown(r, gap), p) for p in placed)

        spot = next((r for r in candidates if clear_of_labels(r) and not any(rects_overlap(r, b) for b in boxes)), None)
        if spot is None:
            spot = next((r for r in candidates if clear_of_labels(r)), None)
        if spot is None:  # above every label placed: always free
            top = min(p[1] for p in placed)
            spot = (x, top - 2 * gap - lh, lw, lh)
        placed.append(spot)
    return placed


class ReadingLike(Protocol):
    """What :func:`annotate_reading` reads from a :class:`hcr.reader.ReadResult`: the
    decoded image, the layout (for the removed ink) and the characters (each with ``char``,
    ``confidence``, ``box``, ``uncertain``, ``mark`` and ``line``); the ``lines`` (each
    with a ``box``) are drawn when the result has them."""

    image: np.ndarray | None
    layout: Any

    @property
    def characters(self) -> Sequence[Any]: ...


def _font_scale(heights: Sequence[float]) -> float:
    """One label size per line, from its median character height."""
    h = float(np.median(heights)) if len(heights) else 12.0
    return max(_FONT_MIN, min(_FONT_MAX, 0.6 * max(h, 12.0) / 22))


@dataclass(frozen=True)
class ReadingPlan:
    """What :func:`annotated_reading_bgr` draws, in the coordinates of the (scaled) image:
    ``scale`` (image pixels to drawn pixels), the drawn image's ``size`` ``(w, h)`` before the
    margin, the line ``thickness``, per character its ``boxes``, ``labels`` (text, OpenCV font
    scale, BGR colour, baseline offset) and ``label_rects`` (:func:`label_layout`), the
    ``line_boxes`` (each line's box, padded) and the ``margin`` ``(left, top, right, bottom)``
    added so that every label and line box lies inside the drawn image."""

    scale: float
    size: tuple[int, int]
    thickness: int
    boxes: list[Rect]
    labels: list[tuple[str, float, tuple[int, int, int], int]]
    label_rects: list[Rect]
    line_boxes: list[Rect]
    margin: tuple[int, int, int, int]


def plan_reading(result: ReadingLike, *, max_side: int = 2400) -> ReadingPlan:
    """Where :func:`annotate_reading` puts each box and label (no drawing): one label size
    per line (from its median character height), labels placed by :func:`label_layout`."""
    import cv2

    if result.image is None:
        raise ValueError("the result holds no image (an unreadable file)")
    h, w = np.asarray(result.image).shape[:2]
    scale = min(1.0, max_side / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    thick = max(1, round(max(size) / 800))
    chars = list(result.characters)
    boxes: list[Rect] = [_scaled(c.box, scale) for c in chars]
    line_of = [int(getattr(c, "line", 0)) for c in chars]
    fonts = {ln: _font_scale([b[3] for b, n in zip(boxes, line_of) if n == ln]) for ln in set(line_of)}
    labels: list[tuple[str, float, tuple[int, int, int], int]] = []
    sizes: list[tuple[float, float]] = []
    for c, ln in zip(chars, line_of):
        text = c.char.encode("ascii", "replace").decode() + ("" if c.mark else f" {c.confidence:.2f}" if c.uncertain else "")
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fonts[ln], thick)
        labels.append((text, fonts[ln], _BGR_MARK if c.mark else _BGR_UNCERTAIN if c.uncertain else _BGR_OK, th))
        sizes.append((float(tw), float(th + base + thick)))
    rects = label_layout(boxes, sizes, gap=max(2.0, 2.0 * thick), width=float(size[0]))
    pad = 2 + 2 * thick  # line boxes stand this far outside their characters
    line_boxes = [(x - pad, y - pad, bw + 2 * pad, bh + 2 * pad) for x, y, bw, bh in (_scaled(ln.box, scale) for ln in getattr(result, "lines", None) or [])]
    every = rects + line_boxes

    def margin(outside: list[float]) -> int:
        m = int(np.ceil(max([0.0, *outside])))
        return m + 2 if m else 0

    edges = (margin([-r[0] for r in every]), margin([-r[1] for r in every]),
             margin([r[0] + r[2] - size[0] for r in every]), margin([r[1] + r[3] - size[1] for r in every]))
    return ReadingPlan(scale, size, thick, boxes, labels, rects, line_boxes, edges)


def _scaled(box: Sequence[float], scale: float) -> Rect:
    x, y, w, h = (float(v) * scale for v in box)
    return (x, y, w, h)


def annotated_reading_bgr(result: ReadingLike, *, max_side: int = 2400) -> np.ndarray:
    """The annotation :func:`annotate_reading` writes, as a BGR uint8 image."""
    import cv2

    plan = plan_reading(result, max_side=max_side)
    grey = np.asarray(result.image)
    small = cv2.resize(grey, plan.size, interpolation=cv2.INTER_AREA) if plan.scale < 1 else grey
    faded = (110 + small.astype(np.float32) * (145 / 255)).astype(np.uint8)
    img = cv2.cvtColor(faded, cv2.COLOR_GRAY2BGR)
    removed = getattr(result.layout, "removed", None)
    if removed is not None and removed.shape == grey.shape and removed.any():
        r = cv2.resize(removed.astype(np.uint8), plan.size, interpolation=cv2.INTER_NEAREST) > 0 if plan.scale < 1 else removed
        img[r] = _BGR_REMOVED
    left, top, right, bottom = plan.margin
    if any(plan.margin):
        img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(_BACKGROUND,) * 3)

    def at(x: float, y: float) -> tuple[int, int]:
        return round(x + left), round(y + top)

    thick = plan.thickness
    for x, y, bw, bh in plan.line_boxes:
        cv2.rectangle(img, at(x, y), at(x + bw, y + bh), LINE_BOX_BGR, thick)
    for (x, y, bw, bh), (text, font, colour, th), (lx, ly, _, _) in zip(plan.boxes, plan.labels, plan.label_rects):
        cv2.rectangle(img, at(x, y), at(x + bw, y + bh), colour, thick)
        cv2.putText(img, text, at(lx, ly + th), cv2.FONT_HERSHEY_SIMPLEX, font, colour, thick, cv2.LINE_AA)
    return img


def reading_png(result: ReadingLike, *, max_side: int = 2400) -> bytes:
    """:func:`annotated_reading_bgr` encoded as PNG bytes."""
    import cv2

    ok, buf = cv2.imencode(".png", annotated_reading_bgr(result, max_side=max_side))
    if not ok:  # pragma: no cover - OpenCV always encodes a BGR uint8 image
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def annotate_reading(result: ReadingLike, path: Path | str, *, max_side: int = 2400) -> Path:
    """The image :meth:`hcr.reader.Reader.read` read, faded, with each character's box and
    answer drawn on it: green for answers at or above the threshold, orange for uncertain
    ones, blue for punctuation recognised by shape; ink taken out as form lines or specks is
    tinted red; a purple box surrounds each line read. Labels never overlap
    (:func:`label_layout`); the image grows a light margin where they fall outside it.
    Images larger than ``max_side`` are scaled down. Written atomically as a PNG; returns
    ``path``. (Answers are drawn with OpenCV's ASCII font.)"""
    from ..modelfile import write_atomic

    data = reading_png(result, max_side=max_side)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, data)
