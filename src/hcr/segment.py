"""Finding the characters in an image of writing: ink -> lines -> characters.

Geometry only, no model: :func:`segment` works on the ink mask that
:func:`hcr.preprocess.find_ink` finds in a whole image (the same polarity, background and
threshold as for one character) and returns lines in reading order, each a list of
:class:`Glyph` (the pixels of one character) with the spaces between words.

1. **Scale.** The stroke width (ink area over half its outline) and the character height (the
   ink-weighted median height of the connected parts that are neither specks, line-like,
   nor frames around others) set every other size, so nothing depends on the resolution.
   Writing under :data:`MIN_HEIGHT` pixels tall is not read.
2. **Form lines** (:func:`hcr.frames.remove_form_lines`, shared with the preprocessing's
   frame removal): straight horizontal runs longer than 2.5 character heights (rules, box
   edges, underlines) are removed, and where a handwritten stroke crossed one its pixels
   are put back; vertical runs are removed when longer than 3 character heights, or when
   they are about as thin as the removed horizontal lines and touch one (the sides of a
   box, the ticks of a comb field). What lies along the image's own edges (card edges,
   cut-off neighbouring rows) is already gone: :func:`hcr.preprocess.find_ink` drops it.
3. **Specks**: parts smaller than about a third of a square stroke width are dropped; small
   parts that are no dot, mark or piece of a character (below) are dropped too.
4. **Lines**: the parts at least 0.4 character heights tall are sorted by their vertical
   centre and a new line starts wherever the next centre is more than half a character
   height lower (and the line so far does not reach below it); smaller parts join the
   line whose band is nearest. Within a line, parts under half its body height count as
   small ones (step 5). Lines run top to bottom, characters left to right.
5. **Characters**: connected parts, merged where they belong together: the dot of an i or
   j (a small part above the line's body with a character below it), and pieces of a
   broken stroke (parts stacked over each other, a small part inside another's box or
   mostly under or over one, a small part high up next to one). Small parts that are not
   merged become punctuation recognised by shape: ``.`` (a compact dot on the baseline),
   ``,`` (a small tick reaching below it) and ``-`` (a short flat bar at mid-height).
   Tall parts may be marks asked for by the charset (:data:`ASKED_MARKS`): a ``/`` is
   marked here (:func:`slash_of`) and read as one only when asked for; ``+``, ``(`` and
   ``)`` (:func:`cross_of`, :func:`parenthesis_of`) only where :mod:`hcr.reader` is asked
   for them (:func:`asked_mark_of`), so without them nothing changes.
   Splitting characters that touch needs the classifier; :mod:`hcr.reader` does it,
   trying the cuts :func:`cut_candidates` proposes.
6. **Spaces**: a gap is a space when it is wide compared with the line's own spacing: the
   line's gaps, sorted, are split in two groups at their clearest jump (the largest ratio
   between neighbours) where the groups are clearly apart: the smaller gaps (between
   letters) are at least half of all, the first wider gap is at least twice their median,
   1.5 times the gap below it, 0.15 body heights more and a quarter of a body height or
   more. Without such a jump the gaps are one group, evenly spaced letters of one word
   (block capitals, a comb field) with the irregularity of handwriting, and none is a
   space, however wide. A lone gap (two characters) is a space when it is over half a
   body height. In a comb field (each character in its own box) a gap with one removed
   box wall is no space and one with two (an empty box between) is. A form field's value
   (one name, date or code: ``hcr read --field``) asks more (:data:`FIELD_SPACING`): the
   letter gaps a strict majority and the jump at least twice the gap below it, because
   there a space splitting a name is the likelier mistake.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from .frames import components, remove_form_lines, runs

__all__ = [
    "ASKED_MARKS",
    "DEFAULT_MARKS",
    "FIELD_SPACING",
    "LINE_SPACING",
    "MARKS",
    "MIN_HEIGHT",
    "Glyph",
    "Layout",
    "Line",
    "Spacing",
    "asked_mark_of",
    "char_height",
    "cross_of",
    "cut_candidates",
    "find_spaces",
    "glyph_crop",
    "line_spaces",
    "mark_of",
    "parenthesis_of",
    "remove_form_lines",
    "segment",
    "stroke_width",
    "without_form_lines",
    "writing_scale",
]

#: Punctuation recognised by shape (the classifiers know letters and digits only).
MARKS = ".,-:/+()"
#: The marks read without a charset naming them ...
DEFAULT_MARKS = ".,-:"
#: ... and those read only when a charset names them (``--charset "0123456789/"``,
#: ``--charset "0123456789+() "``): a slash on its own is a slanted 1 or l, a parenthesis a
#: curved 1 or l, a cross a t or a 4, so the shape alone does not decide them.
ASKED_MARKS = "/+()"
#: Writing whose typical character is less tall than this (pixels) is not read: it is
#: noise (grain, salt) or too small for a classifier of 28 x 28 inputs.
MIN_HEIGHT = 8

#: A slash leans at least this many degrees from the vertical ...
SLASH_LEAN = 22.0
#: ... and is straight: its ink's spread across the stroke at most this share of its spread along it.
SLASH_THIN = 0.22
#: A cross (``+``): a horizontal and a vertical bar, each covering at least this share of
#: the part's width (height), crossing in its middle half ...
CROSS_SPAN = 0.7
#: ... with at most this share of the ink off both bars.
CROSS_OFF = 0.12
#: A parenthesis is one thin curved stroke (at most this many times as wide as tall) ...
PAREN_WIDTH = 0.6
#: ... whose centre line (per row) sags from the straight line by at least this share of
#: its height (a parabola's sag; its vertex in the middle 60% of its height) ...
PAREN_SAG = 0.07
#: ... and follows the parabola to within this share of its height (root mean square).
PAREN_SMOOTH = 0.05

# Sizes in character heights (H) or stroke widths (sw); see the module docstring.
_SPECK_SW2 = 0.3  # parts under this many square stroke widths are specks
_TALL = 0.4  # parts at least this many H tall are "main" parts (they make the lines)
_SMALL = 0.5  # within a line, parts under this share of its body height are small ones
_LINE_JUMP = 0.5  # a new line starts where sorted centres jump by more than this many H


@dataclass
class Glyph:
    """The ink of one character: ``mask`` (boolean, ``h`` x ``w``) at (``x``, ``y``) in the
    image. ``mark`` is a punctuation mark recognised by shape (``.``, ``,``, ``-``, ``/`` or ``:``);
    None means the classifier decides."""

    x: int
    y: int
    mask: np.ndarray
    mark: str | None = None

    @property
    def w(self) -> int:
        return int(self.mask.shape[1])

    @property
    def h(self) -> int:
        return int(self.mask.shape[0])

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` in the image."""
        return (self.x, self.y, self.w, self.h)

    @property
    def x1(self) -> int:
        return self.x + self.w

    @property
    def y1(self) -> int:
        return self.y + self.h

    @property
    def cx(self) -> float:
        return self.x + self.w / 2.0

    @property
    def cy(self) -> float:
        return self.y + self.h / 2.0

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @classmethod
    def from_mask(cls, x: int, y: int, mask: np.ndarray, mark: str | None = None) -> "Glyph | None":
        """The glyph of ``mask`` placed at (x, y), cropped to its ink (None when empty)."""
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return None
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        return cls(x + int(c0), y + int(r0), np.ascontiguousarray(mask[r0:r1, c0:c1]), mark)

    @classmethod
    def merge(cls, glyphs: Sequence["Glyph"]) -> "Glyph":
        """One glyph holding the ink of all ``glyphs`` (no mark)."""
        x0, y0 = min(g.x for g in glyphs), min(g.y for g in glyphs)
        x1, y1 = max(g.x1 for g in glyphs), max(g.y1 for g in glyphs)
        mask = np.zeros((y1 - y0, x1 - x0), bool)
        for g in glyphs:
            mask[g.y - y0 : g.y1 - y0, g.x - x0 : g.x1 - x0] |= g.mask
        return cls(x0, y0, mask)

    def cut(self, col: int) -> tuple["Glyph", "Glyph"] | None:
        """The ink left of column ``col`` (relative to ``x``) and the rest, each cropped;
        None when either side holds no ink."""
        left = Glyph.from_mask(self.x, self.y, self.mask[:, :col])
        right = Glyph.from_mask(self.x + col, self.y, self.mask[:, col:])
        return None if left is None or right is None else (left, right)


