"""Reading many images: one process, ``--workers N`` processes and Ray with N CPUs, on the same images.

Makes ``--images`` (default 2,000) form-field images: lines of numbers and dates composed
from the handwritten digits that ship with scikit-learn (no data set download;
:func:`hcr.compose.compose`) and rendered as photos, scans, canvas exports and chalkboards
(:func:`hcr.render.render_line`, the styles in turn), saved as PNG and JPEG files. Then
reads them all with ``hcr read``'s defaults (the segmentation engine, ``chars`` and the
printed model) three ways through :mod:`hcr.batch`, each writing JSON Lines:

1. one process (what ``hcr read DIR --out FILE`` does),
2. ``--workers N`` processes (``hcr read DIR --out FILE --workers N``),
3. Ray Data on a local Ray instance with N CPUs and N actors (``hcr read DIR --out FILE --ray
   --workers N``); the Ray instance is started before the clock starts, and its start-up
   time is printed apart.

Every time is wall-clock from the first image to the last row written, model loading and
worker start-up included. Prints images/s and the ratio to one process, checks that the
three outputs hold the same rows, and asserts nothing else.

    python benchmarks/batch_read.py [--images 2000] [--workers 2] [--engine segment] [--no-ray]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def make_images(folder: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` rendered lines of handwritten digits, dates and codes in ``folder``; their texts."""
    from hcr.compose import GlyphPool, compose, make_text
    from hcr.data import get_source
    from hcr.render import STYLES, render_line

    samples = get_source("digits").load("all")
    pool = GlyphPool.from_samples(samples.images, samples.targets, samples.label_map.symbols)
    rng = np.random.default_rng(seed)
    texts = []
    for i in range(n):
        text = make_text(("number", "date")[i % 2], rng)
        style = STYLES[i % len(STYLES)]
        img = render_line(compose(text, pool, rng), style, rng)
        sub = folder / f"batch{i // 500:02d}"  # a few sub-folders, as scans usually come
        sub.mkdir(exist_ok=True)
        if style in ("jpeg-photo", "paper-photo"):
            img.convert("RGB").save(sub / f"{i:05d}.jpg", quality=90)
        else:
            img.save(sub / f"{i:05d}.png")
        texts.append(text)
    return texts


def timed(label: str, fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    print(f"  {label}: {seconds:.1f} s", flush=True)
    return seconds, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2, help="processes, and Ray CPUs/actors (default 2)")
    ap.add_argument("--engine", default="segment", choices=("segment", "crnn"))
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray run")
    ap.add_argument("--keep", metavar="DIR", help="make the images and outputs in DIR (default: a temporary folder)")
    args = ap.parse_args(argv)

    from hcr import batch

    tmp = tempfile.TemporaryDirectory(prefix="hcr-batch-bench-")
    root = Path(args.keep) if args.keep else Path(tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    images = root / "images"
    images.mkdir(exist_ok=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}")
    timed(f"rendering {args.images} images into {images}", lambda: make_images(images, args.images))
    refs = batch.list_images([str(images)])
    spec = batch.ModelSpec("read", engine=args.engine)
    print(f"reading {len(refs)} images with hcr read's defaults (engine {args.engine}):", flush=True)

    results: dict[str, float] = {}
    outputs: dict[str, Path] = {}
    outputs["1 process"] = root / "one.jsonl"
    results["1 process"], _ = timed("1 process", lambda: batch.run(refs, outputs["1 process"], spec, overwrite=True, progress=False))
    key = f"--workers {args.workers}"
    outputs[key] = root / "workers.jsonl"
    results[key], _ = timed(key, lambda: batch.run(refs, outputs[key], spec, workers=args.workers, overwrite=True, progress=False))
    ray_start = None
    if not args.no_ray:
        try:
            import ray
        except ImportError:
            print("  Ray: not installed (pip install 'hcr-toolkit[distributed]'); skipped")
        else:
            import logging

            ray_start, _ = timed(f"starting a local Ray instance with {args.workers} CPUs",
                                 lambda: ray.init(num_cpus=args.workers, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False))
            key_ray = f"Ray, {args.workers} CPUs"
            outputs[key_ray] = root / "ray.jsonl"
            results[key_ray], _ = timed(key_ray, lambda: batch.run_ray(refs, outputs[key_ray], spec, workers=args.workers, overwrite=True, progress=False))
            ray.shutdown()

    def rows(path: Path) -> list[tuple[Any, ...]]:
        return [(r["file"], r["text"], r["error"]) for r in batch.read_rows(path)]

    base_rows = rows(outputs["1 process"])
    same = all(rows(p) == base_rows for p in outputs.values())
    print()
    print("| how | seconds | images/s | vs 1 process |")
    print("|---|---:|---:|---:|")
    base = len(refs) / results["1 process"]
    for how, secs in results.items():
        rate = len(refs) / secs
        print(f"| {how} | {secs:.1f} | {rate:.1f} | {rate / base:.2f}x |")
    print()
    if ray_start is not None:
        print(f"Ray's start-up ({ray_start:.1f} s) is not in its time; a cluster is started once for many jobs.")
    print(f"same rows in every output: {'yes' if same else 'NO'}; {sum(r[2] is not None for r in base_rows)} error rows")
    tmp.cleanup()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
