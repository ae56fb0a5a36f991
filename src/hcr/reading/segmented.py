"""The segmentation engine: a line, a field or a page of separately written characters,
each classified on its own (:class:`Reader`).

``Reader(predictor).read(image)`` (or :func:`read`) turns an image into a
:class:`ReadResult`: the text, its lines, and per character the box, answer, confidence and
top alternatives. The steps:

1. **Ink**: :func:`hcr.preprocess.find_ink`, the shared preprocessing's polarity, background
   and ink mask for the whole image (with the model file's spec; only the speck rule is left
   to the segmentation, since one character is a small share of a page's ink).
2. **Layout**: :func:`hcr.segment.segment` removes form lines and specks, finds the lines in
   reading order, the characters (connected parts with i/j dots and broken strokes merged),
   punctuation recognised by shape (``.``, ``,``, ``-``, ``:``; ``/``, ``+``, ``(`` and ``)``
   when the charset names them) and the spaces.
3. **Classification, through the shared preprocessing**: each character's ink, with the
   other characters' ink blanked out, is cut from the flattened image (ink bright on black)
   with a margin and sent through :func:`hcr.preprocess.preprocess` with the model's spec, so
   it reaches the network exactly as a single-character image would
   (:meth:`hcr.predictor.Predictor.predict_inputs` decodes, with the charset and case
   options).
4. **Touching characters**: a character much wider than the line's typical character (the
   median width, at least half the body height; the body height itself in a line of fewer
   than three characters), or one the classifier is unsure of, is cut at the minima of its
   ink profile (:func:`hcr.segment.cut_candidates`); the cut is kept when the pieces score
   better: their mean log-confidence beats the whole one's by :data:`SPLIT_MARGIN`, after
   a width penalty on a whole wider than :data:`WIDE` typical characters and on pieces
   that together are narrower than :data:`NARROW` ones. A piece shaped like an allowed
   punctuation mark (a dash touching a digit) is that mark, scoring as confidence
   :data:`MARK_PIECE`. Before the cuts, the other way round: two neighbours narrower than
   :data:`JOIN_NARROW` typical characters, closer than :data:`JOIN_GAP` body heights and
   without a space between them, are read as one when the whole scores better than the
   pieces by :data:`SPLIT_MARGIN` (a character broken in two, ``IV`` -> ``N``).
5. **Context** (``context=True``): within each part of a word (the parts between
   punctuation marks, like the fields of a date), the characters whose answer is no
   look-alike (:data:`hcr.charset.LOOKALIKE_GROUPS`: ``O o 0``, ``I l 1``, ``S s 5``,
   ``Z z 2``, which the classifier's training data tilt towards digits) and that are sure
   of their kind (at least :data:`SURE_KIND` of their probability on digits, or on
   letters) vote on the part's kind; where the votes do not decide, the whole word's do, if
   two or more agree. Where at least :data:`CONTEXT_SHARE` of the votes agree, that kind
   acts like a charset on the other characters (look-alikes, unsure ones, and those that
   voted the other way): their answers are limited to that kind and renormalised (``2O24``
   -> ``2024``, ``he11o`` -> ``hello``, ``28.U3.2024`` -> ``28.03.2024``), unless the
   other kind is more than ``1 / CONTEXT_PRIOR`` (50) times as likely for that character.
   Unless case is ignored, letter case is settled the same way within each part, with the
   letters written alike in both cases (:data:`CASE_ALIKE`: c, k, o, p, s, u, v, w, x, z)
   following: the letters after the first vote for a lower-case word (a capital may start
   it), all letters for an upper-case one (``qUiCK`` -> ``quick``). A code whose sure
   characters mix kinds (``AB12``) is left alone; ``--no-context`` turns this off.
6. **Lexicon** (optional, :class:`Lexicon`): each word becomes the allowed word closest to
   the classifier's probabilities, not to its top-1 string: the cost of an entry is a
   weighted edit distance in which putting letter ``c`` where the classifier saw character
   ``i`` costs ``-log p_i(c)`` (``p`` floored at :data:`LEXICON_FLOOR`) and a missing or
   extra character costs ``-log LEXICON_FLOOR``, the most a substitution can cost. For an
   entry as long as the word that is exactly the sum of the characters' negative
   log-probabilities (an insertion and a deletion together always cost more than any
   substitution), so same-length entries are ranked by the joint probability of their
   letters; other lengths follow the same scale. Ties go to the earlier entry.

Punctuation marks are answered only where the charset allows them: with no charset, or with
a literal charset that names them (``--charset "0123456789.-"``); their confidence is 1 by
convention (they are recognised by shape, not by the model).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from ..charset import LOOKALIKE_GROUPS, NAMED_CHARSETS
from ..errors import HcrError
from ..lexicon import Lexicon
from .page import PRINTED_MODEL, Page, PrintedModel, analyse
from ..preprocess import ImageInput, Preprocessed, load_image, preprocess
from ..segment import ASKED_MARKS, DEFAULT_MARKS, MARKS, Glyph, Line, asked_mark_of, cut_candidates, glyph_crop, mark_of
from .char import Prediction, Predictor
from .result import PageReading, ReadChar, ReadLine, ReadResult, ReadWord, printed_model, union_box

#: Answers kept per character in ``top_k``.
TOP_K = 5
#: A whole wider than this many typical characters is penalised as one character ...
WIDE = 1.6
#: ... and two pieces narrower together than this many typical characters as two,
NARROW = 1.2
#: ... by this many log-probability units per typical character beyond the bound.
WIDTH_PENALTY = 3.0
#: Log-probability units by which a cut must improve the score to be kept.
SPLIT_MARGIN = 0.8
#: A piece of a cut that is a punctuation mark by its shape scores as this confidence.
MARK_PIECE = 0.5
#: Two neighbours each narrower than this many typical characters ...
JOIN_NARROW = 0.6
#: ... with a gap under this many body heights are tried as one broken character.
JOIN_GAP = 0.25
#: Characters wider than this many typical characters are always tried for a cut ...
TRY_WIDE = 1.35
#: ... and so are those below this confidence that are at least 0.8 typical characters wide.
TRY_UNSURE = 0.5
#: Context: a character votes for its kind (digit or letter; lower or upper case) when
#: this share of its probability is of that kind and its answer is not a look-alike ...
SURE_KIND = 0.9
#: ... a word is of a kind when this share of the votes agree ...
CONTEXT_SHARE = 0.75
#: ... and a character keeps an answer of another kind when that kind is more than
#: 1 / CONTEXT_PRIOR times as likely as the word's.
CONTEXT_PRIOR = 0.02
#: Letters written alike in both cases (they take the case of their word).
CASE_ALIKE = "CKOPSUVWXZckopsuvwxz"


# --------------------------------------------------------------------------- results


# --------------------------------------------------------------------------- charset


def _asked(g: Glyph, punctuation: str, line: Line) -> Glyph:
    """The marks read only when asked for (:data:`hcr.segment.ASKED_MARKS`): a glyph whose
    shape says slash is read as one only when the slash was asked for, and one shaped like
    a cross or a parenthesis (:func:`hcr.segment.asked_mark_of`, on ``line``'s body) is
    that mark only when it was; otherwise the classifier reads it (a slanted or curved 1
    or l, a t look just the same on their own)."""
    if g.mark is not None and g.mark in ASKED_MARKS and g.mark not in punctuation:
        return Glyph(g.x, g.y, g.mask)
    if g.mark is None and set(punctuation) & set(ASKED_MARKS):
        mark = asked_mark_of(g, line.top, line.bottom, punctuation)
        if mark is not None:
            return Glyph(g.x, g.y, g.mask, mark)
    return g


def split_charset(spec: str | None) -> tuple[str | None, str]:
    """A charset for reading: ``(classifier charset, punctuation marks allowed)``.

    No charset allows every class and every mark (:data:`hcr.segment.MARKS`); a named set
    (``digits``, ``upper``, ...) allows no mark; a literal charset allows the marks it
    names, and the rest goes to the classifier. Raises :class:`HcrError` for a charset of
    marks only."""
    if spec is None:
        return None, DEFAULT_MARKS
    if spec in NAMED_CHARSETS:
        return spec, ""
    marks = "".join(dict.fromkeys(c for c in spec if c in MARKS))
    rest = "".join(c for c in spec if c not in MARKS)
    if marks and not rest.strip():
        raise HcrError(f"charset {spec!r} holds only punctuation ({marks}); add the letters or digits to read")
    return (rest if marks else spec), marks


# --------------------------------------------------------------------------- reading


@dataclass
class _Char:
    """A character while it is being read: its glyph and the answer probabilities."""

    glyph: Glyph
    probs: dict[str, float]  # answer -> probability (a mark: {mark: 1.0})
    input: np.ndarray | None = None
    printed: bool = False

    @property
    def ranked(self) -> list[tuple[str, float]]:
        return sorted(self.probs.items(), key=lambda kv: -kv[1])

    @property
    def best(self) -> tuple[str, float]:
        return max(self.probs.items(), key=lambda kv: kv[1])


def _whole_score(c: _Char, r: float) -> float:
    """Step 4's score of one character ``r`` typical characters wide: its log-confidence,
    less :data:`WIDTH_PENALTY` per typical character beyond :data:`WIDE`."""
    return math.log(max(c.best[1], 1e-9)) - WIDTH_PENALTY * max(0.0, r - WIDE)


def _pieces_score(a: _Char, b: _Char, r: float) -> float:
    """Step 4's score of two pieces ``r`` typical characters wide together: their mean
    log-confidence, less :data:`WIDTH_PENALTY` per typical character short of
    :data:`NARROW`."""
    return 0.5 * (math.log(max(a.best[1], 1e-9)) + math.log(max(b.best[1], 1e-9))) - WIDTH_PENALTY * max(0.0, NARROW - r)


def _restrict(c: _Char, keep: Any) -> None:
    """Limit ``c``'s answers to those passing ``keep`` (renormalised, like a charset) unless
    the others are more than ``1 / CONTEXT_PRIOR`` times as likely together."""
    kept = sum(p for s, p in c.probs.items() if keep(s))
    rest = sum(c.probs.values()) - kept
    if kept > 0 and kept >= CONTEXT_PRIOR * rest:
        c.probs = {s: p / kept for s, p in c.probs.items() if keep(s)}


def _share(probs: Mapping[str, float], test: Any) -> float:
    total = sum(probs.values())
    return sum(p for s, p in probs.items() if test(s)) / total if total > 0 else 0.0


def _votes(chars: Sequence[_Char], kind: Any, alike: str) -> list[str | None]:
    """Each character's vote: ``kind(answer)`` when its answer is not in ``alike`` and at
    least :data:`SURE_KIND` of its probability is of that kind, else None."""
    votes: list[str | None] = []
    for c in chars:
        top = c.best[0]
        k = kind(top)
        sure = top not in alike and _share(c.probs, lambda s: kind(s) == k) >= SURE_KIND
        votes.append(k if sure else None)
    return votes


def _decide(votes: Sequence[str | None], least: int = 1) -> str | None:
    """The kind at least :data:`CONTEXT_SHARE` of the votes, and ``least`` of them, agree on."""
    cast = [v for v in votes if v is not None]
    for k in sorted(set(cast)):
        if cast.count(k) >= max(least, CONTEXT_SHARE * len(cast)):
            return k
    return None


def _settle(parts: list[list[_Char]], kind: Any, alike: str, keep: Any) -> None:
    """Give each part of a word the kind its votes decide, else the kind the whole word's
    votes decide (when two or more agree), and restrict (:func:`_restrict`) the characters
    that did not vote for it to ``keep(kind)``."""
    votes = [_votes(part, kind, alike) for part in parts]
    overall = _decide([v for vs in votes for v in vs], least=2)
    for part, vs in zip(parts, votes):
        k = _decide(vs) or overall
        if k is None:
            continue
        for c, v in zip(part, vs):
            if v != k:
                _restrict(c, keep(k))


def _apply_context(word: list[_Char], ignore_case: bool) -> None:
    """Step 5 of the module docstring, in place, on one word."""
    parts: list[list[_Char]] = [[]]
    for c in word:
        if c.glyph.mark is None:
            parts[-1].append(c)
        else:
            parts.append([])
    parts = [p for p in parts if p]
    if sum(len(p) for p in parts) < 2:
        return
    _settle(parts, lambda s: "digit" if s.isdigit() else "letter", "".join(LOOKALIKE_GROUPS),
            lambda k: str.isdigit if k == "digit" else str.isalpha)
    if ignore_case:
        return
    case = lambda s: "lower" if s.islower() else "upper"  # noqa: E731
    for part in parts:
        alpha = [c for c in part if c.best[0].isalpha()]
        if len(alpha) < 2:
            continue
        tail = alpha[1:] if alpha[0] is part[0] else alpha  # a capital may start a word
        k = _decide(_votes(tail, case, CASE_ALIKE))
        chosen = tail if k == "lower" else alpha
        if k != "lower":
            k = _decide(_votes(alpha, case, CASE_ALIKE))
            if k != "upper":
                continue
        for c, v in zip(chosen, _votes(chosen, case, CASE_ALIKE)):
            if v != k:
                _restrict(c, lambda s, k=k: s.isalpha() and case(s) == k)


class Reader(PageReading):
    """Reads the text in images with a character classifier (see the module docstring).

    ``punctuation``: the marks (of :data:`hcr.segment.MARKS`) that may be answered; None
    means all of them when the predictor has no charset, else none. ``lexicon``: a
    :class:`Lexicon`, a file path or a list of words. ``context``: step 5. ``printed``
    and ``keep_printed``: see :mod:`hcr.reading.page` (:meth:`load` loads the shipped printed
    model).
    """

    def __init__(self, predictor: Predictor, *, punctuation: str | None = None, lexicon: Lexicon | str | os.PathLike[str] | Sequence[str] | None = None, context: bool = True, printed: PrintedModel | None = None, keep_printed: bool = False) -> None:
        self.predictor = predictor
        self.printed, self.keep_printed = printed, keep_printed
        self.punctuation = (DEFAULT_MARKS if predictor.charset is None else "") if punctuation is None else punctuation
        unknown = set(self.punctuation) - set(MARKS)
        if unknown:
            raise HcrError(f"punctuation {''.join(sorted(unknown))!r} is not recognised; the reader knows {MARKS!r}")
        if lexicon is None or isinstance(lexicon, Lexicon):
            self.lexicon = lexicon
        elif isinstance(lexicon, (str, os.PathLike)):
            self.lexicon = Lexicon.from_file(lexicon, ignore_case=predictor.ignore_case)
        else:
            self.lexicon = Lexicon(lexicon, ignore_case=predictor.ignore_case)
        self.context = context
        spec = predictor.spec
        self._ink_spec = replace(spec, speck_fraction=0.0)  # specks are judged per character (segment)
        self._glyph_spec = replace(spec, polarity="light-on-dark")  # crops are cut from the ink-bright image

    @classmethod
    def load(cls, model: str | os.PathLike[str] | None = None, *, charset: str | None = None, ignore_case: bool = False, threshold: float = 0.5, device: str = "cpu", lexicon: Lexicon | str | os.PathLike[str] | Sequence[str] | None = None, context: bool = True, printed: str | None = PRINTED_MODEL, keep_printed: bool = False) -> "Reader":
        """A reader with :meth:`Predictor.load`'s model (``chars`` by default); ``charset``
        applies to every character, punctuation marks included (:func:`split_charset`).
        ``printed``: the printed-or-handwritten model (the shipped one by default; None:
        none, every character counts as handwritten)."""
        model_charset, marks = split_charset(charset)
        predictor = Predictor.load(model, threshold=threshold, device=device, charset=model_charset, ignore_case=ignore_case)
        return cls(predictor, punctuation=marks, lexicon=lexicon, context=context, printed=printed_model(printed, device), keep_printed=keep_printed)

    # ----------------------------------------------------------------- classification

    def glyph_input(self, glyph: Glyph, flat: np.ndarray, ink: np.ndarray) -> Preprocessed:
        """The model input of one glyph: its crop (:func:`hcr.segment.glyph_crop`) sent
        through :func:`hcr.preprocess.preprocess` with the model's spec."""
        return preprocess(glyph_crop(glyph, flat, ink), self._glyph_spec)

    def _classify(self, glyphs: Sequence[Glyph], flat: np.ndarray, ink: np.ndarray, page: Page | None = None) -> list[_Char | None]:
        """Answer probabilities of each glyph (None for a glyph the preprocessing finds
        blank); the inputs the page analysis made are used where the specs agree."""
        if not glyphs:
            return []
        made = page.inputs if page is not None and page.input_spec == self._glyph_spec else {}
        inputs = [made.get(id(g)) or self.glyph_input(g, flat, ink) for g in glyphs]
        preds: list[Prediction] = self.predictor.predict_inputs(inputs, top_k=self.predictor.answer_filter.num_answers)
        return [None if p.blank else _Char(g, dict(p.top_k), p.input) for g, p in zip(glyphs, preds)]

    # ----------------------------------------------------------------- touching characters

    def _pieces(self, glyphs: Sequence[Glyph], line: Line, sw: float, flat: np.ndarray, ink: np.ndarray) -> list[_Char | None]:
        """Answers for the pieces of a cut: an allowed punctuation mark by its shape (a dash
        touching a digit), anything else through the classifier."""
        marks = [mark_of(g, line.top, line.bottom, sw) for g in glyphs]
        marks = [m if m is not None and m in self.punctuation else None for m in marks]
        answers = iter(self._classify([g for g, m in zip(glyphs, marks) if m is None], flat, ink))
        return [next(answers) if m is None else _Char(Glyph(g.x, g.y, g.mask, m), {m: MARK_PIECE}) for g, m in zip(glyphs, marks)]

    def _join_broken(self, chars: list[_Char], spaces: list[bool], line: Line, flat: np.ndarray, ink: np.ndarray) -> tuple[list[_Char], list[bool]]:
        """Join two neighbours that are one broken character (step 4 of the module
        docstring, the other way round): both narrower than :data:`JOIN_NARROW` typical
        characters, no space and less than :data:`JOIN_GAP` body heights between them,
        together at most :data:`TRY_WIDE` typical characters wide; the join is kept when the
        whole scores :data:`SPLIT_MARGIN` better than the pieces, by the same scores a cut
        is judged by (an N whose faint diagonal broke reads as ``N``, not ``II``)."""
        widths = [c.glyph.w for c in chars if c.glyph.mark is None]
        if len(widths) < 3:
            return chars, spaces
        hb = line.height
        typical = max(float(np.median(widths)), 0.5 * hb)
        pairs = []
        for k in range(len(chars) - 1):
            a, b = chars[k], chars[k + 1]
            if a.glyph.mark is not None or b.glyph.mark is not None or spaces[k + 1] or a.printed != b.printed:
                continue
            gap = b.glyph.x - a.glyph.x1
            if max(a.glyph.w, b.glyph.w) <= JOIN_NARROW * typical and gap < JOIN_GAP * hb and b.glyph.x1 - a.glyph.x <= TRY_WIDE * typical:
                pairs.append(k)
        if not pairs:
            return chars, spaces
        wholes = self._classify([Glyph.merge([chars[k].glyph, chars[k + 1].glyph]) for k in pairs], flat, ink)
        joined: dict[int, _Char] = {}
        for k, whole in zip(pairs, wholes):
            if whole is None or k in joined or k - 1 in joined:
                continue
            a, b = chars[k], chars[k + 1]
            r = whole.glyph.w / typical
            if _whole_score(whole, r) > _pieces_score(a, b, r) + SPLIT_MARGIN:
                whole.printed = a.printed
                joined[k] = whole
        if not joined:
            return chars, spaces
        out_chars: list[_Char] = []
        out_spaces: list[bool] = []
        k = 0
        while k < len(chars):
            out_chars.append(joined.get(k, chars[k]))
            out_spaces.append(spaces[k])
            k += 2 if k in joined else 1
        return out_chars, out_spaces

    def _split_touching(self, chars: list[_Char], spaces: list[bool], line: Line, sw: float, flat: np.ndarray, ink: np.ndarray) -> tuple[list[_Char], list[bool]]:
        """Cut glyphs of touching characters (step 4 of the module docstring); a space
        before a cut glyph stays before its first piece."""
        hb = line.height
        kept: set[int] = set()  # characters tried and kept whole
        for _ in range(3):  # a cut piece may itself hold two characters
            widths = [c.glyph.w for c in chars if c.glyph.mark is None]
            # the line's typical character width; with fewer than three, a generous guess
            typical = max(float(np.median(widths)), 0.5 * hb) if len(widths) >= 3 else hb
            todo = []
            for k, c in enumerate(chars):
                if c.glyph.mark is not None or id(c) in kept:
                    continue
                r = c.glyph.w / typical
                if r >= TRY_WIDE or (c.best[1] < TRY_UNSURE and r >= 0.8):
                    cuts = [p for col in cut_candidates(c.glyph, hb) if (p := c.glyph.cut(col)) is not None]
                    if cuts:
                        todo.append((k, cuts))
            if not todo:
                return chars, spaces
            pieces = [g for _, cuts in todo for pair in cuts for g in pair]
            answers = iter(self._pieces(pieces, line, sw, flat, ink))
            replaced: dict[int, list[_Char]] = {}
            for k, cuts in todo:
                whole = chars[k]
                r = whole.glyph.w / typical
                score_whole = _whole_score(whole, r)
                best_score, best_pair = -math.inf, None
                for _pair in cuts:
                    a, b = next(answers), next(answers)
                    if a is None or b is None:
                        continue
                    score = _pieces_score(a, b, r)
                    if score > best_score:
                        best_score, best_pair = score, [a, b]
                if best_pair is not None and best_score > score_whole + SPLIT_MARGIN:
                    replaced[k] = [_Char(c.glyph, {c.glyph.mark: 1.0}) if c.glyph.mark else c for c in best_pair]
                    for c in replaced[k]:
                        c.printed = whole.printed
                else:
                    kept.add(id(whole))
            if not replaced:
                return chars, spaces
            spaces = [s and n == 0 for k, s in enumerate(spaces) for n in range(len(replaced.get(k, [None])))]
            chars = [p for k, c in enumerate(chars) for p in replaced.get(k, [c])]
        return chars, spaces

    # ----------------------------------------------------------------- words

    def _finish_word(self, word: list[_Char]) -> list[tuple[str, float, _Char]]:
        """Context and lexicon for one word: ``(answer, confidence, char)`` per character
        (answers may be "" for a character a lexicon entry leaves out)."""
        if self.context:
            _apply_context(word, self.predictor.ignore_case)
        out = [(c.best[0], c.best[1], c) for c in word]
        if self.lexicon is None or not word:
            return out
        match = self.lexicon.match([c.probs for c in word])
        letters = ["" for _ in word]
        conf = [0.0 for _ in word]
        last, pending = -1, ""  # letters the reading missed join the character before (or after)
        for i, j in match.alignment:
            if i is None:
                if last >= 0:
                    letters[last] += match.word[j]  # type: ignore[index]
                else:
                    pending += match.word[j]  # type: ignore[index]
                continue
            last = i
            if j is not None:
                letters[i] = match.word[j]
                key = self.lexicon.key(match.word[j])
                conf[i] = max((p for s, p in word[i].probs.items() if self.lexicon.key(s) == key), default=0.0)
            letters[i], pending = pending + letters[i], ""
        return [(letters[i], conf[i], c) for i, c in enumerate(word)]

    # ----------------------------------------------------------------- public

    def read(self, image: ImageInput, *, name: str | None = None, field: bool = False) -> ReadResult:
        """Read the text in one image (path, bytes, PIL image or array); ``field``: only the
        value of a field crop (:meth:`read_field`). Raises
        :class:`~hcr.errors.InputError` for an unreadable image."""
        t0 = time.perf_counter()
        file = name or (str(image) if isinstance(image, (str, os.PathLike)) else None)
        grey = load_image(image, name=name)
        page = analyse(grey, self._ink_spec, self.printed, field=field)
        result = ReadResult("", [], file=file, size=(grey.shape[1], grey.shape[0]), image=grey, layout=page.layout, field=field, printed_only=page.printed_only)
        todo = [replace(t, items=[(_asked(g, self.punctuation, t.line), s, p) for g, s, p in t.items]) for t in self._to_read(page)]
        flat, ink = page.flat, page.found.mask
        glyphs = [g for line in todo for g, _, _ in line.items if g.mark is None]
        answers = iter(self._classify(glyphs, flat, ink, page) if ink is not None else [])
        for line in todo:
            chars: list[_Char] = []
            spaces: list[bool] = []
            pending_space = False
            for g, space, printed in line.items:
                pending_space |= space
                c = next(answers) if g.mark is None else (_Char(g, {g.mark: 1.0}) if g.mark in self.punctuation else None)
                if c is None:
                    continue
                c.printed = printed
                chars.append(c)
                spaces.append(pending_space and bool(chars[:-1]))
                pending_space = False
            if any(c.glyph.mark is None for c in chars) and ink is not None:
                chars, spaces = self._join_broken(chars, spaces, line.line, flat, ink)
                chars, spaces = self._split_touching(chars, spaces, line.line, page.layout.stroke_width, flat, ink)
            result.lines.extend(self._line(chars, spaces, len(result.lines)))
        result.text = "\n".join(ln.text for ln in result.lines)
        result.seconds = time.perf_counter() - t0
        return result

    def _line(self, chars: list[_Char], spaces: list[bool], index: int) -> list[ReadLine]:
        """The line's words through context and lexicon, as a :class:`ReadLine` (none when
        nothing in it was read)."""
        words: list[list[_Char]] = []
        for c, s in zip(chars, spaces):
            if s or not words:
                words.append([])
            words[-1].append(c)
        read: list[ReadChar] = []
        out_words: list[ReadWord] = []
        for word in words:
            text = ""
            for answer, conf, c in self._finish_word(word):
                text += answer
                if not answer:
                    continue
                mark = c.glyph.mark is not None
                read.append(ReadChar(answer, conf, c.glyph.box, [] if mark else c.ranked[:TOP_K], index, len(out_words),
                                     uncertain=not mark and conf < self.predictor.threshold, mark=mark, printed=c.printed, input=c.input))
            if text:  # a word that came out empty (a lexicon's choice) is no word
                out_words.append(ReadWord(text, union_box([c.glyph.box for c in word]), printed=sum(c.printed for c in word) * 2 > len(word)))
        if not read:
            return []
        return [ReadLine(" ".join(w.text for w in out_words), union_box([c.box for c in read]), read, out_words)]



# --------------------------------------------------------------------------- CRNN engine




def read(image: ImageInput, predictor: Predictor | None = None, *, lexicon: Lexicon | str | os.PathLike[str] | Sequence[str] | None = None, context: bool = True, name: str | None = None, field: bool = False, keep_printed: bool = False) -> ReadResult:
    """Read the text in ``image`` with ``predictor`` (default: the ``chars`` model) and the
    shipped printed model; see :class:`Reader` (``field``: :meth:`Reader.read_field`)."""
    reader = Reader(predictor or Predictor.load(), lexicon=lexicon, context=context, printed=printed_model(PRINTED_MODEL, "cpu"), keep_printed=keep_printed)
    return reader.read(image, name=name, field=field)