@dataclass
class Line:
    """One line of writing: its glyphs left to right, whether a space comes before each
    (``spaces[0]`` is False), and its body band (``top`` to ``bottom``: the median top and
    bottom of its main parts, i.e. roughly the tops of the letters and the baseline)."""

    glyphs: list[Glyph]
    spaces: list[bool]
    top: float
    bottom: float

    @property
    def height(self) -> float:
        """Body height: the line's typical character height."""
        return max(self.bottom - self.top, 1.0)

    @property
    def box(self) -> tuple[int, int, int, int]:
        x0, y0 = min(g.x for g in self.glyphs), min(g.y for g in self.glyphs)
        x1, y1 = max(g.x1 for g in self.glyphs), max(g.y1 for g in self.glyphs)
        return (x0, y0, x1 - x0, y1 - y0)


@dataclass
class Layout:
    """What :func:`segment` found: lines in reading order, the scale it measured, the ink it
    kept and the ink it removed (form lines and specks)."""

    lines: list[Line]
    char_height: float
    stroke_width: float
    ink: np.ndarray = field(repr=False)
    removed: np.ndarray = field(repr=False)


# --------------------------------------------------------------------------- scale


def stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width of a binary image: ink area over half the outline length (a
    stroke of width ``s`` and length ``l`` has area ``s*l`` and an outline of about ``2*l``)."""
    m = mask.astype(bool)
    area = int(m.sum())
    if area == 0:
        return 1.0
    inner = cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    outline = int(np.count_nonzero(m & ~inner))
    return max(1.0, 2.0 * area / max(outline, 1))


def _line_like(stats: np.ndarray, ref: float) -> np.ndarray:
    """Parts that are long thin lines (much longer than ``ref`` and than they are thick)."""
    w, h = stats[:, 2], stats[:, 3]
    return ((w >= 6 * h) & (w >= 3 * ref)) | ((h >= 8 * w) & (h >= 3 * ref))


def _frames(stats: np.ndarray) -> np.ndarray:
    """Parts whose box holds another part's centre while being larger both ways (frames,
    boxes around a field)."""
    out = np.zeros(len(stats), bool)
    if len(stats) < 2:
        return out
    x, y, w, h = (stats[:, i].astype(np.float64) for i in range(4))
    cx, cy = x + w / 2, y + h / 2
    big = np.flatnonzero((w > np.median(w)) | (h > np.median(h)))
    X, Y, W, H = (v[big, None] for v in (x, y, w, h))  # candidates (rows) against every part (columns)
    inside = (cx > X) & (cx < X + W) & (cy > Y) & (cy < Y + H) & (w < W) & (h < H)
    out[big] = inside.any(axis=1)  # a part is never smaller than itself: no self-match
    return out


def char_height(stats: np.ndarray, min_area: float = 3.0) -> float | None:
    """Typical character height: the ink-weighted median height of the parts of at least
    ``min_area`` pixels that are neither line-like nor frames (half the ink lies in parts
    at least this tall, so dots and specks, however many, hardly count); None when no part
    looks like writing."""
    if len(stats) == 0:
        return None
    keep = stats[:, 4] >= min_area
    if not keep.any():
        return None
    stats = stats[keep]
    stats = stats[~_line_like(stats, float(np.median(stats[:, 3])))]
    stats = stats[~_frames(stats)]
    if len(stats) == 0:
        return None
    h, area = stats[:, 3].astype(np.float64), stats[:, 4].astype(np.float64)
    order = np.argsort(h)
    cum = np.cumsum(area[order])
    return float(h[order][np.searchsorted(cum, 0.5 * cum[-1])])


# --------------------------------------------------------------------------- lines and glyphs


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _band(parts: Sequence[Glyph]) -> tuple[float, float]:
    """A line's body band: the median top and bottom of its parts."""
    return float(np.median([g.y for g in parts])), float(np.median([g.y1 for g in parts]))


