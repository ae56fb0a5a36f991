"""Synthetic words and lines composed from real handwritten characters.

:func:`compose` lays data-set glyphs (28x28, ink bright) side by side the way people write:
a few pixels between letters, more between words, now and then two letters touching, the
baseline drifting a little. With ``vary=True`` (training), each line also gets a random
slant (shear), a stroke-width change and per-glyph size jitter. :func:`make_text` writes
texts of words, numbers and dates; :class:`GlyphPool` indexes a character data set by
symbol. The results are ink-bright ``uint8`` arrays that :func:`hcr.render.render_line`
turns into photos, scans or canvas drawings, and the line benchmark and the CRNN's
synthetic pre-training (:mod:`hcr.train.sequence`) both use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

#: Side of a data-set glyph cell in pixels.
CELL = 28

#: A small word list (common English words and names; letters only) for :func:`make_text`.
WORDS = tuple(
    (
        "the and for you with have this from they will would there their what about which when make "
        "like time just know take people into year your good some could them other than then look "
        "only come over think also back after work first well even want because these give most "
        "name date code street house room class number phone city order total paid page form "
        "anna maria peter john smith miller berlin paris london school market river garden window "
        "letter table paper yellow green black white water money world hello friday monday april"
    ).split()
)

#: Kinds of text :func:`make_text` writes.
KINDS = ("words", "number", "date", "mixed")

#: Marks drawn by :func:`mark_glyph` (the character data sets have none).
MARKS = ".-"


@dataclass
class GlyphPool:
    """Glyph images of a character data set grouped by symbol."""

    images: np.ndarray | Sequence[np.ndarray]
    index: dict[str, np.ndarray]

    @classmethod
    def from_samples(cls, images: np.ndarray | Sequence[np.ndarray], targets: np.ndarray, symbols: Sequence[str]) -> "GlyphPool":
        groups: dict[str, list[int]] = {}
        for i, t in enumerate(targets):
            groups.setdefault(symbols[int(t)], []).append(i)
        return cls(images, {k: np.asarray(v) for k, v in groups.items()})

    @property
    def symbols(self) -> str:
        """The symbols the pool can write (glyphs, and the marks it draws)."""
        return "".join(sorted(self.index)) + MARKS

    def glyph(self, ch: str, rng: np.random.Generator) -> np.ndarray:
        if ch in MARKS:
            return mark_glyph(ch, rng)
        return np.asarray(self.images[int(rng.choice(self.index[ch]))])


# --------------------------------------------------------------------------- texts


def _word(rng: np.random.Generator) -> str:
    w = str(rng.choice(WORDS))
    r = rng.random()
    return w.capitalize() if r < 0.3 else w.upper() if r < 0.4 else w


def _number(rng: np.random.Generator) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(2, 9))))


def _date(rng: np.random.Generator) -> str:
    y, m, d = int(rng.integers(1950, 2031)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    return f"{d:02d}.{m:02d}.{y}" if rng.random() < 0.5 else f"{y}-{m:02d}-{d:02d}"


def make_text(kind: str, rng: np.random.Generator) -> str:
    """A line of the given kind (:data:`KINDS`): 2-4 words, 1-3 numbers, a date, or words
    with a number or a date."""
    if kind == "words":
        return " ".join(_word(rng) for _ in range(int(rng.integers(2, 5))))
    if kind == "number":
        return " ".join(_number(rng) for _ in range(int(rng.integers(1, 4))))
    if kind == "date":
        return _date(rng)
    return " ".join([_word(rng) for _ in range(int(rng.integers(1, 3)))] + [_number(rng) if rng.random() < 0.5 else _date(rng)])


def random_text(symbols: str, rng: np.random.Generator, max_words: int = 4) -> str:
    """Random strings of ``symbols`` (1-4 "words" of 1-10 characters): teaches glyphs, not words."""
    alphabet = [c for c in symbols if c != " "]
    words = ["".join(rng.choice(alphabet, int(rng.integers(1, 11)))) for _ in range(int(rng.integers(1, max_words + 1)))]
    return " ".join(words)


# --------------------------------------------------------------------------- glyphs and lines


def mark_glyph(mark: str, rng: np.random.Generator) -> np.ndarray:
    """A '.' or '-' in a data-set cell: a dot on the baseline, a dash at mid-height, in the
    data set's stroke width (about 2.5 px), anti-aliased, ink bright."""
    img = np.zeros((CELL, CELL), np.uint8)
    if mark == ".":
        r = rng.uniform(1.3, 2.2)
        cv2.circle(img, (14 * 16, int(rng.uniform(21, 23.5) * 16)), int(r * 16), 255, -1, lineType=cv2.LINE_AA, shift=4)
    else:
        half = rng.uniform(3.5, 6.0)
        y = rng.uniform(12.5, 15.5)
        tilt = rng.uniform(-1.0, 1.0)
        p0, p1 = (int((14 - half) * 16), int((y + tilt) * 16)), (int((14 + half) * 16), int((y - tilt) * 16))
        cv2.line(img, p0, p1, 255, int(round(rng.uniform(2.0, 3.0))), lineType=cv2.LINE_AA, shift=4)
    return img


