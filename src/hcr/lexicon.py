"""Lexicons: the allowed words of a field, matched to what a recogniser saw.

:class:`Lexicon` is used by both readers: the segmentation reader (:mod:`hcr.reader`)
matches each word's per-character probabilities to the closest entry (a weighted edit
distance, see :meth:`Lexicon.match`), and CTC beam search (:mod:`hcr.ctc`) only follows
paths that spell entries.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .errors import HcrError

#: Probabilities are floored here; -log of it is the cost of a missing/extra character.
LEXICON_FLOOR = 1e-4



@dataclass
class LexiconMatch:
    """The lexicon entry chosen for a word, its cost, and the alignment of the word's
    characters (``i``) to the entry's letters (``j``): pairs ``(i, j)``, ``(i, None)`` for a
    character left out, ``(None, j)`` for a letter the reading missed."""

    word: str
    cost: float
    alignment: list[tuple[int | None, int | None]]


class Lexicon:
    """The allowed words (see step 6 of the module docstring for the rule).

    Entries are whitespace-separated words; duplicates are dropped, order is kept (it breaks
    ties). With ``ignore_case`` entries and answers are compared without letter case and
    the entry is returned as written."""

    def __init__(self, words: Iterable[str], *, ignore_case: bool = False) -> None:
        entries = list(dict.fromkeys(w for item in words for w in str(item).split()))
        if not entries:
            raise HcrError("the lexicon is empty")
        self.words: tuple[str, ...] = tuple(entries)
        self.ignore_case = ignore_case
        keys = [self.key(w) for w in entries]
        self.alphabet: tuple[str, ...] = tuple(sorted(set("".join(keys))))
        index = {c: i for i, c in enumerate(self.alphabet)}
        by_len: dict[int, list[int]] = {}
        for i, k in enumerate(keys):
            by_len.setdefault(len(k), []).append(i)
        self._groups = {n: (np.asarray(ids), np.asarray([[index[c] for c in keys[i]] for i in ids], np.int64).reshape(len(ids), n)) for n, ids in sorted(by_len.items())}

    def key(self, s: str) -> str:
        """The form in which entries and answers are compared (lower case with ``ignore_case``)."""
        return s.lower() if self.ignore_case else s

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, ignore_case: bool = False) -> "Lexicon":
        """One entry per line (UTF-8; blank lines ignored)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise HcrError(f"lexicon {p}: file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise HcrError(f"lexicon {p}: cannot be read ({e})") from None
        try:
            return cls(text.splitlines(), ignore_case=ignore_case)
        except HcrError:
            raise HcrError(f"lexicon {p}: no words in the file") from None

    def costs(self, options: Sequence[Mapping[str, float]]) -> np.ndarray:
        """``(n, len(alphabet))``: ``-log p_i(c)``, floored (see :data:`LEXICON_FLOOR`), for
        each position's answer probabilities ``options[i]`` (symbol -> probability)."""
        floor = -math.log(LEXICON_FLOOR)
        index = {c: i for i, c in enumerate(self.alphabet)}
        out = np.full((len(options), len(self.alphabet)), floor)
        for i, probs in enumerate(options):
            for sym, p in probs.items():
                j = index.get(self.key(sym))
                if j is not None and p > 0:
                    out[i, j] = min(out[i, j], -math.log(max(p, LEXICON_FLOOR)))
        return out

    def match(self, options: Sequence[Mapping[str, float]]) -> LexiconMatch:
        """The entry closest to a word whose positions have answer probabilities
        ``options`` (symbol -> probability; a punctuation mark is ``{mark: 1.0}``)."""
        cost = self.costs(options)
        indel = -math.log(LEXICON_FLOOR)
        n = len(options)
        best = (math.inf, -1)
        for length, (ids, codes) in self._groups.items():
            # edit-distance DP over all entries of this length at once: d[j] holds row i
            d = np.tile(np.arange(length + 1, dtype=np.float64) * indel, (len(ids), 1))
            for i in range(1, n + 1):
                prev = d
                d = np.empty_like(prev)
                d[:, 0] = i * indel
                sub = cost[i - 1][codes]  # (entries, length)
                for j in range(1, length + 1):
                    d[:, j] = np.minimum(np.minimum(prev[:, j - 1] + sub[:, j - 1], prev[:, j] + indel), d[:, j - 1] + indel)
            total = d[:, length]
            k = int(np.argmin(total))
            cand = (float(total[k]), int(ids[k]))
            # ties: the earlier entry
            tied = ids[total <= cand[0] + 1e-9]
            cand = (cand[0], int(tied.min()))
            if cand < best:
                best = cand
        word = self.words[best[1]]
        return LexiconMatch(word, best[0], self._align(cost, self.key(word)))

    def _align(self, cost: np.ndarray, key: str) -> list[tuple[int | None, int | None]]:
        index = {c: i for i, c in enumerate(self.alphabet)}
        indel = -math.log(LEXICON_FLOOR)
        n, m = cost.shape[0], len(key)
        d = np.zeros((n + 1, m + 1))
        d[:, 0] = np.arange(n + 1) * indel
        d[0, :] = np.arange(m + 1) * indel
        for i in range(1, n + 1):
            for j in range(1, m + 1):
                d[i, j] = min(d[i - 1, j - 1] + cost[i - 1, index[key[j - 1]]], d[i - 1, j] + indel, d[i, j - 1] + indel)
        out: list[tuple[int | None, int | None]] = []
        i, j = n, m
        while i > 0 or j > 0:
            if i > 0 and j > 0 and math.isclose(d[i, j], d[i - 1, j - 1] + cost[i - 1, index[key[j - 1]]], abs_tol=1e-9):
                out.append((i - 1, j - 1))
                i, j = i - 1, j - 1
            elif i > 0 and math.isclose(d[i, j], d[i - 1, j] + indel, abs_tol=1e-9):
                out.append((i - 1, None))
                i -= 1
            else:
                out.append((None, j - 1))
                j -= 1
        return out[::-1]