def _group_lines(glyphs: list[Glyph], height: float) -> list[list[Glyph]]:
    """Main parts grouped into lines: sorted by vertical centre, split where it jumps, unless
    the line so far reaches below the next part's centre (pieces of a broken character)."""
    order = sorted(glyphs, key=lambda g: g.cy)
    lines: list[list[Glyph]] = []
    last = -np.inf
    for g in order:
        # a jump starts a new line, unless the line above reaches past this part's centre
        if g.cy - last > _LINE_JUMP * height and not (lines and _band(lines[-1])[1] > g.cy):
            lines.append([])
        lines[-1].append(g)
        last = g.cy
    return lines


def _merge_stacked(main: list[Glyph]) -> list[Glyph]:
    """Merge main parts of one character: stacked (the narrower one mostly under or over
    the other, hardly overlapping vertically) or a small one inside another's box."""
    parts = sorted(main, key=lambda g: g.x)
    changed = True
    while changed:
        changed = False
        for i in range(len(parts)):
            for j in range(i + 1, len(parts)):
                a, b = parts[i], parts[j]
                if b.x >= a.x1:
                    break
                ox = _overlap(a.x, a.x1, b.x, b.x1)
                oy = _overlap(a.y, a.y1, b.y, b.y1)
                small, big = (a, b) if a.area <= b.area else (b, a)
                stacked = ox >= 0.5 * min(a.w, b.w) and oy <= 0.3 * min(a.h, b.h)
                inside = (small.area < 0.3 * big.area and small.x >= big.x and small.x1 <= big.x1 and small.y >= big.y and small.y1 <= big.y1)
                if stacked or inside:
                    parts[i] = Glyph.merge([a, b])
                    del parts[j]
                    parts.sort(key=lambda g: g.x)
                    changed = True
                    break
            if changed:
                break
    return parts


