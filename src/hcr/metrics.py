"""Evaluation metrics for character classifiers and text transcriptions (numpy only).

Conventions: class index ``i`` is ``symbols[i]``; confusion matrices have rows = true
class and columns = predicted class. Everything :func:`classification_report` returns is
plain Python (JSON-serialisable).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from .charset import LOOKALIKE_GROUPS

__all__ = [
    "calibration",
    "best_temperature",
    "case_merged_accuracy",
    "lookalike_merged_accuracy",
    "merged_accuracy",
    "lookalike_key",
    "cer",
    "classification_report",
    "confusion_matrix",
    "levenshtein",
    "most_confused",
    "normalize_rows",
    "per_class_prf",
    "top_k_accuracy",
    "validate_predictions",
    "wer",
]


def _labels(y: np.ndarray, num_classes: int, name: str) -> NDArray[np.int64]:
    """``y`` as a 1-D int64 array of indices in ``[0, num_classes)``; ValueError otherwise."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.mod(arr, 1) == 0):
            raise ValueError(f"{name} must hold integer class indices")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(f"{name} has class indices outside [0, {num_classes}): min {arr.min()}, max {arr.max()}")
    return arr


def _safe_div(num: np.ndarray, den: np.ndarray) -> NDArray[np.float64]:
    """Element-wise ``num / den`` with 0/0 (or x/0) -> 0.0 and no warnings."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def normalize_rows(cm: np.ndarray) -> NDArray[np.float64]:
    """Each row of a confusion matrix divided by its sum (per-cell recall); empty rows stay 0."""
    cm = np.asarray(cm)
    return _safe_div(cm, cm.sum(axis=1, keepdims=True))


def validate_predictions(
    y_true: np.ndarray, probs: np.ndarray, num_classes: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Check ``probs`` is (N, C) with C == num_classes, N == len(y_true) > 0; return both as arrays."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be 2-D (samples, classes), got shape {p.shape}")
    if p.shape[1] != num_classes:
        raise ValueError(f"probs has {p.shape[1]} columns but there are {num_classes} symbols")
    if p.shape[0] == 0:
        raise ValueError("cannot evaluate zero samples")
    if not np.all(np.isfinite(p)):
        raise ValueError("probs contains NaN or infinite values")
    y = _labels(y_true, num_classes, "y_true")
    if len(y) != len(p):
        raise ValueError(f"y_true has {len(y)} labels but probs has {len(p)} rows")
    return y, p


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> NDArray[np.int64]:
    """int64 (C, C) counts; rows = true class, columns = predicted class."""
    t = _labels(y_true, num_classes, "y_true")
    p = _labels(y_pred, num_classes, "y_pred")
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} labels but y_pred has {len(p)}")
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def top_k_accuracy(y_true: np.ndarray, probs: np.ndarray, k: int) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores (k clipped to [1, C])."""
    arr = np.asarray(probs)
    y, p = validate_predictions(y_true, arr, arr.shape[1] if arr.ndim == 2 else -1)
    k = int(min(max(k, 1), p.shape[1]))
    top = np.argpartition(-p, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == y[:, None], axis=1)))


def per_class_prf(cm: np.ndarray) -> dict[str, NDArray[Any]]:
    """Per-class precision, recall, F1 (float64) and support (int64) from a confusion matrix."""
    cm = np.asarray(cm)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    precision = _safe_div(tp, cm.sum(axis=0))
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def most_confused(cm: np.ndarray, symbols: Sequence[str], n: int = 20) -> list[dict[str, Any]]:
    """The ``n`` largest non-zero off-diagonal cells, count descending (ties by true, then predicted index).

    ``rate`` is the count over the true class's support (the share of that class sent to ``pred``).
    """
    cm = np.asarray(cm)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = off.ravel()
    order = np.argsort(-flat, kind="stable")
    support = cm.sum(axis=1)
    out: list[dict[str, Any]] = []
    for idx in order[: max(n, 0)]:
        if flat[idx] <= 0:
            break
        t, p = divmod(int(idx), cm.shape[1])
        count = int(flat[idx])
        out.append({"true": symbols[t], "pred": symbols[p], "count": count, "rate": count / int(support[t])})
    return out


