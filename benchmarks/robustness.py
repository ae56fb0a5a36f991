"""How well a model reads real characters submitted the way users submit them.

Every sampled data-set glyph is rendered in each style of :mod:`hcr.render` (photo of paper,
blue-pen scan, JPEG photo, transparent canvas PNG, chalkboard, small character in a large
photo), sent through the shared preprocessing and the model, and compared with the clean
28x28 image. Images without any character (empty canvas, blank paper, scribble, texture) show
how often the model declines to answer when it should. Prints figures; asserts nothing.

    HCR_DATA_DIR=/path/to/data python benchmarks/robustness.py [--model chars] [--limit 3000]

A character is *rejected* when the answer is blank or uncertain (confidence below the
predictor's threshold). Every render uses its own generator, seeded from (seed, style,
sample), so a run is reproducible whatever the number of worker processes. Data-set glyphs
are taken as ink bright on dark, as the registered benchmark sets (MNIST, EMNIST, A-Z CSV)
store them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from hcr.errors import HcrError
from hcr.preprocess import Preprocessed, PreprocessSpec, preprocess
from hcr.render import NEGATIVES, STYLES, render, render_negative

if TYPE_CHECKING:
    from hcr.data import DataSource
    from hcr.predictor import Prediction, Predictor

CHUNK = 50  # renders per worker task

# --------------------------------------------------------------------------- rendering (workers)

_glyphs: Sequence[np.ndarray] = ()
_spec = PreprocessSpec()
_seed = 0


def _init_worker(glyphs: Sequence[np.ndarray], spec: dict[str, Any], seed: int) -> None:
    global _glyphs, _spec, _seed
    import cv2

    cv2.setNumThreads(1)  # the pool is the parallelism
    _glyphs, _spec, _seed = glyphs, PreprocessSpec.from_dict(spec), seed


def _render_chunk(task: tuple[str, int, int, int]) -> tuple[str, int, int, np.ndarray, np.ndarray, list[Any], np.ndarray, float]:
    """Render and preprocess items ``start:stop`` of a style (``kind`` "style") or of a
    negative kind ("negative"); returns the model inputs, blank flags, boxes, polarity flags
    and the CPU seconds spent."""
    kind, which, start, stop = task
    t0 = time.process_time()
    n = stop - start
    inputs = np.zeros((n, _spec.size, _spec.size), np.float32)
    blank = np.zeros(n, bool)
    inverted = np.zeros(n, bool)
    boxes: list[Any] = []
    for k, i in enumerate(range(start, stop)):
        if kind == "style":
            rng = np.random.default_rng([_seed, which, i])
            img = render(_glyphs[i], STYLES[which], rng)
        else:
            rng = np.random.default_rng([_seed, 1000 + which, i])
            img = render_negative(NEGATIVES[which], rng)
        p = preprocess(img, _spec)
        inputs[k], blank[k], inverted[k] = p.image, p.blank, p.inverted
        boxes.append(p.box)
    return kind, which, start, inputs, blank, boxes, inverted, time.process_time() - t0


def _render_all(tasks: list[tuple[str, int, int, int]], glyphs: Sequence[np.ndarray], spec: PreprocessSpec, seed: int, workers: int) -> list[Any]:
    args = (glyphs, spec.to_dict(), seed)
    if workers <= 1:
        _init_worker(*args)
        return [_render_chunk(t) for t in tasks]
    ctx = multiprocessing.get_context("spawn")  # workers import only render + preprocess, never torch
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=args) as pool:
        return list(pool.map(_render_chunk, tasks))


def _chunks(kind: str, which: int, n: int) -> list[tuple[str, int, int, int]]:
    return [(kind, which, s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]


# --------------------------------------------------------------------------- figures


def split_title(source: "DataSource", split: str) -> str:
    """How the evaluated split is named in reports, e.g. 'EMNIST ByClass subset (dev-val)'."""
    from hcr.train.evaluate import split_name

    return split_name(source.name, split)


def score(preds: Sequence["Prediction"], truth: Sequence[str]) -> dict[str, float]:
    """Accuracy, case-merged accuracy, rejection (blank or uncertain) and blank rates."""
    n = max(len(preds), 1)
    right = sum(p.label == t for p, t in zip(preds, truth))
    merged = sum(p.label is not None and p.label.lower() == t.lower() for p, t in zip(preds, truth))
    rejected = sum(p.blank or p.uncertain for p in preds)
    blank = sum(p.blank for p in preds)
    return {"n": len(preds), "accuracy": right / n, "case_merged": merged / n, "rejected": rejected / n, "blank": blank / n}


def negative_score(preds: Sequence["Prediction"]) -> dict[str, Any]:
    n = max(len(preds), 1)
    return {
        "n": len(preds),
        "rejected": sum(p.blank or p.uncertain for p in preds) / n,
        "blank": sum(p.blank for p in preds) / n,
        "uncertain": sum(p.uncertain for p in preds) / n,
        "mean_confidence": float(np.mean([p.confidence for p in preds])) if preds else 0.0,
        "answered": {lab: c for lab, c in _top_labels([p.label for p in preds if not (p.blank or p.uncertain)])},
    }


def _top_labels(labels: list[str | None], k: int = 5) -> list[tuple[str, int]]:
    vals, counts = np.unique([str(x) for x in labels], return_counts=True) if labels else (np.array([]), np.array([]))
    order = np.argsort(-counts, kind="stable")[:k]
    return [(str(vals[i]), int(counts[i])) for i in order]


def pct(x: float) -> str:
    return f"{100 * x:6.2f}%"


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    from hcr.data import get_source
    from hcr.predictor import Predictor
    from hcr.pretrained import resolve_model

    t_start = time.perf_counter()
    timing: dict[str, float] = {}

    model_path = resolve_model(args.model)
    predictor = Predictor.load(model_path)
    source = get_source(args.data, args.data_dir)
    source.auto_download = False  # a benchmark never starts a download: missing data is an error
    samples = source.load(args.split)
    total = len(samples)
    if total == 0:
        raise HcrError(f"{args.data} ({args.split}) holds no samples")
    n = total if args.limit <= 0 else min(args.limit, total)
    index = np.arange(total) if n == total else np.sort(np.random.default_rng(args.seed).choice(total, n, replace=False))
    subset = samples.subset(index)
    glyphs = list(subset.images)
    truth = [subset.label_map[int(t)] for t in subset.targets]
    timing["load"] = time.perf_counter() - t_start

    title = split_title(source, args.split)
    spec = predictor.spec
    print(f"Robustness of {args.model} ({model_path.name}, {len(predictor.label_map)} classes) to how users submit characters")
    print(f"data: {title}, {n:,} of {total:,} characters" + (f" (random subset, seed {args.seed})" if n < total else ""))
    if getattr(source, "citation", ""):
        print(f"credit: {source.citation}")
    print(
        f"preprocessing: box {spec.box} in {spec.size}, polarity {spec.polarity}, deskew {spec.deskew}; "
        f"rejected = blank or confidence < {predictor.threshold:.2f}; {args.negatives} images per negative kind; "
        f"{args.workers} worker process(es)"
    )
    print()

    # clean: the data-set arrays themselves (light on dark) through the shared preprocessing
    t = time.perf_counter()
    clean_preds: list[Prediction] = []
    for s in range(0, n, 512):
        clean_preds.extend(predictor.predict(glyphs[s : s + 512]))  # type: ignore[arg-type]
    clean = score(clean_preds, truth)
    clean["seconds"] = time.perf_counter() - t
    timing["clean"] = clean["seconds"]

    # renders of every style and every negative kind, in worker processes
    tasks = [c for si in range(len(STYLES)) for c in _chunks("style", si, n)]
    tasks += [c for ni in range(len(NEGATIVES)) for c in _chunks("negative", ni, args.negatives)]
    t = time.perf_counter()
    results = _render_all(tasks, glyphs, spec, args.seed, args.workers)
    timing["render_preprocess_wall"] = time.perf_counter() - t

    def gather(kind: str, which: int, count: int) -> tuple[list[Preprocessed], float]:
        pre: list[Preprocessed | None] = [None] * count
        cpu = 0.0
        for k, w, start, inputs, blank, boxes, inverted, sec in results:
            if k == kind and w == which:
                cpu += sec
                for j in range(len(blank)):
                    pre[start + j] = Preprocessed(inputs[j], bool(blank[j]), boxes[j], bool(inverted[j]))
        assert all(p is not None for p in pre)
        return pre, cpu  # type: ignore[return-value]

    t_model = 0.0
    styles: dict[str, dict[str, float]] = {}
    pooled: list[Prediction] = []
    for si, style in enumerate(STYLES):
        pre, cpu = gather("style", si, n)
        t = time.perf_counter()
        preds = predictor.predict_inputs(pre)
        t_model += time.perf_counter() - t
        styles[style] = score(preds, truth)
        styles[style]["gap_points"] = 100 * (clean["accuracy"] - styles[style]["accuracy"])
        styles[style]["render_preprocess_cpu_s"] = cpu
        pooled.extend(preds)
    all_styles = score(pooled, truth * len(STYLES))
    all_styles["gap_points"] = 100 * (clean["accuracy"] - all_styles["accuracy"])
    worst = max(styles, key=lambda s: styles[s]["gap_points"])

    negatives: dict[str, dict[str, Any]] = {}
    for ni, kind in enumerate(NEGATIVES):
        pre, cpu = gather("negative", ni, args.negatives)
        t = time.perf_counter()
        negatives[kind] = negative_score(predictor.predict_inputs(pre) if pre else [])
        t_model += time.perf_counter() - t
        negatives[kind]["render_preprocess_cpu_s"] = cpu
    timing["model"] = t_model
    timing["total"] = time.perf_counter() - t_start

    # ---- report
    head = f"{'input':16s} {'accuracy':>9s} {'gap (pts)':>10s} {'case-merged':>12s} {'rejected':>9s} {'blank':>8s} {'ms/img':>7s}"
    print(head)
    print("-" * len(head))
    print(f"{'clean 28x28':16s} {pct(clean['accuracy']):>9s} {'':>10s} {pct(clean['case_merged']):>12s} {pct(clean['rejected']):>9s} {pct(clean['blank']):>8s} {1000 * clean['seconds'] / n:7.1f}")
    for style, r in styles.items():
        ms = 1000 * r["render_preprocess_cpu_s"] / n
        print(f"{style:16s} {pct(r['accuracy']):>9s} {r['gap_points']:+10.2f} {pct(r['case_merged']):>12s} {pct(r['rejected']):>9s} {pct(r['blank']):>8s} {ms:7.1f}")
    r = all_styles
    print(f"{'all styles':16s} {pct(r['accuracy']):>9s} {r['gap_points']:+10.2f} {pct(r['case_merged']):>12s} {pct(r['rejected']):>9s} {pct(r['blank']):>8s}")
    print(f"max gap: {styles[worst]['gap_points']:.2f} points ({worst}); gap = clean accuracy - style accuracy")
    print("(ms/img: CPU time to render and preprocess one image; for clean, preprocessing and model)")
    print()
    head = f"{'no character':18s} {'rejected':>9s} {'blank':>8s} {'uncertain':>10s} {'mean conf':>10s}  answered as"
    print(head)
    print("-" * len(head))
    for kind, neg in negatives.items():
        answered = ", ".join(f"{lab} x{c}" for lab, c in neg["answered"].items()) or "-"
        print(f"{kind:18s} {pct(neg['rejected']):>9s} {pct(neg['blank']):>8s} {pct(neg['uncertain']):>10s} {neg['mean_confidence']:10.3f}  {answered}")
    print()
    print(
        f"time: {timing['total']:.1f} s total (load {timing['load']:.1f} s, clean {timing['clean']:.1f} s, "
        f"render + preprocess {timing['render_preprocess_wall']:.1f} s wall, model {timing['model']:.1f} s)"
    )

    return {
        "model": str(args.model),
        "model_file": str(model_path),
        "data": args.data,
        "split": args.split,
        "title": title,
        "samples": n,
        "split_size": total,
        "seed": args.seed,
        "citation": getattr(source, "citation", ""),
        "threshold": predictor.threshold,
        "clean": clean,
        "styles": styles,
        "all_styles": all_styles,
        "max_gap": {"style": worst, "points": styles[worst]["gap_points"]},
        "negatives": negatives,
        "timing_s": timing,
        "workers": args.workers,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="chars", help="pretrained name or model file (default: chars)")
    ap.add_argument("--data", default="emnist-byclass", help="data set (default: emnist-byclass)")
    ap.add_argument("--split", default="dev-val", help="split to evaluate (default: dev-val)")
    ap.add_argument("--data-dir", default=None, help="data folder (default: $HCR_DATA_DIR, else the user cache)")
    ap.add_argument("--limit", type=int, default=3000, help="seeded random subset of this many characters; 0 = all (default: 3000)")
    ap.add_argument("--negatives", type=int, default=200, help="images per negative kind (default: 200)")
    ap.add_argument("--seed", type=int, default=0, help="subset and rendering seed (default: 0)")
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="render processes (default: CPU cores, at most 4; 1 = in-process)")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.limit < 0 or args.negatives < 0 or args.workers < 1:
        ap.error("--limit and --negatives must be >= 0 and --workers >= 1")
    return args


def run_and_report(name: str, run: Any, args: argparse.Namespace) -> int:
    """Run a benchmark: a missing data set or model is one line and exit status 2; the
    figures go to ``args.json`` when asked (shared by the benchmarks in this folder)."""
    try:
        figures = run(args)
    except HcrError as e:
        print(f"{name}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
        print(f"figures written to {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_report("robustness", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