#: A period is a dot the pen made: at least a disc as wide as the pen's stroke, this many
#: square stroke widths of ink (pi / 4); a smaller speck on the baseline is dust or noise.
DOT_AREA = math.pi / 4


def mark_of(g: Glyph, top: float, bottom: float, sw: float) -> str | None:
    """The punctuation mark ``g`` is by its shape and place relative to a line's body band
    (``top`` to ``bottom``; ``sw`` the stroke width), or None."""
    hb = max(bottom - top, 1.0)
    rel = (g.cy - top) / hb  # 0 at the top of the body, 1 on the baseline
    if g.w >= 1.3 * g.h and g.h <= max(0.35 * hb, 2.5 * sw) and 0.25 * hb <= g.w <= 1.2 * hb and 0.35 <= rel <= 0.8:
        return "-"
    if g.h <= 0.35 * hb and g.w <= 0.35 * hb and g.w <= 2.5 * g.h and g.h <= 2.5 * g.w and rel >= 0.7 and g.area >= DOT_AREA * sw * sw:
        return "."
    if g.h <= 0.55 * hb and g.w <= 0.35 * hb and g.h >= 1.3 * g.w and g.y1 > bottom + 0.1 * hb and g.y < bottom and g.area >= sw * sw:
        return ","
    return None


def _is_dot(g: Glyph, hb: float) -> bool:
    return g.h <= 0.35 * hb and g.w <= 0.35 * hb and g.w <= 2.5 * g.h and g.h <= 2.5 * g.w


def _colons(main: list[Glyph], small: list[Glyph], top: float, bottom: float) -> tuple[list[Glyph], list[Glyph]]:
    """Pairs of dots, one in the middle of the body and one on the baseline, one above the
    other and under no character: colons. Returns (the colons, the other small parts)."""
    hb = max(bottom - top, 1.0)
    rel = lambda g: (g.cy - top) / hb  # noqa: E731
    free = [g for g in small if _is_dot(g, hb) and all(_overlap(g.x, g.x1, m.x, m.x1) < 0.5 * g.w for m in main)]
    colons: list[Glyph] = []
    used: set[int] = set()
    for u in free:
        if id(u) in used or not 0.1 <= rel(u) <= 0.65:
            continue
        for lo in free:
            if id(lo) in used or lo is u or rel(lo) < 0.7 or lo.y - u.y1 < 0.1 * hb:
                continue
            if _overlap(u.x, u.x1, lo.x, lo.x1) >= 0.3 * min(u.w, lo.w):
                m = Glyph.merge([u, lo])
                colons.append(Glyph(m.x, m.y, m.mask, ":"))
                used.update((id(u), id(lo)))
                break
    return colons, [g for g in small if id(g) not in used]


