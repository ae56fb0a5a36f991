"""What to read on a page, a form crop or a line: its lines, which characters are printed,
and which line is a field's value. Both reading engines (:mod:`hcr.reader`) start here.

1. **Ink and layout**: :func:`hcr.preprocess.find_ink` (frames and card edges dropped) and
   :func:`hcr.segment.segment` (form lines removed, lines, characters, marks).
2. **Printed or handwritten**: every character's crop (:func:`hcr.segment.glyph_crop`)
   goes through the shipped ``printed`` classifier (:class:`PrintedModel`; trained on
   typeset text against real handwriting captured alike, see
   ``src/hcr/pretrained/printed.md``). Within a line the characters are labelled in runs
   (:func:`printed_runs`): the labelling that best agrees with the classifier, where
   changing from printed to handwritten costs :data:`SWITCH_AT_GAP` at a wide gap (at least
   :data:`WIDE_GAP` times the taller of its two characters) and :data:`SWITCH_IN_WORD`
   elsewhere, so a form label (``NOM :``) and the name after it separate cleanly while one
   unsure letter does not flip alone. The layout adds its own evidence: a character that
   stands apart from both neighbours (:func:`letter_spaced`) is unlikely print
   (:data:`LETTER_SPACED_COST`), since typeset letters nearly touch within a word while
   block capitals written in a comb or a neat hand stand apart, and one at a time a
   thin-pen capital looks printed to the classifier. The classifier was trained on equal numbers of both
   kinds; the runs weigh its answers with a prior of :data:`PRINTED_PRIOR` for print
   instead, because the two mistakes do not cost the same: a label kept adds a few
   characters to the text, handwriting dropped loses the answer. (The layout's own spaces
   are no guide here: in a line of a tight printed label and a comb-spaced name they fall
   between every handwritten letter.)
3. **Spaces** are found again among the handwritten characters alone
   (:func:`hcr.segment.line_spaces`): a printed label's tight letters no longer set the
   scale for the comb-spaced name beside it. A field's value asks for clearer spaces
   (:data:`hcr.segment.FIELD_SPACING`).
4. **Field** (``field=True``): the value of a field crop is the one handwritten line that
   fills it: the most handwritten ink, weighed by how central the line sits; a line whose
   characters are cut by the crop's top or bottom edge (they touch it, and are shorter than
   the tallest line's) is a neighbouring row, a quarter as likely (:func:`field_line`).
   Within that line, the value is its run of handwriting with the most ink
   (:func:`value_run`): a label separates it from whatever is left of it. Marks a space
   apart at the value's ends are specks, not part of it (:func:`trim_marks`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from ..errors import ModelFileError
from ..preprocess import InkMap, Preprocessed, PreprocessSpec, find_ink, preprocess
from ..segment import FIELD_SPACING, Glyph, Layout, Line, glyph_crop, line_spaces, segment
from .char import Predictor

__all__ = ["PRINTED_MODEL", "Page", "PageLine", "PrintedModel", "analyse", "field_line", "letter_spaced", "printed_runs", "trim_marks", "value_run", "wide_gaps"]

#: The shipped printed-or-handwritten classifier.
PRINTED_MODEL = "printed"
#: Cost (in nats of the classifier's evidence) of changing sides at a wide gap ...
SWITCH_AT_GAP = 2.0
#: ... and at a narrower one.
SWITCH_IN_WORD = 4.0
#: A gap this many times the taller of its two characters is wide.
WIDE_GAP = 0.8
#: The prior probability of print the runs weigh the classifier's answers with: a lone
#: character is taken for print only when the classifier gives it more than 0.8.
PRINTED_PRIOR = 0.2
#: A character standing apart from both its neighbours by at least this many times the
#: taller of the two (marks such as dots aside) is letter-spaced: ...
LETTER_SPACED = 0.3
#: ... and counts this much (nats) against print. Typeset letters touch or nearly touch
#: their neighbours within a word and a one-letter printed word is rare, while block
#: capitals written in a comb or a neat hand stand apart: the classifier, which sees one
#: character at a time, cannot tell a thin-pen capital from a printed one.
LETTER_SPACED_COST = 2.5
#: A colon is taken as this likely printed: on a form it ends a label (``NOM :``), so between
#: a label and the value it goes with the label, while within handwriting (``12:30``) the
#: cost of two changes of side keeps it handwritten.
COLON_PRINTED = 0.9
#: A line cut by the crop's top or bottom edge counts this much in a field: one whose
#: characters mostly touch that edge and are less than CUT_HEIGHT times as tall (median) as
#: those of the tallest line (a tight crop touches its edges too, but with whole characters).
CUT_WEIGHT = 0.25
CUT_HEIGHT = 0.8


class PrintedModel:
    """The ``printed`` classifier (or another two-class model file with the classes
    ``handwritten`` and ``printed``): the probability that a character is printed."""

    def __init__(self, predictor: Predictor) -> None:
        symbols = predictor.label_map.symbols
        if sorted(symbols) != ["handwritten", "printed"]:
            raise ModelFileError(f"{predictor.meta.get('source', 'model')}: a printed/handwritten model has the classes handwritten and printed, not {list(symbols)}")
        self.predictor = predictor
        self.index = symbols.index("printed")
        self.spec = replace(predictor.spec, polarity="light-on-dark")  # crops are cut from the ink-bright image

    @classmethod
    def load(cls, model: str | os.PathLike[str] = PRINTED_MODEL, *, device: str = "cpu") -> "PrintedModel":
        return cls(Predictor.load(model, device=device))

    def probabilities(self, glyphs: Sequence[Glyph], flat: np.ndarray, ink: np.ndarray, inputs: dict[int, Preprocessed] | None = None) -> list[float | None]:
        """P(printed) of each glyph (None for one the preprocessing finds blank); ``flat``
        and ``ink``: the page's flattened image and ink mask (:func:`hcr.segment.glyph_crop`).
        ``inputs`` (if given) receives each glyph's model input, by ``id(glyph)``: a
        character classifier with the same spec reads them as they are."""
        made = [preprocess(glyph_crop(g, flat, ink), self.spec) for g in glyphs]
        if inputs is not None:
            inputs.update((id(g), p) for g, p in zip(glyphs, made))
        out: list[float | None] = [None] * len(glyphs)
        todo = [i for i, p in enumerate(made) if not p.blank]
        if todo:
            probs = self.predictor.backend.probs(np.stack([made[i].image for i in todo]), temperature=self.predictor.temperature)
            for i, q in zip(todo, probs[:, self.index]):
                out[i] = float(q)
        return out


def printed_runs(p: Sequence[float | None], wide: Sequence[bool], spaced: Sequence[bool] | None = None) -> list[bool]:
    """Printed (True) or handwritten per character of a line: the labelling with the least
    cost (step 2 of the module docstring). ``p``: P(printed) per character, None where
    there is no evidence either way (a crop the preprocessing finds blank: the character
    takes its neighbours' side); ``wide[i]``: a wide gap before character i; ``spaced[i]``:
    character i is letter-spaced (:func:`letter_spaced`), evidence against print."""
    n = len(p)
    if n == 0:
        return []
    eps = 1e-4
    cost = np.zeros((n, 2))  # [:, 0] handwritten, [:, 1] printed
    for i, q in enumerate(p):
        if q is not None:
            q = min(max(float(q), eps), 1 - eps)
            cost[i] = (-math.log((1 - q) * (1 - PRINTED_PRIOR)), -math.log(q * PRINTED_PRIOR))
            if spaced is not None and spaced[i]:
                cost[i, 1] += LETTER_SPACED_COST
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
    """What :func:`analyse` found: the decoded ``grey`` image, its ink, layout, lines, the
    field's line (an index into ``lines``; None when not asked for or not found), and the
    printed model's input of each glyph (``inputs``, made with ``input_spec``)."""

    grey: np.ndarray
    found: InkMap
    layout: Layout
    lines: list[PageLine]
    field: int | None = None
    inputs: dict[int, Preprocessed] = dataclasses.field(default_factory=dict, repr=False)  # the printed model's input per glyph (by id)
    input_spec: PreprocessSpec | None = None  # ... made with this spec

    @functools.cached_property
    def flat(self) -> np.ndarray:
        """The ink, bright on a black, flat background (:meth:`InkMap.flattened`), made once."""
        return self.found.flattened()

    @property
    def printed_only(self) -> bool:
        """Writing was found, all of it printed."""
        return bool(self.lines) and all(pl.all_printed for pl in self.lines)


def wide_gaps(glyphs: Sequence[Glyph]) -> list[bool]:
    """Per glyph of a line (left to right): whether the gap before it is wide, at least
    :data:`WIDE_GAP` times the taller of the two characters around it."""
    return [False] + [b.x - a.x1 >= WIDE_GAP * max(a.h, b.h) for a, b in zip(glyphs, glyphs[1:])]


def letter_spaced(glyphs: Sequence[Glyph]) -> list[bool]:
    """Per glyph of a line (left to right): whether it stands apart from the characters on
    both sides (one side at the line's ends), by at least :data:`LETTER_SPACED` times the
    taller of the two; marks (dots, commas) are passed over and are never letter-spaced."""
    out = [False] * len(glyphs)
    idx = [i for i, g in enumerate(glyphs) if g.mark is None]
    if len(idx) < 2:
        return out
    apart = [glyphs[b].x - glyphs[a].x1 >= LETTER_SPACED * max(glyphs[a].h, glyphs[b].h) for a, b in zip(idx, idx[1:])]
    for k, i in enumerate(idx):
        out[i] = (k == 0 or apart[k - 1]) and (k == len(idx) - 1 or apart[k])
    return out


def field_line(lines: Sequence[PageLine], shape: tuple[int, int]) -> int | None:
    """The line holding a field crop's value (step 4 of the module docstring), or None
    when no line has handwriting."""
    h = shape[0]
    hands = [[g for g in pl.hand if g.mark is None] for pl in lines]
    heights = [float(np.median([g.h for g in hand if g.w >= 3] or [0])) for hand in hands]  # a 1-2 px wide rule sets no height
    tallest = max(heights, default=0.0)
    best, best_score = None, 0.0
    for k, hand in enumerate(hands):
        if not hand:
            continue
        ink = float(sum(g.area for g in hand))
        touches = sum(1 for g in hand if g.y <= 0 or g.y1 >= h) > len(hand) / 2
        cut = touches and heights[k] < CUT_HEIGHT * tallest
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
    page = Page(grey, found, layout, lines, input_spec=printed.spec if printed is not None else None)
    if found.mask is not None and layout.lines:
        for ln in layout.lines:
            if printed is not None:
                p = printed.probabilities(ln.glyphs, page.flat, found.mask, page.inputs)
                p = [COLON_PRINTED if g.mark == ":" else q for g, q in zip(ln.glyphs, p)]
                flags = printed_runs(p, wide_gaps(ln.glyphs), letter_spaced(ln.glyphs))
            else:
                flags = [False] * len(ln.glyphs)
            hand = [g for g, f in zip(ln.glyphs, flags) if not f]
            spaces = line_spaces(hand, ln.top, ln.bottom, layout.removed) if hand else []
            lines.append(PageLine(ln, flags, hand, spaces))
    if field:
        page.field = field_line(lines, grey.shape)
        if page.field is not None:
            pl = lines[page.field]
            pl.hand = value_run(pl)
            pl.hand_spaces = line_spaces(pl.hand, pl.line.top, pl.line.bottom, layout.removed, FIELD_SPACING)
            pl.hand, pl.hand_spaces = trim_marks(pl.hand, pl.hand_spaces)
    return page


def trim_marks(hand: list[Glyph], spaces: list[bool]) -> tuple[list[Glyph], list[bool]]:
    """A field's value without the marks that stand a space apart at its ends (a speck, a
    stray dash beside the value: ``MARTY .``); marks touching the value (``12.-``, a
    date's ``/``) and marks between its words stay."""
    hand, spaces = list(hand), list(spaces)
    while len(hand) > 1 and hand[-1].mark is not None and spaces[-1]:
        hand.pop()
        spaces.pop()
    while len(hand) > 1 and hand[0].mark is not None and spaces[1]:
        hand.pop(0)
        spaces.pop(0)
        spaces[0] = False
    return hand, spaces


def value_run(pl: PageLine) -> list[Glyph]:
    """A field line's value: of its runs of handwritten characters (the stretches between
    printed ones), the one with the most ink; a stamp or a scrap before the label is not
    part of the value written after it."""
    runs: list[list[Glyph]] = [[]]
    for g, printed in zip(pl.line.glyphs, pl.printed):
        if printed:
            runs.append([])
        else:
            runs[-1].append(g)
    return max(runs, key=lambda r: sum(g.area for g in r if g.mark is None))
