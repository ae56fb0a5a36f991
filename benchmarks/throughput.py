"""Training and batched-inference throughput (images/s) of hcr models on this machine.

Runs hcr's real training step (``hcr.engine.train_epoch``: the loop ``hcr train`` uses) and
its batched inference (``hcr.predictor.batched_probs``) on 28x28 inputs, in one process, and
prints the figures. The reference is the same classic network in Keras 3 on TensorFlow,
batch 128, Adam: when TensorFlow is importable (``--keras``, e.g. from another virtual
environment via ``--keras-python``) it is measured in the same run; otherwise the figure
measured on this machine class (4,400 images/s, issue #2) is used and labelled as such.

    python benchmarks/throughput.py [--models seed-cnn hcr-cnn] [--keras-python PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from hcr.config import TrainConfig
from hcr.engine import Split, _augmenter, build_optimizer, train_epoch
from hcr.models import channels_last, count_parameters, create_model
from hcr.predictor import batched_probs

KERAS_REFERENCE_TRAIN = 4400.0  # images/s, Keras 3 + TensorFlow, batch 128, Adam, this machine class

KERAS_SCRIPT = r"""
import json, sys, time, numpy as np, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
from keras import layers
n, steps = 128 * 100, int(sys.argv[1])
x = np.random.default_rng(0).random((n, 28, 28, 1), dtype=np.float32)
y = np.random.default_rng(1).integers(0, 10, n)
m = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
    layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(), layers.Flatten(),
    layers.Dense(128, activation="relu"), layers.Dropout(0.5), layers.Dense(10)])
m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
m.fit(x[:128 * 10], y[:128 * 10], batch_size=128, epochs=1, verbose=0)  # warm-up / tracing
rates = []
for _ in range(3):
    t = time.perf_counter(); m.fit(x[:128 * steps], y[:128 * steps], batch_size=128, epochs=1, verbose=0)
    rates.append(128 * steps / (time.perf_counter() - t))
t = time.perf_counter(); m.predict(x, batch_size=512, verbose=0); inf = n / (time.perf_counter() - t)
print(json.dumps({"train": sorted(rates)[1], "infer": inf}))
"""


def _inputs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def train_rate(model_name: str, steps: int, repeats: int = 3) -> float:
    """Median images/s of hcr's training step: batch 128, Adam, no augmentation."""
    cfg = TrainConfig(model=model_name, optimizer="adam", lr=1e-3, weight_decay=0.0, schedule="constant", label_smoothing=0.0, augment="none", batch_size=128, epochs=1)
    x, y = _inputs(128 * steps)
    split = Split(x, y, x[:, 0].numpy())
    model = channels_last(create_model(model_name, 10))
    opt, sched = build_optimizer(cfg, model, steps)
    aug = _augmenter(cfg)  # None: no augmentation, as in the Keras reference
    dev = torch.device("cpu")
    gen, aug_gen = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    train_epoch(model, opt, sched, split, aug, cfg, gen, aug_gen, dev, progress=False, max_steps=10)  # warm-up
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        _, _, seen = train_epoch(model, opt, sched, split, aug, cfg, gen, aug_gen, dev, progress=False)
        rates.append(seen / (time.perf_counter() - t))
    return statistics.median(rates)


def infer_rate(model_name: str, n: int = 10240, batch: int = 512, repeats: int = 3) -> float:
    model = channels_last(create_model(model_name, 10)).eval()
    x, _ = _inputs(n, seed=2)
    batched_probs(model, x[:batch], batch_size=batch)
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        batched_probs(model, x, batch_size=batch)
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def keras_rates(python: str, steps: int) -> dict[str, float] | None:
    try:
        out = subprocess.run([python, "-c", KERAS_SCRIPT, str(steps)], capture_output=True, text=True, timeout=900, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
        print(f"(Keras reference not measured: {type(e).__name__})", file=sys.stderr)
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["seed-cnn", "hcr-cnn"])
    ap.add_argument("--steps", type=int, default=60, help="training steps of 128 images per timed repeat")
    ap.add_argument("--keras-python", help="a Python with TensorFlow + Keras 3 to measure the reference in this run")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    rows = []
    for name in args.models:
        tr, inf = train_rate(name, args.steps), infer_rate(name)
        rows.append((name, tr, inf))
        print(f"{name:10s} {count_parameters(create_model(name, 10)):>9,} params   train {tr:8.0f} img/s (batch 128, Adam)   inference {inf:8.0f} img/s (batch 512)")
    ref = None
    if args.keras_python:
        k = keras_rates(args.keras_python, args.steps)
        if k:
            ref = k["train"]
            print(f"{'keras':10s} {'':>9s}          train {k['train']:8.0f} img/s (same network, batch 128, Adam)   inference {k['infer']:8.0f} img/s  [measured in this run]")
    if ref is None:
        ref = KERAS_REFERENCE_TRAIN
        print(f"keras reference: {ref:.0f} img/s training (issue #2 figure for this machine class; pass --keras-python to measure it here)")
    seed = next((r for r in rows if r[0] == "seed-cnn"), None)
    if seed:
        ratio = seed[1] / ref
        print(f"seed-cnn training speed / Keras reference = {ratio:.2f}x  ({'OK' if ratio >= 1 else 'SLOWER'})")


if __name__ == "__main__":
    main()