def slash_of(g: Glyph, top: float, bottom: float) -> bool:
    """Whether a tall part is a slash (``/``, as in ``04/12/1987``): one straight stroke
    spanning most of the body, leaning right by :data:`SLASH_LEAN` degrees or more (a
    handwritten 1 or l stands far more upright, and carries a flag or a foot)."""
    hb = max(bottom - top, 1.0)
    if g.h < 0.6 * hb or g.w < 0.3 * g.h:
        return False
    ys, xs = np.nonzero(g.mask)
    if xs.size < 8:
        return False
    cov = np.cov(np.stack([xs.astype(np.float64), ys.astype(np.float64)]))
    evals, evecs = np.linalg.eigh(cov)
    major = evecs[:, 1]  # (dx, dy) of the stroke's direction
    lean = math.degrees(math.atan2(abs(major[0]), abs(major[1])))
    straight = math.sqrt(max(evals[0], 0.0)) <= SLASH_THIN * math.sqrt(max(evals[1], 1e-9))
    return bool(cov[0, 1] < 0 and SLASH_LEAN <= lean <= 65.0 and straight)


def cross_of(g: Glyph, top: float, bottom: float) -> bool:
    """Whether a part is a cross (``+``, as in ``+33``): about as wide as tall, between a
    third and one body height, centred in the body, made of a horizontal and a vertical bar
    (:data:`CROSS_SPAN`) that cross in its middle half, with little ink off them
    (:data:`CROSS_OFF`; an x, a t or a 4 has more)."""
    hb = max(bottom - top, 1.0)
    rel = (g.cy - top) / hb
    if not (0.3 * hb <= g.h <= 1.1 * hb and 0.5 * g.h <= g.w <= 2.0 * g.h and 0.2 <= rel <= 0.8):
        return False
    m = g.mask
    ink = int(m.sum())
    if ink < 8:
        return False
    t = 0.5 * stroke_width(m) + max(1.0, 0.05 * min(g.w, g.h))  # a bar's half width, and a margin
    row, col = int(np.argmax(m.sum(axis=1))), int(np.argmax(m.sum(axis=0)))
    if not (0.25 * g.h <= row <= 0.75 * g.h and 0.25 * g.w <= col <= 0.75 * g.w):
        return False
    ys, xs = np.mgrid[0 : g.h, 0 : g.w]
    hbar, vbar = np.abs(ys - row) <= t, np.abs(xs - col) <= t
    across = float((m & hbar).any(axis=0).mean())  # the columns the horizontal bar covers
    down = float((m & vbar).any(axis=1).mean())
    off = float((m & ~hbar & ~vbar).sum()) / ink
    return across >= CROSS_SPAN and down >= CROSS_SPAN and off <= CROSS_OFF


