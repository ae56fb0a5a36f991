"""Restricting a model's answers: a character set and case-insensitive answers.

Both work on probability arrays ``(N, C)`` (softmax outputs, columns in :class:`LabelMap`
order) and know nothing about networks, so prediction, evaluation and benchmarks share them.

**Charset.** A spec is one of the named sets

==========  =====================================
``digits``  ``0-9``
``upper``   ``A-Z``
``lower``   ``a-z``
``letters`` ``A-Z a-z``
``alnum``   ``0-9 A-Z a-z``
==========  =====================================

or, for any other string, the allowed characters themselves (``"0123456789ABCDEF"``;
whitespace is ignored). Only those exact names are named sets: ``"Digits"`` is the literal
characters D, i, g, t, s. A named set keeps the classes the model has (``alnum`` on a
digits model is ``0-9``); a literal string must name classes the model knows, and a
character it does not know is an :class:`~hcr.errors.HcrError` naming it. A charset that
leaves no class at all is an error too. Restriction zeroes the other classes and divides by
the remaining sum (:func:`restrict_probs`): the same as a softmax over the allowed logits.

**Ignore case.** Classes whose symbols differ only by letter case (``o``/``O``, ``s``/``S``)
become one answer: their probabilities are summed, and the answer is reported as whichever
member is more probable for that input, with the summed probability
(:func:`merge_case`). Combined with a charset, membership is decided case-insensitively
(``--charset abc --ignore-case`` on an A-Z model allows A, B, C; ``upper`` with ignore-case
pools ``a``/``A``...), then the allowed classes are merged; a merged answer is reported in
the case the charset asked for (``upper``: ``A``, even when ``a`` was the likelier shape).

:class:`AnswerFilter` bundles both for one label map; ``decode(probs, top_k)`` gives each
row's ranked ``(symbol, probability)`` answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import HcrError
from .labels import DIGITS, LOWER, UPPER, LabelMap

__all__ = [
    "LOOKALIKE_GROUPS",
    "NAMED_CHARSETS",
    "AnswerFilter",
    "Charset",
    "case_groups",
    "describe_symbols",
    "merge_case",
    "parse_charset",
    "restrict_probs",
]

#: The named charsets; any other spec is a literal string of characters.
NAMED_CHARSETS: dict[str, tuple[str, ...]] = {
    "digits": DIGITS,
    "upper": UPPER,
    "lower": LOWER,
    "letters": UPPER + LOWER,
    "alnum": DIGITS + UPPER + LOWER,
}

#: Look-alike groups: shapes that are often identical when written alone (EMNIST ByClass);
#: used by the reader's context rules and the look-alike-merged accuracy (:mod:`hcr.metrics`).
LOOKALIKE_GROUPS: tuple[str, ...] = ("Oo0", "Il1", "Ss5", "Zz2")


def _fold(symbol: str) -> str:
    return symbol.lower()


def describe_symbols(symbols: Sequence[str], limit: int = 80) -> str:
    """Compact, readable list of symbols: runs of consecutive characters become ranges
    (``0-9, A-Z, a-z``); long results are cut at about ``limit`` characters."""
    parts: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) >= 3:
            parts.append(f"{run[0]}-{run[-1]}")
        else:
            parts.extend(run)
        run.clear()

    for s in symbols:
        if run and len(s) == 1 and len(run[-1]) == 1 and ord(s) == ord(run[-1]) + 1:
            run.append(s)
            continue
        flush()
        if len(s) == 1:
            run.append(s)
        else:
            parts.append(s)
    flush()
    text = ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 4].rsplit(", ", 1)[0] + ", ..."


def _quote_list(chars: Sequence[str]) -> str:
    return ", ".join(repr(c) for c in chars)


@dataclass(frozen=True)
class Charset:
    """A parsed charset: the spec as given and the allowed class indices of one label map
    (ascending, so in label-map order)."""

    spec: str
    indices: tuple[int, ...]
    symbols: tuple[str, ...]
    requested: tuple[str, ...] = ()  # the characters the spec names, in their own case

    def mask(self, num_classes: int) -> np.ndarray:
        """Boolean ``(num_classes,)``: True for allowed classes."""
        m = np.zeros(num_classes, bool)
        m[list(self.indices)] = True
        return m


def parse_charset(spec: str, label_map: LabelMap, *, ignore_case: bool = False) -> Charset:
    """Resolve a charset spec against a model's classes.

    ``spec`` is a named set (:data:`NAMED_CHARSETS`) or a literal string of characters.
    With ``ignore_case`` a character allows every class equal to it up to letter case.
    Raises :class:`HcrError` for an empty spec, a literal character the model does not
    know (all of them are named), or a charset that shares no class with the model.
    """
    if not isinstance(spec, str):
        raise HcrError(f"a charset must be a string, got {type(spec).__name__}")
    key = _fold if ignore_case else (lambda s: s)
    classes = describe_symbols(label_map.symbols)
    by_key: dict[str, list[int]] = {}
    for i, s in enumerate(label_map.symbols):
        by_key.setdefault(key(s), []).append(i)

    if spec in NAMED_CHARSETS:
        wanted = NAMED_CHARSETS[spec]
        chars = list(wanted)
        picked = sorted({i for c in wanted for i in by_key.get(key(c), [])})
        if not picked:
            raise HcrError(f"charset {spec!r} ({describe_symbols(wanted)}) shares no class with this model (its classes: {classes})")
    else:
        chars = list(dict.fromkeys(c for c in spec if not c.isspace()))
        if not chars:
            raise HcrError(f"charset {spec!r} is empty; give a name ({', '.join(NAMED_CHARSETS)}) or the allowed characters")
        unknown = [c for c in chars if key(c) not in by_key]
        if unknown:
            verb = "is not a class" if len(unknown) == 1 else "are not classes"
            folded = {_fold(s) for s in label_map.symbols}
            case_only = [c for c in unknown if _fold(c) in folded]
            hint = f" ({_quote_list(case_only)}: letter case matters unless case is ignored)" if case_only else ""
            raise HcrError(f"charset {spec!r}: {_quote_list(unknown)} {verb} of this model{hint}; its classes: {classes}")
        picked = sorted({i for c in chars for i in by_key[key(c)]})
    return Charset(spec, tuple(picked), tuple(label_map.symbols[i] for i in picked), tuple(chars))


def _as_probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probabilities must have shape (N, C), got {p.shape}")
    return p


def restrict_probs(probs: np.ndarray, allowed: np.ndarray | Sequence[int]) -> np.ndarray:
    """Zero the columns not in ``allowed`` (a boolean mask or class indices) and renormalise
    each row over the rest. A row whose allowed classes all have probability 0 (softmax
    underflow) becomes uniform over them rather than NaN. Returns float64 ``(N, C)``."""
    p = _as_probs(probs)
    mask = np.asarray(allowed)
    if mask.dtype != np.bool_:
        idx = mask.astype(np.int64)
        mask = np.zeros(p.shape[1], bool)
        mask[idx] = True
    if mask.shape != (p.shape[1],):
        raise ValueError(f"mask has shape {mask.shape} for {p.shape[1]} classes")
    if not mask.any():
        raise ValueError("no class is allowed")
    out = np.where(mask, p, 0.0)
    total = out.sum(axis=1, keepdims=True)
    uniform = np.where(mask, 1.0 / mask.sum(), 0.0)
    return np.where(total > 0, out / np.where(total > 0, total, 1.0), uniform)


def case_groups(symbols: Sequence[str], allowed: np.ndarray | None = None) -> list[tuple[int, ...]]:
    """Class indices grouped by letter-case-folded symbol, in order of first appearance
    (``['0', 'A', 'a']`` -> ``[(0,), (1, 2)]``). With a boolean ``allowed`` mask, only
    allowed classes are grouped (groups with no allowed member are left out)."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(symbols):
        if allowed is None or allowed[i]:
            groups.setdefault(_fold(s), []).append(i)
    return [tuple(g) for g in groups.values()]


