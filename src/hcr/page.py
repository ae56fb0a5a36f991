"""What to read on a page, a form crop or a line: its lines, which characters are printed,
and which line is a field's value. Both reading engines (:mod:`hcr.reader`) start here.

1. **Ink and layout**: :func:`hcr.preprocess.find_ink` (frames and card edges dropped) and
   :func:`hcr.segment.segment` (form lines removed, lines, characters, marks).
2. **Printed or handwritten**: each line's ink goes through the shipped ``printed`` tagger
   (:class:`PrintedModel`, a small CRNN that tags every character of a line ``P`` or
   ``H``; see ``src/hcr/pretrained/printed.md``), and each character gets the tags that fall
   on it. Within a line the characters are labelled in runs (:func:`printed_runs`): the
   labelling that best agrees with the tags, where changing from printed to handwritten costs
   :data:`SWITCH_AT_GAP` at a wide gap (at least :data:`WIDE_GAP` times the taller of its
   two characters) and :data:`SWITCH_IN_WORD` elsewhere, so a form label (``NOM :``) and
   the name after it separate cleanly while one unsure letter does not flip alone. A
   character no tag fell on takes its neighbours' side. (The layout's own spaces are no guide
   here: in a line of a tight printed label and a comb-spaced name they fall between
   every handwritten letter.)
3. **Spaces** are found again among the handwritten characters alone
   (:func:`hcr.segment.line_spaces`): a printed label's tight letters no longer set the
   scale for the comb-spaced name beside it.
4. **Field** (``field=True``): the value of a field crop is the one handwritten line that
   fills it: the most handwritten ink, weighed by how central the line sits; a line whose
   characters are cut by the crop's top or bottom edge is a neighbouring row, a quarter as
   likely (:func:`field_line`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import ModelFileError
from .line_recognizer import LineRecognizer
from .preprocess import InkMap, PreprocessSpec, find_ink
from .segment import Glyph, Layout, Line, line_spaces, segment

__all__ = ["PRINTED_MODEL", "Page", "PageLine", "PrintedModel", "analyse", "field_line", "printed_runs", "wide_gaps"]

#: The shipped printed-or-handwritten classifier.
PRINTED_MODEL = "printed"
#: Cost (in nats of the classifier's evidence) of changing sides at a wide gap ...
SWITCH_AT_GAP = 1.5
#: ... and at a narrower one.
SWITCH_IN_WORD = 4.0
#: A gap this many times the taller of its two characters is wide.
WIDE_GAP = 0.8
#: A line cut by the crop's top or bottom edge counts this much in a field.
CUT_WEIGHT = 0.25


class PrintedModel:
    """The ``printed`` tagger (or another sequence model file whose alphabet is ``H``,
    ``P`` and space): a small CRNN that tags each character of a line printed (``P``) or
    handwritten (``H``), trained on form rows of printed labels beside real handwriting
    (:mod:`hcr.data.printed`). It reads the whole line, so the context (a tight,
    baseline-true label beside freer or comb-spaced writing) decides, not one character."""

    def __init__(self, recognizer: LineRecognizer) -> None:
        alphabet = set(recognizer.codec.alphabet) - {" "}
        if alphabet != {"H", "P"}:
            raise ModelFileError(f"{recognizer.backend.source}: a printed tagger's alphabet is H, P and space, not {sorted(alphabet)}")
        self.recognizer = recognizer

    @classmethod
    def load(cls, model: str | os.PathLike[str] = PRINTED_MODEL, *, device: str = "cpu") -> "PrintedModel":
        return cls(LineRecognizer.load(model, device=device))

    def probabilities(self, glyphs: Sequence[Glyph], flat: np.ndarray) -> list[float | None]:
        """P(printed) of each glyph of one line (left to right), from tagging the line's
        ink (``flat``: ink bright on black, the glyphs' own pixels kept); None for a glyph
        no tag fell on."""
        if not glyphs:
            return []
        mask = np.zeros(flat.shape, bool)
        for g in glyphs:
            mask[g.y : g.y1, g.x : g.x1] |= g.mask
        pre = self.recognizer.preprocess(np.where(mask, flat, 0).astype(np.uint8))
        if pre.blank or pre.box is None:
            return [None] * len(glyphs)
        dec = self.recognizer.recognize_inputs([pre])[0]
        spec, stride = self.recognizer.spec, self.recognizer.stride
        bx, _, bw, _ = pre.box
        f = (pre.image.shape[1] - 2 * spec.pad) / max(bw, 1)
        votes: list[list[float]] = [[] for _ in glyphs]
        centres = np.asarray([g.cx for g in glyphs])
        for c in dec.chars:
            if c.char not in "HP":
                continue
            x = bx + ((c.columns[0] + c.columns[1] + 1) / 2 * stride - spec.pad) / f
            inside = [k for k, g in enumerate(glyphs) if g.x - 1 <= x <= g.x1 + 1]
            k = inside[0] if len(inside) == 1 else int(np.argmin(np.abs(centres - x)))
            votes[k].append(c.confidence if c.char == "P" else 1.0 - c.confidence)
        return [float(np.mean(v)) if v else None for v in votes]


def printed_runs(p: Sequence[float | None], wide: Sequence[bool]) -> list[bool]:
    """Printed (True) or handwritten per character of a line: the labelling with the least
    cost (step 2 of the module docstring). ``p``: P(printed) per character, None for a
    punctuation mark (no evidence either way); ``wide[i]``: a wide gap before character i."""
    n = len(p)
    if n == 0:
        return []
    eps = 1e-4
    cost = np.zeros((n, 2))  # [:, 0] handwritten, [:, 1] printed
    for i, q in enumerate(p):
        if q is not None:
            q = min(max(float(q), eps), 1 - eps)
            cost[i] = (-math.log(1 - q), -math.log(q))
    total = cost[0].copy()
    back = np.zeros((n, 2), np.int64)
    for i in range(1, n):
        switch = SWITCH_AT_GAP if wide[i] else SWITCH_IN_WORD
        new = np.empty(2)
        for s in (0, 1):
            stay, move = total[s], total[1 - s] + switch
            back[i, s] = s if stay <= move else 1 - s
            new[s] = min(stay, move) + cost[i, s]
        total = new
    state = int(np.argmin(total))
    out = [False] * n
    for i in range(n - 1, -1, -1):
        out[i] = bool(state)
        state = int(back[i, state])
    return out


@dataclass
class PageLine:
    """A line of the layout with, per glyph, whether it is printed, and the spaces among its
    handwritten glyphs (``hand_spaces[i]``: a space before ``hand[i]``)."""

    line: Line
    printed: list[bool]
    hand: list[Glyph] = field(default_factory=list)
    hand_spaces: list[bool] = field(default_factory=list)

    @property
    def handwritten(self) -> bool:
        return any(g.mark is None for g in self.hand)

    @property
    def all_printed(self) -> bool:
        return any(self.printed) and not self.handwritten


@dataclass
class Page:
    """What :func:`analyse` found: the decoded ``grey`` image, its ink, layout, lines and
    the field's line (an index into ``lines``; None when not asked for or not found)."""

    grey: np.ndarray
    found: InkMap
    layout: Layout
    lines: list[PageLine]
    field: int | None = None

    @property
    def flat(self) -> np.ndarray:
        return self.found.flattened()

    @property
    def printed_only(self) -> bool:
        """Writing was found, all of it printed."""
        return bool(self.lines) and all(pl.all_printed for pl in self.lines)


def wide_gaps(glyphs: Sequence[Glyph]) -> list[bool]:
    """Per glyph of a line (left to right): whether the gap before it is wide, at least
    :data:`WIDE_GAP` times the taller of the two characters around it."""
    return [False] + [b.x - a.x1 >= WIDE_GAP * max(a.h, b.h) for a, b in zip(glyphs, glyphs[1:])]


def field_line(lines: Sequence[PageLine], shape: tuple[int, int]) -> int | None:
    """The line holding a field crop's value (step 4 of the module docstring), or None
    when no line has handwriting."""
    h = shape[0]
    best, best_score = None, 0.0
    for k, pl in enumerate(lines):
        hand = [g for g in pl.hand if g.mark is None]
        if not hand:
            continue
        ink = float(sum(g.area for g in hand))
        cut = sum(1 for g in hand if g.y <= 0 or g.y1 >= h) > len(hand) / 2
        cy = float(np.median([g.cy for g in hand]))
        central = 1.0 - 0.5 * min(abs(cy - h / 2) / max(h / 2, 1.0), 1.0)
        score = ink * central * (CUT_WEIGHT if cut else 1.0)
        if score > best_score:
            best, best_score = k, score
    return best


def analyse(grey: np.ndarray, ink_spec: PreprocessSpec, printed: PrintedModel | None, *, field: bool = False) -> Page:
    """Steps 1-4 of the module docstring for a decoded grey image. Without a ``printed``
    model every character counts as handwritten."""
    found = find_ink(grey, ink_spec)
    layout = segment(found.mask)
    lines: list[PageLine] = []
    if found.mask is not None and layout.lines:
        flat = found.flattened()
        for ln in layout.lines:
            if printed is not None:
                p = printed.probabilities(ln.glyphs, flat)
                flags = printed_runs(p, wide_gaps(ln.glyphs))
            else:
                flags = [False] * len(ln.glyphs)
            hand = [g for g, f in zip(ln.glyphs, flags) if not f]
            spaces = line_spaces(hand, ln.top, ln.bottom, layout.removed) if hand else []
            lines.append(PageLine(ln, flags, hand, spaces))
    page = Page(grey, found, layout, lines)
    if field:
        page.field = field_line(lines, grey.shape)
    return page
