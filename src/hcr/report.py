"""Evaluation reports: plots (matplotlib ``Figure`` objects, no pyplot state), CSV and Markdown.

Files are written atomically (:func:`hcr.modelfile.write_atomic`), so a reader never sees
a half-written report.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from .annotate import ReadingLike, annotate_reading
from .annotate.figure import message_png, save_png
from .annotate.predictions import annotate_predictions
from .metrics import normalize_rows, validate_predictions
from .modelfile import write_atomic

__all__ = [
    "ReadingLike",
    "annotate_predictions",
    "annotate_reading",
    "plot_confusion",
    "plot_gallery",
    "plot_history",
    "plot_reliability",
    "write_confusion_csv",
    "write_evaluation_report",
]

def _check_cm(cm: np.ndarray, symbols: Sequence[str]) -> np.ndarray:
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(symbols):
        raise ValueError(f"confusion matrix shape {cm.shape} does not match {len(symbols)} symbols")
    return cm


def _as_images(images: np.ndarray) -> np.ndarray:
    """(N, H, W) float images; a singleton channel axis (N, 1, H, W) is dropped."""
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {arr.shape}")
    return arr


def plot_confusion(cm: np.ndarray, symbols: Sequence[str], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (colour = share of the true class), readable at 62+ classes."""
    cm = _check_cm(cm, symbols)
    c = cm.shape[0]
    side = max(6.0, 0.22 * c)
    fig = Figure(figsize=(side * 1.12, side), layout="constrained")
    ax = fig.add_subplot()
    rates = normalize_rows(cm)
    cmap = colormaps["viridis"].with_extremes(bad="white")  # empty cells white, tiny ones dark
    norm = PowerNorm(0.4, vmin=0.0, vmax=1.0)  # stretches small rates so rare confusions stay visible
    im = ax.imshow(np.ma.masked_equal(rates, 0.0), cmap=cmap, norm=norm, interpolation="nearest")
    labels = [str(s) for s in symbols]
    size = 9 if c <= 30 else 7
    ax.set_xticks(range(c), labels, fontsize=size, parse_math=False)
    ax.set_yticks(range(c), labels, fontsize=size, parse_math=False)
    if c > 20:  # repeat labels on the far sides so distant cells are easy to read
        ax.tick_params(top=True, labeltop=True, right=True, labelright=True)
    ax.set_xticks(np.arange(c + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(c + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="0.85", linewidth=0.4)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "Confusion matrix", parse_math=False)
    if c <= 20:
        for t, p in zip(*np.nonzero(cm)):
            colour = "black" if norm(rates[t, p]) > 0.6 else "white"
            ax.text(p, t, str(cm[t, p]), ha="center", va="center", fontsize=size - 1, color=colour)
    fig.colorbar(im, ax=ax, shrink=0.6, label="share of true class (recall per cell)")
    return save_png(fig, path)


def plot_reliability(bins: list[dict[str, Any]], path: Path, ece: float | None = None) -> Path:
    """Reliability diagram: accuracy per confidence bin against the diagonal, counts below (log scale)."""
    fig = Figure(figsize=(6, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    full = [b for b in bins if b["count"]]
    lo = [b["lo"] for b in full]
    width = [b["hi"] - b["lo"] for b in full]
    top.bar(lo, [b["accuracy"] for b in full], width=width, align="edge", color="tab:blue", edgecolor="black",
            linewidth=0.5, label="accuracy")
    top.plot([b["confidence"] for b in full], [b["accuracy"] for b in full], "o", color="tab:orange", ms=4,
             label="(mean confidence, accuracy)")
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy")
    top.legend(loc="upper left", fontsize=8, framealpha=0.9)
    top.set_title("Reliability diagram" + (f" (ECE {100 * ece:.2f}%)" if ece is not None else ""))
    bottom.bar(lo, [b["count"] for b in full], width=width, align="edge", color="0.6", edgecolor="black",
               linewidth=0.5)
    if full:
        bottom.set_yscale("log")
    bottom.set(xlabel="confidence", ylabel="samples")
    return save_png(fig, path)


def plot_gallery(images: np.ndarray, titles: Sequence[str], path: Path, ncols: int = 10, title: str = "") -> Path:
    """Grid of images shown as dark ink on white (``1 - x``), each with a small caption above it."""
    imgs = _as_images(images)
    if len(titles) != len(imgs):
        raise ValueError(f"{len(imgs)} images but {len(titles)} titles")
    if len(imgs) == 0:
        return message_png(title or "no images", path)
    n, h, w = imgs.shape
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    pad, band = max(2, w // 7), max(8, h // 3)  # gap between tiles; caption band above each tile
    cw, ch = w + 2 * pad, h + band + pad
    canvas = np.ones((nrows * ch, ncols * cw))
    for i, img in enumerate(imgs):
        r, col = divmod(i, ncols)
        y0, x0 = r * ch + band, col * cw + pad
        canvas[y0:y0 + h, x0:x0 + w] = 1.0 - np.clip(img, 0.0, 1.0)
    cell_in = 0.95
    head_in = 0.4 if title else 0.05
    body_h = nrows * cell_in * ch / cw
    fig = Figure(figsize=(ncols * cell_in, body_h + head_in))
    ax = fig.add_axes((0, 0, 1, body_h / (body_h + head_in)))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    for i, caption in enumerate(titles):
        r, col = divmod(i, ncols)
        y0, x0 = r * ch + band, col * cw + pad
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), w, h, fill=False, edgecolor="0.75", linewidth=0.5))
        ax.text(x0 + w / 2 - 0.5, y0 - 1.5, str(caption), ha="center", va="bottom", fontsize=7,
                family="monospace", parse_math=False)
    if title:
        fig.suptitle(title, y=1 - 0.08 / (body_h + head_in), va="top", fontsize=11)
    return save_png(fig, path)


def _column(history: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """Values of ``key`` per row as floats; missing or None -> NaN."""
    return np.array([np.nan if row.get(key) is None else float(row[key]) for row in history])


_METRIC_NAMES = {"loss": "Loss", "acc": "Accuracy", "cer": "Character error rate"}


def plot_history(history: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Loss and accuracy (or, for sequence models, character error rate) against epoch
    (validation curves drawn only where present)."""
    if len(history) == 0:
        raise ValueError("history is empty")
    epochs = _column(history, "epoch")
    second = "cer" if "val_cer" in history[0] else "acc"
    fig = Figure(figsize=(10, 4), layout="constrained")
    for ax, metric in zip(fig.subplots(1, 2), ("loss", second)):
        for split, style in (("train", "-o"), ("val", "--s")):
            values = _column(history, f"{split}_{metric}")
            if not np.all(np.isnan(values)):
                ax.plot(epochs, values, style, ms=3, label=split)
        ax.set(xlabel="epoch", ylabel=_METRIC_NAMES[metric].lower(), title=_METRIC_NAMES[metric])
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_lines():
            ax.legend()
    return save_png(fig, path)


def plot_line_gallery(images: Sequence[np.ndarray], refs: Sequence[str], hyps: Sequence[str], path: Path, title: str = "") -> Path:
    """Line images (model inputs, ink bright) one per row, captioned "truth -> read"."""
    if not images:
        return message_png("no lines to show", path)
    fig = Figure(figsize=(8, 0.9 * len(images) + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(images), 1))
    for ax, img, ref, hyp in zip(axes, images, refs, hyps):
        ax.imshow(img, cmap="gray_r", vmin=0, vmax=1 if img.dtype != np.uint8 else 255, aspect="equal")
        ax.set_title(f"{ref!r} -> {hyp!r}", fontsize=8, loc="left", color="black" if ref == hyp else "firebrick")
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    return save_png(fig, path)


def write_confusion_csv(cm: np.ndarray, symbols: Sequence[str], path: Path) -> Path:
    """CSV with header ``,sym0,sym1,...`` and one row of counts per true class."""
    cm = _check_cm(cm, symbols)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["", *symbols])
    for sym, row in zip(symbols, cm.tolist()):
        writer.writerow([sym, *row])
    return write_atomic(path, buf.getvalue())


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _md_symbol(s: str) -> str:
    """A symbol as a Markdown table cell: code span (so '*', '_' show literally), '|' escaped."""
    code = f"`` {s} ``" if "`" in s else f"`{s}`"
    return code.replace("|", "\\|")


def _markdown(report: Mapping[str, Any], title: str, data_description: str, model_description: str,
              credits: Sequence[str], n_errors_shown: int) -> str:
    lines = [f"# {title}", "", f"**Data:** {data_description}", ""]
    if model_description:
        lines += [f"**Model:** {model_description}", ""]
    lines += [
        "## Summary", "",
        "| metric | value |", "|---|---:|",
        f"| samples | {report['num_samples']} |",
        f"| accuracy | {_pct(report['accuracy'])} |",
        f"| top-{report['top_k']} accuracy | {_pct(report['top_k_accuracy'])} |",
        f"| macro-F1 | {_pct(report['macro_f1'])} |",
        f"| case-merged accuracy | {_pct(report['case_merged_accuracy'])} |",
        f"| look-alike-merged accuracy (O/o/0, I/l/1, S/s/5, Z/z/2, and case) | {_pct(report.get('lookalike_merged_accuracy'))} |",
        f"| ECE ({len(report['reliability'])} bins) | {_pct(report['ece'])} |",
        "",
        "## Confusion matrix", "",
        "Rows are true classes, columns predictions; colour is the share of the true class.", "",
        "![Confusion matrix](confusion.png)", "",
        "Counts: [confusion.csv](confusion.csv)", "",
        "## Calibration", "",
        "![Reliability diagram](reliability.png)", "",
        "## Errors", "",
        f"{n_errors_shown} highest-confidence errors (t: true, p: predicted, then confidence).", "",
        "![Highest-confidence errors](errors.png)", "",
        "## Most confused pairs", "",
        "| true | predicted | count | share of true class |", "|---|---|---:|---:|",
    ]
    lines += [f"| {_md_symbol(m['true'])} | {_md_symbol(m['pred'])} | {m['count']} | {_pct(m['rate'])} |"
              for m in report["most_confused"]]
    lines += ["", "## Per-class results", "",
              "| symbol | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {_md_symbol(c['symbol'])} | {_pct(c['precision'])} | {_pct(c['recall'])} | {_pct(c['f1'])} "
              f"| {c['support']} |" for c in report["per_class"]]
    lines += ["", "## Data credits", ""]
    lines += [f"- {c}" for c in credits] or ["(none given)"]
    return "\n".join(lines) + "\n"


def write_evaluation_report(
    out_dir: Path,
    report: dict[str, Any],
    images: np.ndarray,
    y_true: np.ndarray,
    probs: np.ndarray,
    symbols: Sequence[str],
    *,
    title: str,
    data_description: str,
    model_description: str = "",
    credits: Sequence[str] = (),
    max_errors: int = 60,
) -> dict[str, Path]:
    """Write metrics.json, report.md, confusion.png/.csv, reliability.png and errors.png into ``out_dir``.

    ``report`` is :func:`hcr.metrics.classification_report` for the same ``y_true``/``probs``.
    Returns file name (without extension, '_csv' for the CSV) -> path.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    symbols = [str(s) for s in symbols]
    y, p = validate_predictions(y_true, probs, len(symbols))
    imgs = _as_images(images)
    if len(imgs) != len(y):
        raise ValueError(f"{len(imgs)} images but {len(y)} labels")
    if report.get("num_samples") != len(y):
        raise ValueError(f"report covers {report.get('num_samples')} samples but {len(y)} were given")

    pred, conf = p.argmax(axis=1), p.max(axis=1)
    wrong = np.flatnonzero(pred != y)
    shown = wrong[np.argsort(-conf[wrong], kind="stable")][: max(max_errors, 0)]
    cm = np.asarray(report["confusion"], dtype=np.int64)

    paths: dict[str, Path] = {
        "confusion": plot_confusion(cm, symbols, out_dir / "confusion.png", title=f"{title}: {data_description}"),
        "confusion_csv": write_confusion_csv(cm, symbols, out_dir / "confusion.csv"),
        "reliability": plot_reliability(report["reliability"], out_dir / "reliability.png", report["ece"]),
    }
    if len(shown):
        captions = [f"t:{symbols[y[i]]} p:{symbols[pred[i]]} {conf[i]:.2f}".replace(" 0.", " .") for i in shown]
        gallery_title = f"Highest-confidence errors ({len(shown)} of {len(wrong)})"
        paths["errors"] = plot_gallery(imgs[shown], captions, out_dir / "errors.png", title=gallery_title)
    else:
        paths["errors"] = message_png("no errors", out_dir / "errors.png")

    meta = {"title": title, "data_description": data_description, "model_description": model_description,
            "credits": list(credits)}
    paths["metrics"] = write_atomic(out_dir / "metrics.json",
                                         json.dumps({**meta, **report}, indent=2, allow_nan=False) + "\n")
    paths["report"] = write_atomic(
        out_dir / "report.md", _markdown(report, title, data_description, model_description, credits, len(shown))
    )
    return paths