def merge_case(probs: np.ndarray, groups: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Sum probabilities within each group of classes.

    Returns ``(merged, member)``, both ``(N, G)``: the summed probability of each group and,
    per row, the class index of the group's most probable member (the first one on ties),
    which is how the merged answer is reported.
    """
    p = _as_probs(probs)
    merged = np.zeros((p.shape[0], len(groups)))
    member = np.zeros((p.shape[0], len(groups)), np.int64)
    for g, idx in enumerate(groups):
        cols = np.asarray(idx, np.int64)
        if cols.size == 0:
            raise ValueError(f"group {g} is empty")
        sub = p[:, cols]
        merged[:, g] = sub.sum(axis=1)
        member[:, g] = cols[np.argmax(sub, axis=1)]
    return merged, member


class AnswerFilter:
    """A charset and/or case merging over one label map, applied to probability rows.

    ``AnswerFilter(label_map)`` with no options is the identity: every class is an answer.
    """

    def __init__(self, label_map: LabelMap, charset: str | None = None, *, ignore_case: bool = False) -> None:
        self.label_map = label_map
        self.ignore_case = ignore_case
        self.charset = None if charset is None else parse_charset(charset, label_map, ignore_case=ignore_case)
        n = len(label_map)
        self.mask = self.charset.mask(n) if self.charset else np.ones(n, bool)
        if ignore_case:
            self.groups = case_groups(label_map.symbols, self.mask)
        else:
            self.groups = [(i,) for i in np.flatnonzero(self.mask).tolist()]
        self._first = np.array([g[0] for g in self.groups], np.int64)  # the class of each unmerged answer
        # a merged group that holds exactly one character the charset names is reported as it
        self._named = np.full(len(self.groups), -1, np.int64)
        if self.charset is not None and ignore_case:
            requested = set(self.charset.requested)
            for g, idx in enumerate(self.groups):
                named = [i for i in idx if label_map.symbols[i] in requested]
                if len(named) == 1:
                    self._named[g] = named[0]

    @property
    def active(self) -> bool:
        """False when the filter changes nothing."""
        return self.charset is not None or len(self.groups) != len(self.label_map)

    @property
    def num_answers(self) -> int:
        """How many distinct answers there are (the cap on top-k)."""
        return len(self.groups)

    def restrict(self, probs: np.ndarray) -> np.ndarray:
        """``(N, C)`` probabilities renormalised over the charset (unchanged without one)."""
        return restrict_probs(probs, self.mask) if self.charset is not None else _as_probs(probs)

    def answers(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, member)``, both ``(N, G)``: each answer's probability (restricted, then
        summed over its case group) and the class index that names it in that row."""
        restricted = self.restrict(probs)
        if not self.ignore_case:  # one class per answer: no merging to do
            return restricted[:, self._first], np.broadcast_to(self._first, (restricted.shape[0], len(self._first)))
        scores, member = merge_case(restricted, self.groups)
        return scores, np.where(self._named >= 0, self._named, member)

    def decode(self, probs: np.ndarray, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Per row, the ``top_k`` best answers as ``(symbol, probability)``, best first
        (``top_k`` is clamped to 1..number of answers; ties keep label-map order)."""
        scores, member = self.answers(probs)
        k = max(1, min(int(top_k), scores.shape[1]))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        syms = self.label_map.symbols
        return [[(syms[int(member[r, g])], float(scores[r, g])) for g in row] for r, row in enumerate(order)]

    def describe(self) -> str:
        """One line for logs: what is allowed."""
        parts = []
        if self.charset is not None:
            parts.append(f"charset {self.charset.spec!r} ({describe_symbols(self.charset.symbols)})")
        if self.ignore_case:
            parts.append("case ignored")
        return ", ".join(parts) or "all classes"