def parenthesis_of(g: Glyph, top: float, bottom: float) -> str | None:
    """``(`` or ``)`` when a part is a parenthesis, else None: at least 0.8 body heights
    tall, thin (:data:`PAREN_WIDTH`), one stroke down its whole height whose centre line is
    a parabola (within :data:`PAREN_SMOOTH`) sagging by :data:`PAREN_SAG` or more, its
    vertex in the middle of the height, opening to the right (``(``) or the left (``)``),
    both its ends bending away from its middle.
    A 1, l or I is straight, a J hooks at its end only."""
    hb = max(bottom - top, 1.0)
    if g.h < 0.8 * hb or g.w > PAREN_WIDTH * g.h or g.h < 8:
        return None
    m = g.mask
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size < 0.9 * g.h:
        return None  # not one stroke from top to bottom
    xs = np.arange(g.w, dtype=np.float64)
    centre = (m[rows] * xs).sum(axis=1) / m[rows].sum(axis=1)
    y = rows.astype(np.float64) / g.h  # heights as shares of the part's
    a, b, c = np.polyfit(y, centre / g.h, 2)
    if abs(a) < 1e-9:
        return None
    vertex = -b / (2 * a)
    sag = abs(a) * 0.25  # the parabola's departure from its chord over the height (y: 0..1)
    resid = float(np.sqrt(np.mean((np.polyval((a, b, c), y) - centre / g.h) ** 2)))
    if not (0.2 <= vertex <= 0.8 and sag >= PAREN_SAG and resid <= PAREN_SMOOTH):
        return None
    # both ends bend away from the middle (a J or a hooked 1 bends at one end only)
    side = 1.0 if a > 0 else -1.0  # "(": the ends lie right of the middle
    k = max(1, rows.size // 8)
    middle = centre[(y >= 0.3) & (y <= 0.7)]
    if middle.size == 0:
        return None
    extreme = float(middle.min() if a > 0 else middle.max())
    ends = min(side * (float(centre[:k].mean()) - extreme), side * (float(centre[-k:].mean()) - extreme))
    if ends < 0.5 * PAREN_SAG * g.h:
        return None
    return "(" if a > 0 else ")"


def asked_mark_of(g: Glyph, top: float, bottom: float, asked: str) -> str | None:
    """The mark of :data:`ASKED_MARKS` other than ``/`` (which :func:`segment` marks
    itself) that a part of a line with body ``top`` to ``bottom`` is by its shape, of those
    in ``asked`` (a cross ``+``, a parenthesis ``(`` or ``)``), or None."""
    if "+" in asked and cross_of(g, top, bottom):
        return "+"
    if "(" in asked or ")" in asked:
        paren = parenthesis_of(g, top, bottom)
        if paren is not None and paren in asked:
            return paren
    return None


def _attach_small(main: list[Glyph], small: list[Glyph], top: float, bottom: float, sw: float) -> list[Glyph]:
    """Give each small part of a line a place: the dot of an i/j or a piece of a broken
    stroke (merged into a main part), a punctuation mark, or nothing (a speck)."""
    hb = max(bottom - top, 1.0)
    pieces: dict[int, list[Glyph]] = {i: [g] for i, g in enumerate(main)}
    marks, small = _colons(main, small, top, bottom)
    loose: list[Glyph] = []
    for s in sorted(small, key=lambda g: g.area, reverse=True):
        over = [_overlap(s.x, s.x1, m.x, m.x1) for m in main]
        best = int(np.argmax(over)) if over else -1
        if s.y1 <= top + 0.3 * hb and s.h <= 0.45 * hb and s.w <= 0.45 * hb:
            # above the body: the dot of an i or j belongs to the nearest part below it
            tol = 0.35 * hb
            below = [i for i, m in enumerate(main) if m.x - tol <= s.cx <= m.x1 + tol and m.y >= s.y1 - 0.1 * hb]
            if below:
                i = min(below, key=lambda i: abs(main[i].cx - s.cx))
                pieces[i].append(s)
            continue  # no character under it: a speck or a stray mark
        if best >= 0 and over[best] >= 0.5 * s.w:
            pieces[best].append(s)  # a piece of that character
            continue
        mark = mark_of(s, top, bottom, sw)
        if mark is not None:
            marks.append(Glyph(s.x, s.y, s.mask, mark))
            continue
        if s.cy < top + 0.4 * hb and main:
            # high up and no mark: a broken-off top stroke (of a 5, 7, T) of the nearest part
            gap = [max(m.x - s.x1, s.x - m.x1, 0) for m in main]
            i = int(np.argmin(gap))
            if gap[i] <= 0.3 * hb:
                pieces[i].append(s)
            continue
        if s.h >= 0.25 * hb or s.w >= 0.5 * hb:
            loose.append(s)  # big enough to be a character of its own
    merged = [Glyph.merge(p) if len(p) > 1 else p[0] for p in pieces.values()]
    return merged + loose + marks


@dataclass(frozen=True)
class Spacing:
    """How clearly a line's gaps must fall in two groups for the wider to be spaces (step 6
    of the module docstring): the least ratio between the first wide gap and the gap below
    it, and whether the letter gaps must be more than half of all (else half is enough)."""

    jump: float = 1.5
    strict_majority: bool = False


#: Spaces in running text ...
LINE_SPACING = Spacing()
#: ... and within one form field's value.
FIELD_SPACING = Spacing(jump=2.0, strict_majority=True)


def find_spaces(gaps: Sequence[float], height: float, spacing: Spacing = LINE_SPACING) -> list[bool]:
    """Which of a line's gaps (between consecutive glyph boxes, in pixels) are spaces,
    judged against the line's own spacing; ``height`` is its body height. See step 6 of
    the module docstring."""
    g = np.asarray(gaps, np.float64)
    if g.size == 0:
        return []
    lo = 0.25 * height
    if g.size == 1:  # nothing to compare with: half a body height apart is a space
        return [bool(g[0] > min(max(0.5 * height, lo), 0.9 * height))]
    v, floor = np.sort(g), 0.05 * height
    best, threshold = 0.0, math.inf  # one group (evenly spaced letters): no space at all
    for k in range(len(v) - 1):  # the clearest jump between sorted gaps
        a, b = float(v[k]), float(v[k + 1])
        letters = 2 * (k + 1)  # letter gaps are the majority of a line's gaps
        if letters < len(v) or (spacing.strict_majority and letters == len(v)):
            continue
        typical = max(float(np.median(v[: k + 1])), floor)
        ratio = b / max(a, floor)
        if b >= lo and b - a >= 0.15 * height and b >= 2.0 * typical and ratio >= spacing.jump and ratio > best:
            best, threshold = ratio, max((a + b) / 2.0, lo)
    return [bool(x > threshold) for x in g]


def _walls(removed: np.ndarray, top: float, bottom: float) -> np.ndarray:
    """Per column: whether it is part of a wall, a narrow vertical form line (the side of a
    box, a cell wall or tick of a comb field) that covers a third of the band's height."""
    hb = max(bottom - top, 1.0)
    rows = removed[max(0, int(top)) : int(np.ceil(bottom)) + 1]
    flags = rows.sum(axis=0) >= hb / 3
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2]):
        if stop - start > 0.3 * hb:  # not narrow: a thick horizontal rule, not a wall
            flags[start:stop] = False
    return flags


