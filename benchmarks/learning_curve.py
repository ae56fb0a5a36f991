"""Would more training data help? Train one recipe on growing seeded parts of its training
split, evaluate each model on the same held-out split, and fit accuracy against the
logarithm of the number of training images.

    HCR_DATA_DIR=/path/to/data python benchmarks/learning_curve.py \
        --config configs/emnist-byclass-hcr-cnn-w40.yaml --fractions 0.25 0.5 1 \
        --eval-data emnist-byclass --eval-split dev-val --target 0.88

Each part is the recipe's own ``max_train_samples`` subset (seeded by the recipe's seed, so a
smaller part is not nested in a larger one; the validation share is carved from the part as
in a full run). Everything else in the recipe is unchanged, epochs included. A run folder
that already holds a finished model and its evaluation is reused, so an interrupted curve
resumes where it stopped. Prints figures; asserts nothing.

The fit, ``accuracy = a + b * log2(images)``, reads as "each doubling of the data adds b".
With ``--target`` it also says how many images that line needs to reach the target: an
extrapolation, and an optimistic one (learning curves flatten as they approach the error
that no amount of data removes, e.g. look-alike characters).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from hcr.errors import HcrError

if TYPE_CHECKING:
    from hcr.config import TrainConfig

METRICS = ("accuracy", "case_merged_accuracy", "lookalike_merged_accuracy")


def log_fit(sizes: Sequence[int], values: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``value = a + b * log2(size)``; returns ``(a, b)``."""
    if len(set(sizes)) < 2:
        raise HcrError("a learning curve needs at least two different training sizes")
    b, a = np.polyfit(np.log2(np.asarray(sizes, float)), np.asarray(values, float), 1)
    return float(a), float(b)


def size_for(target: float, a: float, b: float) -> float:
    """Training images at which the fitted line reaches ``target`` (inf if it never does)."""
    return math.inf if b <= 0 else float(2 ** ((target - a) / b))


def run_point(recipe: "TrainConfig", n: int | None, out: Path, eval_data: str, eval_split: str | None) -> dict[str, Any]:
    """Train (or reuse) the recipe's model on ``n`` samples (None: all) and evaluate it."""
    from hcr.checkpoint import load_checkpoint
    from hcr.train.classify import fit
    from hcr.train.evaluate import evaluate_checkpoint

    result = out / "learning-curve.json"
    if result.is_file():
        return dict(json.loads(result.read_text()))
    cfg = recipe.updated(max_train_samples=n)
    res = fit(cfg, out, resume=(out / "last.pt").is_file(), progress=False, log=lambda s: print(f"  {s}", file=sys.stderr))
    minutes = sum(float(h.get("seconds", 0)) for h in res.history) / 60  # all epochs, across resumes
    rep = evaluate_checkpoint(out / "best.pt", eval_data, eval_split, out / "eval", data_dir=cfg.data_dir, progress=False)
    trained = int(load_checkpoint(out / "best.pt").metrics.get("train_samples", n or 0))
    point = {"train_images": trained, "minutes": round(minutes, 1), **{k: rep.get(k) for k in METRICS}, "evaluated_on": rep["data_description"]}
    result.write_text(json.dumps(point, indent=2) + "\n")
    return point


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="a classifier recipe (configs/*.yaml)")
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 1.0], help="parts of the training split (1 = all of it)")
    ap.add_argument("--eval-data", required=True, help="data set to evaluate on (e.g. emnist-byclass)")
    ap.add_argument("--eval-split", default=None, help="its held-out split (default: the data set's)")
    ap.add_argument("--target", type=float, default=None, help="an accuracy (0-1) to project the needed data for")
    ap.add_argument("--full-size", type=int, default=None, help="images in the whole training split (default: counted from the data)")
    ap.add_argument("--out", default="runs/learning-curve", help="one run folder per part is made under it")
    ap.add_argument("--data-dir", default=None)
    a = ap.parse_args(argv)
    if any(not 0 < f <= 1 for f in a.fractions):
        raise SystemExit("--fractions must be in (0, 1]")
    from hcr.config import TrainConfig, load_config

    cfg = load_config(a.config)
    if not isinstance(cfg, TrainConfig):
        raise SystemExit(f"{a.config}: a character classifier recipe is needed (word/line recipes are not supported)")
    if a.data_dir:
        cfg = cfg.updated(data_dir=a.data_dir)
    full = a.full_size
    if full is None:
        from hcr.data import get_source

        src = get_source(cfg.data, cfg.data_dir, **cfg.data_options)
        full = len(src.load(cfg.train_split or src.default_train_split))
    stem = Path(a.config).stem
    points = []
    for f in sorted(set(a.fractions)):
        n = None if f == 1 else max(1, round(full * f))
        print(f"training on {f:.0%} of the training split ({n or full:,} images) ...", file=sys.stderr, flush=True)
        points.append(run_point(cfg, n, Path(a.out) / f"{stem}-{n or 'all'}", a.eval_data, a.eval_split))
    print(f"\n{stem}, evaluated on {points[-1]['evaluated_on']}\n")
    print("| trained on (images) | accuracy | case folded | look-alikes merged | training (min) |")
    print("|---:|---:|---:|---:|---:|")
    for p in points:
        cells = [f"{p[k]:.2%}" if p.get(k) is not None else "n/a" for k in METRICS]
        print(f"| {p['train_images']:,} | " + " | ".join(cells) + f" | {p['minutes']} |")
    sizes = [p["train_images"] for p in points]
    if len(set(sizes)) >= 2:
        a0, b = log_fit(sizes, [p["accuracy"] for p in points])
        print(f"\naccuracy = {a0:.4f} + {b:.4f} * log2(images): each doubling adds {b * 100:.2f} points")
        if a.target is not None:
            need = size_for(a.target, a0, b)
            print(f"the line reaches {a.target:.2%} at {need:,.0f} training images ({need / max(sizes):.1f}x the largest part)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