def ink_columns(g: np.ndarray) -> np.ndarray:
    """The glyph's columns that hold stroke (two pixels above a third of its peak), so the
    gaps laid between glyphs are gaps between strokes, not between faint rims or stray dots."""
    cols = np.flatnonzero((g > max(20, int(g.max()) // 3)).sum(axis=0) >= 2)
    return g[:, cols[0] : cols[-1] + 1] if cols.size else g[:, :1]


def _vary_line(line: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slant (shear of -0.35..0.35) and stroke width (thinner or bolder by one pixel)."""
    h, w = line.shape
    shear = float(rng.uniform(-0.35, 0.35))
    pad = int(abs(shear) * h) + 1
    wide = cv2.copyMakeBorder(line, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=0)
    mat = np.array([[1.0, shear, -shear * h / 2], [0.0, 1.0, 0.0]], np.float32)
    out = cv2.warpAffine(wide, mat, (wide.shape[1], h), flags=cv2.INTER_LINEAR, borderValue=0)
    r = rng.random()
    if r < 0.25:
        out = cv2.dilate(out, np.ones((2, 2), np.uint8))
    elif r < 0.45:
        out = cv2.erode(out, np.ones((2, 1), np.uint8)) if out.max() > 0 else out
    return out


def compose(text: str, pool: GlyphPool, rng: np.random.Generator, *, touch: float = 0.05, vary: bool = False, letter_gap: tuple[int, int] | None = None) -> np.ndarray:
    """The line ``text`` as one ink-bright ``uint8`` array of glyphs side by side.

    Default (the benchmark's lines): 1-5 px between letters (-1 px, i.e. touching, with
    probability ``touch``), 10-16 px between words, +-1 px vertical jitter. ``vary=True``
    adds what differs between writers: letter gaps of 0-7 px, glyphs scaled by 0.85-1.1,
    a baseline that drifts up to 3 px, a slant and a stroke-width change
    (:func:`_vary_line`). ``letter_gap`` (lo, hi) draws the gaps between letters from that
    range instead (block capitals written apart, a comb field) and never touches; words
    are then a further 10-20 px apart."""
    pieces: list[tuple[np.ndarray, int]] = []
    gap_next = 0
    for ch in text:
        if ch == " ":
            gap_next = int(rng.integers(10, 17)) if not vary else int(rng.integers(8, 20))
            if letter_gap is not None:
                gap_next += letter_gap[1]
            continue
        g = ink_columns(pool.glyph(ch, rng))
        if vary:
            s = float(rng.uniform(0.85, 1.1))
            g = cv2.resize(g, (max(1, int(round(g.shape[1] * s))), max(1, int(round(g.shape[0] * s)))), interpolation=cv2.INTER_AREA)
        pieces.append((g, gap_next))
        hi = 8 if vary else 6
        if letter_gap is not None:
            gap_next = int(rng.integers(letter_gap[0], letter_gap[1] + 1))
        else:
            gap_next = -1 if rng.random() < touch else int(rng.integers(0 if vary else 1, hi))
    margin, room = 8, 6 if not vary else 10
    width = margin + sum(max(p.shape[1] + gap, 1) for p, gap in pieces) + margin
    cell = max([CELL] + [p.shape[0] for p, _ in pieces])
    line = np.zeros((cell + room, width), np.uint8)
    x, drift = margin, 0.0
    for i, (p, gap) in enumerate(pieces):
        x += gap if i else 0
        if vary:
            drift = float(np.clip(drift + rng.normal(0, 0.6), -3, 3))
            y = room // 2 + int(round(drift)) + (cell - p.shape[0]) // 2
        else:
            y = 3 + int(rng.integers(-1, 2))
        y = min(max(y, 0), line.shape[0] - p.shape[0])
        x0 = max(x, 0)
        region = line[y : y + p.shape[0], x0 : x0 + p.shape[1]]
        np.maximum(region, p[:, : region.shape[1]], out=region)
        x += p.shape[1]
    line = line[:, : x + margin]
    return _vary_line(line, rng) if vary else line