def _count_runs(flags: np.ndarray) -> int:
    return int(np.count_nonzero(flags[1:] & ~flags[:-1]) + (1 if flags.size and flags[0] else 0))


def _build_line(parts: list[Glyph], small: list[Glyph], sw: float, removed: np.ndarray) -> Line | None:
    top, bottom = _band(parts)
    # judged against the line's own body: parts under half its height are small ones too
    low = [g for g in parts if g.h < _SMALL * (bottom - top)]
    if len(low) < len(parts):
        parts, small = [g for g in parts if g.h >= _SMALL * (bottom - top)], small + low
    glyphs = _attach_small(_merge_stacked(parts), small, top, bottom, sw)
    glyphs = [Glyph(g.x, g.y, g.mask, "/") if g.mark is None and slash_of(g, top, bottom) else g for g in glyphs]
    if not any(g.mark is None for g in glyphs):
        return None
    glyphs.sort(key=lambda g: g.cx)
    return Line(glyphs, line_spaces(glyphs, top, bottom, removed), top, bottom)


def line_spaces(glyphs: Sequence[Glyph], top: float, bottom: float, removed: np.ndarray, spacing: Spacing = LINE_SPACING) -> list[bool]:
    """Step 6 of the module docstring for a line's glyphs (left to right) with body band
    ``top`` to ``bottom``: whether a space comes before each (the first: False).
    ``removed`` is the form-line ink :func:`segment` took out (the walls of comb boxes)."""
    if not glyphs:
        return []
    gaps = [b.x - a.x1 for a, b in zip(glyphs, glyphs[1:])]
    spaces = find_spaces(gaps, bottom - top, spacing)
    walls = _walls(removed, top, bottom)
    if walls.any():  # boxed characters: one wall between two is no space, an empty cell is one
        for k, (a, b) in enumerate(zip(glyphs, glyphs[1:])):
            n = _count_runs(walls[a.x1 : max(a.x1, b.x)])
            spaces[k] = spaces[k] if n == 0 else n >= 2
    return [False] + spaces


def _min_area(sw: float) -> float:
    """Parts smaller than this (pixels) are specks."""
    return max(3.0, _SPECK_SW2 * sw * sw)


def writing_scale(mask: np.ndarray) -> tuple[float, float | None]:
    """Step 1 of the module docstring: the stroke width and the character height of the
    writing in a boolean ink mask (None when no part looks like writing). Parts cut by
    the image's edge are left out of the height when the others hold a quarter of the ink or more."""
    sw = stroke_width(mask)
    min_area = _min_area(sw)
    stats = components(mask)[1]
    x, y, w, h, area = (stats[:, i] for i in range(5))
    inside = (x > 0) & (y > 0) & (x + w < mask.shape[1]) & (y + h < mask.shape[0])
    # parts cut by the image's edge (a neighbouring row of a form crop) do not show their
    # height: measure the others when they hold a good share of the ink
    whole = stats[inside] if area[inside & (area >= min_area)].sum() >= 0.25 * area[area >= min_area].sum() else stats
    height = char_height(whole, min_area)
    if height is None:  # nothing but lines and frames: take out long straight runs first
        first = mask & ~runs(mask, max(8, int(round(12 * sw))), True)
        height = char_height(components(first)[1], min_area)
    return sw, height


