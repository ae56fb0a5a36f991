"""Lines of text set in a font the way a hand writes them, and photographed or scanned the
way people capture forms, notes and letters.

:func:`typeset` lays out a text glyph by glyph in a font (a handwriting font for the word
model, an ordinary one for printed labels): each glyph a little larger or smaller, turned a
little, off the baseline by a drift; the spacing natural, tight, letter-spaced (block
capitals with wide, even gaps) or one character per box of a comb field; the whole line
slanted and its strokes thinner or bolder. It returns ink-bright coverage (``uint8``, as
:func:`hcr.compose.compose` does for data-set glyphs) and the printed layer of the form it
was written on, if any (comb boxes, an underline, a dotted baseline, a frame).

:func:`capture` puts both on paper (plain, ruled or squared; the printed layer in black,
grey or a drop-out colour), in the pen's colour (black, blue, pencil grey, marker), under
uneven light, and finishes as a camera or scanner would (blur, noise, JPEG). Every function
draws its randomness from the generator it is given.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .render import _composite, _lighting, _paper, _to_uint8, encode_jpeg

__all__ = ["SPACINGS", "FORMS", "Drawn", "Typeset", "TypesetLine", "capture", "font_charset", "typeset"]

#: How the letters of a line are spaced.
SPACINGS = ("natural", "tight", "spaced", "comb")
#: What is printed on the form under or around the writing.
FORMS = ("none", "underline", "dotted", "frame", "ruled", "squared")
_MISSING = "\ue000"  # a private-use character no font draws: its picture is the font's .notdef


@dataclass
class Typeset:
    """A typeset line: ``ink`` and ``printed`` (float32 coverage in [0, 1], same shape) and
    the text it spells."""

    ink: np.ndarray
    printed: np.ndarray
    text: str


@lru_cache(maxsize=512)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@lru_cache(maxsize=256)
def font_charset(path: str, alphabet: str) -> str:
    """The characters of ``alphabet`` the font at ``path`` draws (a missing glyph draws
    nothing or the font's .notdef box)."""
    f = _font(path, 32)
    notdef = np.asarray(f.getmask(_MISSING))
    out = []
    for ch in alphabet:
        if ch == " ":
            out.append(ch)
            continue
        m = np.asarray(f.getmask(ch))
        if m.size and m.any() and not (m.shape == notdef.shape and (m == notdef).all()):
            out.append(ch)
    return "".join(out)


@lru_cache(maxsize=256)
def _cap_height(path: str) -> float:
    """Cap height of the font at size 100 (pixels): sets the size for a wanted height."""
    f = _font(path, 100)
    box = f.getbbox("H")
    return float(max(box[3] - box[1], 1))


def _glyph(font: ImageFont.FreeTypeFont, ch: str, ascent: int) -> tuple[np.ndarray, int, int]:
    """Coverage of ``ch`` (float32) and its offset from the pen position (x, y from the
    line's top, with the baseline at ``ascent``)."""
    x0, y0, x1, y1 = (int(v) for v in font.getbbox(ch))
    w, h = max(1, x1 - x0), max(1, y1 - y0)
    img = Image.new("L", (w + 4, h + 4), 0)
    ImageDraw.Draw(img).text((2 - x0, 2 - y0), ch, font=font, fill=255)
    return np.asarray(img, np.float32) / 255.0, x0 - 2, y0 - 2


def _turn(g: np.ndarray, angle: float, scale: float) -> np.ndarray:
    h, w = g.shape
    side = int(math.ceil(math.hypot(h, w) * scale)) + 2
    mat = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    mat[:, 2] += (side - w) / 2, (side - h) / 2
    return cv2.warpAffine(g, mat, (side, side), flags=cv2.INTER_LINEAR, borderValue=0)


def typeset(text: str, font_path: str | Path, rng: np.random.Generator, *, cap: float | None = None, spacing: str | None = None, form: str | None = None, hand: bool = True) -> Typeset:
    """``text`` set in the font at ``font_path`` with a cap height of ``cap`` pixels (drawn
    from 16-40 when None), ``spacing`` from :data:`SPACINGS` and ``form`` from
    :data:`FORMS` (drawn when None); see the module docstring. ``hand=False`` sets it as
    a printer does: every glyph at its place, size and angle, no slant, strokes as drawn."""
    cap = float(cap if cap is not None else rng.uniform(16, 40))
    spacing = spacing or str(rng.choice(SPACINGS, p=[0.55, 0.1, 0.2, 0.15]))
    form = form or str(rng.choice(FORMS, p=[0.42, 0.13, 0.11, 0.1, 0.17, 0.07]))
    size = max(6, int(round(100 * cap / _cap_height(str(font_path)))))
    font = _font(str(font_path), size)
    ascent, descent = font.getmetrics()
    em = float(font.getlength("n")) * 1.6 or cap
    track = {"natural": rng.uniform(0.95, 1.08), "tight": rng.uniform(0.84, 0.95)}.get(spacing, 1.0)
    gap = rng.uniform(0.25, 0.9) * cap if spacing == "spaced" else 0.0
    pitch = max(float(font.getlength(c)) for c in text) * rng.uniform(1.15, 1.7) if spacing == "comb" else 0.0
    word_gap = float(font.getlength(" ")) * rng.uniform(0.9, 1.8) + (gap + rng.uniform(0.6, 1.3) * cap if spacing == "spaced" else 0.0)
    slant = rng.uniform(-0.3, 0.3) if hand else 0.0
    wobble = 1.0 if hand else 0.0  # per-glyph variation: none in print
    margin = int(cap)
    placed: list[tuple[np.ndarray, float, float]] = []
    cells: list[float] = []
    x, drift = float(margin), 0.0
    for ch in text:
        if ch == " ":
            if spacing == "comb":
                cells.append(x)
                x += pitch
            else:
                x += word_gap
            continue
        g, dx, dy = _glyph(font, ch, ascent)
        s = 1.0 + wobble * rng.uniform(-0.08, 0.08)
        grown = _turn(g, wobble * rng.uniform(-4, 4), s)
        drift = wobble * float(np.clip(drift + rng.normal(0, 0.03 * cap), -0.12 * cap, 0.12 * cap))
        ox, oy = (grown.shape[1] - g.shape[1]) / 2, (grown.shape[0] - g.shape[0]) / 2
        if spacing == "comb":  # centred in its box
            cells.append(x)
            gx = x + (pitch - grown.shape[1]) / 2 + wobble * rng.uniform(-0.08, 0.08) * pitch
            x += pitch
        else:
            gx = x + dx - ox
            x += float(font.getlength(ch)) * track * s + gap * (1.0 + wobble * rng.uniform(-0.15, 0.15)) + wobble * rng.normal(0, 0.03 * em)
        placed.append((grown, gx, dy - oy + drift))
    width = int(math.ceil(x)) + margin
    height = ascent + descent + 2 * margin
    ink = np.zeros((height, max(width, 2 * margin + 1)), np.float32)
    for g, gx, gy in placed:
        x0, y0 = int(round(gx)), int(round(gy)) + margin
        xa, ya = max(x0, 0), max(y0, 0)
        xb, yb = min(x0 + g.shape[1], ink.shape[1]), min(y0 + g.shape[0], ink.shape[0])
        if xb > xa and yb > ya:
            np.maximum(ink[ya:yb, xa:xb], g[ya - y0 : yb - y0, xa - x0 : xb - x0], out=ink[ya:yb, xa:xb])
    printed = np.zeros_like(ink)
    base = margin + ascent
    top = base - cap * rng.uniform(1.35, 1.7)
    bottom = base + max(descent, 0.3 * cap) * rng.uniform(0.9, 1.3)
    t = max(1, int(round(cap * rng.uniform(0.04, 0.09))))
    if spacing == "comb":
        for cx in cells + [x]:
            cv2.line(printed, (int(cx), int(top if rng.random() < 0.7 else bottom - 0.35 * cap)), (int(cx), int(bottom)), 1.0, t)
        cv2.line(printed, (int(cells[0]) if cells else margin, int(bottom)), (int(x), int(bottom)), 1.0, t)
        if rng.random() < 0.5:
            cv2.line(printed, (int(cells[0]) if cells else margin, int(top)), (int(x), int(top)), 1.0, t)
    elif form == "underline":
        cv2.line(printed, (int(margin * rng.uniform(0, 1)), int(base + 0.15 * cap)), (width - int(margin * rng.uniform(0, 1)), int(base + 0.15 * cap)), 1.0, t)
    elif form == "dotted":
        y = int(base + rng.uniform(0.05, 0.3) * cap)
        step = max(3, int(cap * rng.uniform(0.15, 0.35)))
        for dx in range(0, width, step):
            cv2.circle(printed, (dx, y), max(1, t // 2), 1.0, -1)
    elif form == "frame":
        cv2.rectangle(printed, (int(margin * 0.3), int(top)), (width - int(margin * 0.3), int(bottom)), 1.0, t)
    elif form in ("ruled", "squared"):
        spacing_of_rules = cap * rng.uniform(1.2, 1.8)
        rule = base + rng.uniform(0.0, 0.2) * cap
        while rule > 0:
            rule -= spacing_of_rules
        while rule < height:
            cv2.line(printed, (0, int(rule)), (width, int(rule)), 1.0, 1)
            rule += spacing_of_rules
        if form == "squared":
            xx = rng.uniform(0, spacing_of_rules)
            while xx < width:
                cv2.line(printed, (int(xx), 0), (int(xx), height), 1.0, 1)
                xx += spacing_of_rules
    shear = np.array([[1.0, -slant, slant * base], [0.0, 1.0, 0.0]], np.float32)
    out: np.ndarray = cv2.warpAffine(ink, shear, (ink.shape[1], ink.shape[0]), flags=cv2.INTER_LINEAR, borderValue=0)
    r = rng.random() if hand else 1.0
    k = max(2, int(round(cap * 0.06)))
    if r < 0.2:
        out = cv2.dilate(out, np.ones((k, k), np.uint8))
    elif r < 0.35:
        out = cv2.erode(out, np.ones((2, 2), np.uint8))
    return Typeset(np.clip(out, 0, 1), np.clip(printed, 0, 1), text)


def _pen(rng: np.random.Generator) -> tuple[tuple[float, float, float], float]:
    """A pen's RGB colour and how dense its stroke is (pencil is faint and grainy)."""
    r = rng.random()
    if r < 0.4:
        level = rng.uniform(10, 60)
        return (level, level, level + rng.uniform(0, 10)), 1.0
    if r < 0.75:
        return (rng.uniform(10, 50), rng.uniform(30, 80), rng.uniform(110, 200)), rng.uniform(0.85, 1.0)
    if r < 0.9:
        level = rng.uniform(60, 110)
        return (level, level, level), rng.uniform(0.7, 0.9)
    return (rng.uniform(20, 140), rng.uniform(10, 40), rng.uniform(10, 40)), 1.0


def _print_colour(rng: np.random.Generator, form: str) -> tuple[float, float, float]:
    r = rng.random()
    if form in ("ruled", "squared") or r < 0.3:
        return (rng.uniform(120, 190), rng.uniform(150, 210), rng.uniform(200, 240))  # light blue
    if r < 0.55:
        level = rng.uniform(20, 90)
        return (level, level, level)
    if r < 0.8:
        level = rng.uniform(110, 180)
        return (level, level, level)
    return (rng.uniform(200, 240), rng.uniform(90, 150), rng.uniform(90, 150))  # drop-out red


def capture(line: Typeset, rng: np.random.Generator) -> np.ndarray:
    """The line on paper, captured (see the module docstring): a ``uint8`` RGB array."""
    h, w = line.ink.shape
    scan = rng.random() < 0.5
    paper = np.full((h, w, 3), rng.uniform(238, 254), np.float32) if scan else _paper(h, w, rng)
    img = _composite(paper, line.printed, _print_colour(rng, "ruled" if line.printed.mean() > 0.02 else ""))
    ink, density = _pen(rng)
    alpha = line.ink * density
    if density < 0.9:  # pencil and dry pens: grainy strokes
        alpha = alpha * np.clip(rng.uniform(0.7, 0.95) + 0.25 * rng.standard_normal(alpha.shape).astype(np.float32), 0.3, 1.0)
    img = _composite(img, alpha.astype(np.float32), ink)
    if not scan:
        img *= _lighting(h, w, rng, rng.uniform(0.05, 0.35))[..., None]
    out = _to_uint8(img, rng, rng.uniform(0.3, 1.1), rng.uniform(0.5, 3.5))
    if rng.random() < 0.3:
        with Image.open(io.BytesIO(encode_jpeg(Image.fromarray(out, "RGB"), int(rng.integers(35, 85))))) as dec:
            out = np.asarray(dec.convert("RGB"))
    return out


@runtime_checkable
class Drawn(Protocol):
    """A synthetic image drawn on demand (:class:`TypesetLine`): small and picklable
    until rendered."""

    def render(self) -> np.ndarray: ...


@dataclass(frozen=True)
class TypesetLine:
    """A synthetic line drawn on demand: ``text`` typeset in the font at ``font`` and
    captured, all randomness from ``seed``. Small and picklable, so a data set of tens of
    thousands of them costs nothing until each is rendered (by the worker that needs it)."""

    text: str
    font: str
    seed: tuple[int, ...]

    def render(self) -> np.ndarray:
        rng = np.random.default_rng(list(self.seed))
        return capture(typeset(self.text, self.font, rng), rng)
