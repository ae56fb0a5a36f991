"""CTC decoding in numpy: greedy, beam search (optionally limited to a lexicon), alignment.

Every function takes the network's per-column scores for one image as ``log_probs``, a
``(T, C)`` array of log-probabilities (a log-softmax over C classes; class 0 is the blank,
see :class:`hcr.labels.CTCCodec`). Nothing here imports torch, so exported networks
(ONNX, TensorFlow) decode with exactly the same code.

Confidences: each decoded character is aligned to the columns that emit it (the best CTC
path for the decoded text, :func:`align`); its confidence is its highest probability in
those columns. A word's confidence is that of its least sure character, so one doubtful
letter makes the whole word doubtful.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .labels import BLANK, CTCCodec
from .lexicon import Lexicon

__all__ = ["DecodedChar", "DecodedWord", "Decoded", "log_softmax", "greedy_path", "align", "beam_search", "decode"]


@dataclass
class DecodedChar:
    char: str
    confidence: float
    columns: tuple[int, int]  # first and last score column (inclusive) that emit it


@dataclass
class DecodedWord:
    text: str
    confidence: float
    columns: tuple[int, int]


@dataclass
class Decoded:
    """A decoded image: the text, its characters and words with confidences, and the
    log-probability of the best path spelling the text (``score``)."""

    text: str
    chars: list[DecodedChar] = field(default_factory=list)
    words: list[DecodedWord] = field(default_factory=list)
    score: float = 0.0
    in_lexicon: bool | None = None  # None: no lexicon was used

    @property
    def confidence(self) -> float:
        """The least sure word's confidence (1.0 for empty text)."""
        return min((w.confidence for w in self.words), default=1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 6),
            "words": [{"text": w.text, "confidence": round(w.confidence, 6), "columns": list(w.columns)} for w in self.words],
            "chars": [{"char": c.char, "confidence": round(c.confidence, 6), "columns": list(c.columns)} for c in self.chars],
        }


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax (float64 in, float64 out; float32 is promoted)."""
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _check(log_probs: np.ndarray, codec: CTCCodec) -> np.ndarray:
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.ndim != 2 or lp.shape[1] != codec.num_classes:
        raise ValueError(f"expected scores of shape (T, {codec.num_classes}), got {lp.shape}")
    return lp


def greedy_path(log_probs: np.ndarray) -> np.ndarray:
    """The most probable class of each column (the best path)."""
    return np.asarray(log_probs).argmax(axis=1)


def align(log_probs: np.ndarray, labels: Sequence[int]) -> tuple[list[tuple[int, int]], float]:
    """Viterbi alignment of a label sequence to the columns.

    Returns, for each label, the first and last column of its run on the best CTC path
    that spells ``labels``, and that path's log-probability (``-inf`` when ``labels``
    cannot fit in ``T`` columns)."""
    lp = np.asarray(log_probs, dtype=np.float64)
    t_len = lp.shape[0]
    n = len(labels)
    if n == 0:
        return [], float(lp[:, BLANK].sum())
    ext = np.full(2 * n + 1, BLANK, np.int64)
    ext[1::2] = labels
    s_len = len(ext)
    # a label may follow the label two states back unless they are equal (then a blank must separate them)
    skip = np.zeros(s_len, bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    neg = -np.inf
    score = np.full(s_len, neg)
    score[0] = lp[0, ext[0]]
    score[1] = lp[0, ext[1]]
    back = np.zeros((t_len, s_len), np.int8)  # 0: stay, 1: from s-1, 2: from s-2
    for t in range(1, t_len):
        stay = score
        step = np.concatenate(([neg], score[:-1]))
        jump = np.where(skip, np.concatenate(([neg, neg], score[:-2])), neg)
        choice = np.stack([stay, step, jump])
        arg = choice.argmax(axis=0)
        back[t] = arg
        score = choice[arg, np.arange(s_len)] + lp[t, ext]
    end = s_len - 1 if score[s_len - 1] >= score[s_len - 2] else s_len - 2
    best = float(score[end])
    if not math.isfinite(best):
        return [(0, t_len - 1)] * n, best
    spans: list[list[int]] = [[-1, -1] for _ in range(n)]
    s = end
    for t in range(t_len - 1, -1, -1):
        if s % 2 == 1:
            k = s // 2
            spans[k][0] = t
            if spans[k][1] < 0:
                spans[k][1] = t
        s -= int(back[t, s])
    return [(a, b) for a, b in spans], best


class _Trie:
    """Lexicon words as a trie over class indices; node 0 is the root. A lexicon that
    ignores case also admits each entry in lower case, upper case and capitalised."""

    def __init__(self, lexicon: Lexicon, codec: CTCCodec) -> None:
        self.children: list[dict[int, int]] = [{}]
        self.terminal: list[bool] = [False]
        words = lexicon.words
        if lexicon.ignore_case:
            words = tuple(dict.fromkeys(v for w in words for v in (w, w.lower(), w.upper(), w.capitalize())))
        for w in words:
            if not codec.can_encode(w):
                continue
            node = 0
            for c in codec.encode(w):
                nxt = self.children[node].get(c)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][c] = nxt
                    self.children.append({})
                    self.terminal.append(False)
                node = nxt
            self.terminal[node] = True
        if len(self.children) == 1:
            raise ValueError("no lexicon entry can be written with the model's alphabet")


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_search(log_probs: np.ndarray, codec: CTCCodec, *, beam_width: int = 16, lexicon: Lexicon | None = None, prune: float = -12.0) -> list[tuple[list[int], float]]:
    """CTC prefix beam search. Returns up to ``beam_width`` ``(labels, log-probability)``
    hypotheses, best first; the probability of a hypothesis sums over all its paths.

    With a ``lexicon``, hypotheses only grow along its entries: each word (the text
    between spaces) must be an entry, so a line is a sequence of entries separated by
    single spaces (when the alphabet has a space). Classes scoring below ``prune`` in a
    column are not tried there."""
    lp = _check(log_probs, codec)
    space = codec.encode(" ")[0] if codec.can_encode(" ") else None
    trie = _Trie(lexicon, codec) if lexicon is not None else None
    ninf = -math.inf
    # prefix -> [log p(ending in blank), log p(ending in its last label), trie node]
    beams: dict[tuple[int, ...], list[Any]] = {(): [0.0, ninf, 0]}
    for t in range(lp.shape[0]):
        row = lp[t]
        cand = [int(c) for c in np.nonzero(row >= prune)[0] if c != BLANK]
        if not cand:
            cand = [int(np.argmax(np.where(np.arange(len(row)) == BLANK, -np.inf, row)))]
        nxt: dict[tuple[int, ...], list[Any]] = {}

        def add(prefix: tuple[int, ...], pb: float, pnb: float, node: int) -> None:
            e = nxt.get(prefix)
            if e is None:
                nxt[prefix] = [pb, pnb, node]
            else:
                e[0] = _logsumexp(e[0], pb)
                e[1] = _logsumexp(e[1], pnb)

        for prefix, (pb, pnb, node) in beams.items():
            total = _logsumexp(pb, pnb)
            add(prefix, total + row[BLANK], ninf, node)  # a blank keeps the prefix
            last = prefix[-1] if prefix else None
            if last is not None:
                add(prefix, ninf, pnb + row[last], node)  # the last label repeated
            for c in cand:
                if trie is not None:
                    if c == space:
                        if not trie.terminal[node] or last == space or not prefix:
                            continue
                        child = 0
                    else:
                        got = trie.children[node].get(c)
                        if got is None:
                            continue
                        child = got
                else:
                    child = 0
                # a repeat of the last label only extends the prefix after a blank
                p = pb + row[c] if c == last else total + row[c]
                add(prefix + (c,), ninf, p, child)
        ranked = sorted(nxt.items(), key=lambda kv: _logsumexp(kv[1][0], kv[1][1]), reverse=True)
        beams = dict(ranked[:beam_width])
    out = []
    for prefix, (pb, pnb, node) in beams.items():
        if trie is not None and prefix and not trie.terminal[node]:
            continue  # ends inside a word
        if trie is not None and not prefix:
            continue
        out.append((list(prefix), _logsumexp(pb, pnb)))
    out.sort(key=lambda h: h[1], reverse=True)
    return out


def greedy_runs(path: np.ndarray) -> tuple[list[int], list[tuple[int, int]]]:
    """The labels a best path spells and each one's run of columns (first, last). The best
    path is also the best alignment of its own labels, so this equals :func:`align` for
    them, without its loop over every column and state."""
    labels: list[int] = []
    spans: list[tuple[int, int]] = []
    prev = BLANK
    for t, k in enumerate(path.tolist()):
        if k != BLANK:
            if k == prev:
                spans[-1] = (spans[-1][0], t)
            else:
                labels.append(k)
                spans.append((t, t))
        prev = k
    return labels, spans


def _describe(log_probs: np.ndarray, codec: CTCCodec, labels: list[int], score: float | None = None, spans: list[tuple[int, int]] | None = None) -> Decoded:
    """Characters, words and confidences of a decoded label sequence (aligned to the
    columns unless ``spans`` are given)."""
    if spans is None:
        spans, best = align(log_probs, labels)
    else:
        best = float("nan") if score is None else score
    probs = np.exp(log_probs)
    chars = [DecodedChar(codec.symbol(k), float(probs[a : b + 1, k].max()), (a, b)) for k, (a, b) in zip(labels, spans)]
    words: list[DecodedWord] = []
    current: list[DecodedChar] = []
    for c in chars + [DecodedChar(" ", 1.0, (0, 0))]:
        if c.char == " ":
            if current:
                words.append(DecodedWord("".join(x.char for x in current), min(x.confidence for x in current), (current[0].columns[0], current[-1].columns[1])))
            current = []
        else:
            current.append(c)
    return Decoded("".join(c.char for c in chars), chars, words, best if score is None else score)


#: Beam width used with a lexicon when none is given.
LEXICON_BEAM = 16


def decode(log_probs: np.ndarray, codec: CTCCodec, *, beam_width: int | None = None, lexicon: Lexicon | None = None) -> Decoded:
    """Decode one image's scores: greedy by default, beam search with ``beam_width > 1``
    or a lexicon (width :data:`LEXICON_BEAM` unless given). With a lexicon and no
    hypothesis that spells entries, the unconstrained best is returned with
    ``in_lexicon = False``."""
    lp = _check(log_probs, codec)
    if beam_width is None:
        beam_width = LEXICON_BEAM if lexicon is not None else 1
    if lexicon is None and beam_width <= 1:
        path = greedy_path(lp)
        labels, spans = greedy_runs(path)
        return _describe(lp, codec, labels, float(lp[np.arange(len(path)), path].sum()), spans)
    hyps = beam_search(lp, codec, beam_width=max(beam_width, 1), lexicon=lexicon)
    if hyps:
        out = _describe(lp, codec, hyps[0][0], hyps[0][1])
        out.in_lexicon = True if lexicon is not None else None
        return out
    fallback = decode(lp, codec, beam_width=max(beam_width, 1))
    fallback.in_lexicon = False
    return fallback