def without_form_lines(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its form lines removed (steps 1-2 of the module docstring), as the
    segmentation sees it; unchanged when no writing is found in it."""
    _, height = writing_scale(mask)
    if height is None or height < MIN_HEIGHT:
        return mask
    return remove_form_lines(mask, height)[0]


def segment(mask: np.ndarray | None) -> Layout:
    """Lines of glyphs in a boolean ink mask (see the module docstring for the steps).
    An empty mask, or one holding only form lines and specks, gives no lines."""
    if mask is None or not mask.any():
        empty = np.zeros((0, 0), bool) if mask is None else mask
        return Layout([], 0.0, 0.0, empty, np.zeros_like(empty))
    sw, height = writing_scale(mask)
    min_area = _min_area(sw)
    if height is None or height < MIN_HEIGHT:  # no writing, or too small to read: noise
        return Layout([], float(height or 0.0), sw, np.zeros_like(mask), mask.copy())
    kept, removed = remove_form_lines(mask, height)
    labels, stats = components(kept)
    speck = stats[:, 4] < min_area
    glyphs: list[Glyph] = []
    for i, (x, y, w, h, _) in enumerate(stats):
        if speck[i]:
            continue
        glyphs.append(Glyph(int(x), int(y), labels[y : y + h, x : x + w] == i + 1))
    kept &= ~np.isin(labels, np.flatnonzero(speck) + 1)
    main = [g for g in glyphs if g.h >= _TALL * height]
    small = [g for g in glyphs if g.h < _TALL * height]
    groups = _group_lines(main, height)
    bands = [_band(grp) for grp in groups]
    extra: list[list[Glyph]] = [[] for _ in groups]
    for s in small:  # each small part joins the line whose body band is nearest
        dist = [max(t - s.cy, s.cy - b, 0.0) / max(b - t, 1.0) for t, b in bands]
        if dist and min(dist) <= 0.8:
            extra[int(np.argmin(dist))].append(s)
    lines = [ln for grp, ex in zip(groups, extra) if (ln := _build_line(grp, ex, sw, removed)) is not None]
    return Layout(lines, float(height), sw, kept, removed | (mask & ~kept))


def glyph_crop(glyph: Glyph, flat: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """One character's picture for the classifier: its ink cut from the flattened image
    ``flat`` (ink bright on black, :meth:`hcr.preprocess.InkMap.flattened`) with a margin,
    every other ink pixel of the mask ``ink`` blanked out, on a black border all round."""
    m = max(4, int(round(0.15 * max(glyph.w, glyph.h))))
    h, w = flat.shape
    x0, y0 = max(0, glyph.x - m), max(0, glyph.y - m)
    x1, y1 = min(w, glyph.x1 + m), min(h, glyph.y1 + m)
    own = np.zeros((y1 - y0, x1 - x0), np.uint8)
    own[glyph.y - y0 : glyph.y1 - y0, glyph.x - x0 : glyph.x1 - x0] = glyph.mask
    allowed = (cv2.dilate(own, np.ones((5, 5), np.uint8)) > 0) & ~(ink[y0:y1, x0:x1] & (own == 0))
    crop = np.zeros((y1 - y0 + 2 * m, x1 - x0 + 2 * m), np.uint8)
    crop[m:-m, m:-m] = np.where(allowed, flat[y0:y1, x0:x1], 0)
    return crop


def cut_candidates(glyph: Glyph, height: float, max_cuts: int = 5) -> list[int]:
    """Columns (relative to ``glyph.x``) where a glyph of touching characters may be cut:
    the lowest minima of its smoothed column ink profile, at least 0.2 body heights from
    either side and from each other, best first."""
    margin = max(2, int(round(0.2 * height)))
    if glyph.w < 2 * margin + 1:
        return []
    prof = glyph.mask.sum(axis=0).astype(np.float64)
    prof = np.convolve(prof, np.ones(3) / 3.0, mode="same")
    inner = np.arange(margin, glyph.w - margin)
    left, right = prof[inner - 1], prof[np.minimum(inner + 1, glyph.w - 1)]
    minima = inner[(prof[inner] <= left) & (prof[inner] <= right)]
    order = minima[np.argsort(prof[minima], kind="stable")]
    cuts: list[int] = []
    for c in order:
        if all(abs(int(c) - k) >= margin for k in cuts):
            cuts.append(int(c))
        if len(cuts) >= max_cuts:
            break
    return cuts