def calibration(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> dict[str, Any]:
    """Expected calibration error over ``n_bins`` equal-width bins on [0, 1].

    Confidence 1.0 falls in the last bin. Empty bins report ``confidence``/``accuracy`` as None.
    ECE = sum over bins of count/N * |accuracy - mean confidence|.
    """
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    ok = np.asarray(correct, dtype=bool).ravel()
    if conf.shape != ok.shape:
        raise ValueError(f"confidence has {conf.size} values but correct has {ok.size}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1):
        raise ValueError("confidence values must lie in [0, 1]")
    which = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    conf_sum = np.bincount(which, weights=conf, minlength=n_bins)
    ok_sum = np.bincount(which, weights=ok.astype(np.float64), minlength=n_bins)
    mean_conf, acc = _safe_div(conf_sum, counts), _safe_div(ok_sum, counts)
    ece = float(np.sum(counts * np.abs(acc - mean_conf)) / conf.size) if conf.size else 0.0
    bins = [
        {
            "lo": i / n_bins,
            "hi": (i + 1) / n_bins,
            "count": int(counts[i]),
            "confidence": float(mean_conf[i]) if counts[i] else None,
            "accuracy": float(acc[i]) if counts[i] else None,
        }
        for i in range(n_bins)
    ]
    return {"ece": ece, "bins": bins}


def best_temperature(nll: Callable[[float], float]) -> float:
    """The softmax temperature minimising ``nll(temperature)``, a held-out negative
    log-likelihood (temperature scaling, Guo et al. 2017): a log-spaced search over
    [0.05, 20] refined once around the best, rounded to 4 decimals. Any model's: the
    classifier's cross-entropy, the CTC loss of a word/line model."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    best = float(grid[int(np.argmin([nll(t) for t in grid]))])
    fine = best * np.exp(np.linspace(-0.06, 0.06, 25))
    return round(float(fine[int(np.argmin([nll(t) for t in fine]))]), 4)


def merged_accuracy(y_true: np.ndarray, y_pred: np.ndarray, symbols: Sequence[str], key: Callable[[str], str]) -> float:
    """Accuracy counting a prediction right when ``key(truth) == key(prediction)``."""
    t = _labels(y_true, len(symbols), "y_true")
    p = _labels(y_pred, len(symbols), "y_pred")
    if len(t) != len(p) or len(t) == 0:
        raise ValueError(f"need equally many labels and predictions (> 0), got {len(t)} and {len(p)}")
    _, group = np.unique([key(s) for s in symbols], return_inverse=True)
    group = np.asarray(group).ravel()
    return float(np.mean(group[t] == group[p]))


def case_merged_accuracy(y_true: np.ndarray, y_pred: np.ndarray, symbols: Sequence[str]) -> float | None:
    """Accuracy counting a prediction right when the symbols match after ``.lower()``; None without letters."""
    if not any(s.isalpha() for s in symbols):
        return None
    return merged_accuracy(y_true, y_pred, symbols, str.lower)


def lookalike_key(symbol: str, groups: Sequence[str] = LOOKALIKE_GROUPS) -> str:
    """The group a symbol falls in: its look-alike group, else its lower-case form."""
    for g in groups:
        if symbol in g:
            return g
    return symbol.lower()


def lookalike_merged_accuracy(y_true: np.ndarray, y_pred: np.ndarray, symbols: Sequence[str]) -> float | None:
    """Case-merged accuracy that also merges the look-alike groups O/o/0, I/l/1, S/s/5, Z/z/2.

    None unless the label set has both digits and letters (only then can they be confused).
    """
    if not (any(s.isalpha() for s in symbols) and any(s.isdigit() for s in symbols)):
        return None
    return merged_accuracy(y_true, y_pred, symbols, lookalike_key)


def levenshtein(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Edit distance (insertions, deletions, substitutions each cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: edit distance / max(len(reference), 1)."""
    return levenshtein(reference, hypothesis) / max(len(reference), 1)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate on whitespace-split words: edit distance / max(#reference words, 1)."""
    ref = reference.split()
    return levenshtein(ref, hypothesis.split()) / max(len(ref), 1)


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """CER and WER (edit distance over the reference length, summed over all lines), also
    without letter case, and the share of lines read exactly."""
    ce = ce_ci = we = we_ci = exact = 0
    chars = words = 0
    for r, h in zip(refs, hyps):
        chars += len(r)
        words += len(r.split())
        ce += levenshtein(r, h)
        ce_ci += levenshtein(r.lower(), h.lower())
        we += levenshtein(r.split(), h.split())
        we_ci += levenshtein(r.lower().split(), h.lower().split())
        exact += r == h
    c, w = max(chars, 1), max(words, 1)
    return {"cer": ce / c, "cer_ci": ce_ci / c, "wer": we / w, "wer_ci": we_ci / w, "line_acc": exact / max(len(refs), 1), "lines": len(refs), "characters": chars, "words": words}


def classification_report(
    y_true: np.ndarray, probs: np.ndarray, symbols: Sequence[str], n_bins: int = 15, top_k: int = 5
) -> dict[str, Any]:
    """All classifier metrics as a JSON-serialisable dict (see module docs for the keys).

    ``macro_f1`` averages F1 over classes present in ``y_true`` or predicted (as sklearn does),
    so classes absent from an evaluation subset do not count as zeros.
    """
    symbols = [str(s) for s in symbols]
    y, p = validate_predictions(y_true, probs, len(symbols))
    pred = p.argmax(axis=1)
    conf = p.max(axis=1)
    cm = confusion_matrix(y, pred, len(symbols))
    prf = per_class_prf(cm)
    present = (prf["support"] > 0) | (cm.sum(axis=0) > 0)
    cal = calibration(np.clip(conf, 0.0, 1.0), pred == y, n_bins)
    k = int(min(max(top_k, 1), len(symbols)))
    return {
        "num_samples": int(len(y)),
        "accuracy": float(np.mean(pred == y)),
        "top_k": k,
        "top_k_accuracy": top_k_accuracy(y, p, k),
        "macro_f1": float(prf["f1"][present].mean()),
        "case_merged_accuracy": case_merged_accuracy(y, pred, symbols),
        "lookalike_merged_accuracy": lookalike_merged_accuracy(y, pred, symbols),
        "per_class": [
            {
                "symbol": s,
                "precision": float(prf["precision"][i]),
                "recall": float(prf["recall"][i]),
                "f1": float(prf["f1"][i]),
                "support": int(prf["support"][i]),
            }
            for i, s in enumerate(symbols)
        ],
        "most_confused": most_confused(cm, symbols, 20),
        "ece": cal["ece"],
        "reliability": cal["bins"],
        "confusion": cm.tolist(),
    }
