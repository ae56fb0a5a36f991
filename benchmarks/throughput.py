"""Training and batched-inference throughput (images/s) of hcr models on this machine.

Runs hcr's real training step (``hcr.train.classify.train_epoch``: the loop ``hcr train`` uses) and
its batched inference (``hcr.runtime.torch.batched_probs``) on 28x28 inputs, in one process, and
prints the figures. The reference is the same classic network in Keras 3 on TensorFlow,
batch 128, Adam: when TensorFlow is importable (``--keras``, e.g. from another virtual
environment via ``--keras-python``) it is measured in the same run; otherwise the figure
measured on this machine class (4,400 images/s, issue #2) is used and labelled as such.

Everything is measured twice: on an idle machine, then under a parallel load the script
starts itself (``--load N`` processes spinning on the CPU, default one per core), which is
what a shared machine looks like. hcr's training is measured with PyTorch's thread count
(one per core, what ``hcr train`` uses by default), with ``threads: auto`` (the count
picked by timing the steps) and with ``threads: split`` (each batch cut between threads of
one thread per operation; :mod:`hcr.train.threads`).

    python benchmarks/throughput.py [--models seed-cnn hcr-cnn] [--keras-python PATH] [--load N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import torch

import hcr  # noqa: F401  (before torch, as `hcr train` does: its OpenMP wait policy)
from hcr.config import TrainConfig
from hcr.models import channels_last, count_parameters, create_model
from hcr.runtime.torch import batched_probs
from hcr.train.classify import Split, _augmenter, build_optimizer, train_epoch
from hcr.train.threads import AUTO, SPLIT, SplitStep, ThreadTuner, kept_threads

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


def train_rate(model_name: str, steps: int, repeats: int = 3, threads: int | str = 0) -> float:
    """Median images/s of hcr's training step: batch 128, Adam, no augmentation; ``threads``
    as in a recipe (0: PyTorch's count, one per core; ``auto``: :class:`ThreadTuner`)."""
    cfg = TrainConfig(model=model_name, optimizer="adam", lr=1e-3, weight_decay=0.0, schedule="constant", label_smoothing=0.0, augment="none", batch_size=128, epochs=1)
    x, y = _inputs(128 * steps)
    split = Split(x, y, x[:, 0].numpy())
    model = channels_last(create_model(model_name, 10))
    opt, sched = build_optimizer(cfg, model, steps)
    aug = _augmenter(cfg)  # None: no augmentation, as in the Keras reference
    dev = torch.device("cpu")
    gen, aug_gen = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    with kept_threads():
        tuner = ThreadTuner.for_run(threads, dev)
        parts = SplitStep.for_run(threads, model, dev, distributed=False)
        train_epoch(model, opt, sched, split, aug, cfg, gen, aug_gen, dev, progress=False, max_steps=10, tuner=tuner, split=parts)  # warm-up
        while tuner is not None and tuner.probing:  # a run's first probe: its first seconds, not timed
            train_epoch(model, opt, sched, split, aug, cfg, gen, aug_gen, dev, progress=False, max_steps=10, tuner=tuner)
        # with a tuner, each timed repeat spans a whole cycle (the steps it holds a count, then a probe),
        # so the figure carries the probes' cost as a long run does
        cycle = 0 if tuner is None else math.ceil((tuner.hold_steps + tuner.rounds * len(tuner.candidates) * (tuner.probe_steps + 1)) / steps)
        rates = []
        for _ in range(repeats):
            t, seen = time.perf_counter(), 0
            for _ in range(max(1, cycle)):
                seen += train_epoch(model, opt, sched, split, aug, cfg, gen, aug_gen, dev, progress=False, tuner=tuner, split=parts)[2]
            rates.append(seen / (time.perf_counter() - t))
        if parts is not None:
            parts.close()
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
        # TensorFlow in its own default environment, not hcr's OpenMP wait policy
        env = {k: v for k, v in os.environ.items() if not (k == "GOMP_SPINCOUNT" and hcr.OMP_POLICY_SET_BY_HCR)}
        out = subprocess.run([python, "-c", KERAS_SCRIPT, str(steps)], capture_output=True, text=True, timeout=900, check=True, env=env)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
        print(f"(Keras reference not measured: {type(e).__name__})", file=sys.stderr)
        return None


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def cpu_load(processes: int) -> Iterator[None]:
    """``processes`` processes spinning on the CPU for the duration of the block."""
    procs = [mp.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(processes)]
    for p in procs:
        p.start()
    try:
        time.sleep(0.5)
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()


Row = tuple[str, float, float, float, float]  # model, training images/s (fixed threads, threads: auto, threads: split), inference images/s


def measure(models: list[str], steps: int, keras_python: str | None) -> tuple[list[Row], dict[str, float] | None]:
    rows = [(name, train_rate(name, steps), train_rate(name, steps, threads=AUTO), train_rate(name, steps, threads=SPLIT), infer_rate(name)) for name in models]
    return rows, keras_rates(keras_python, steps) if keras_python else None


def report(label: str, rows: list[Row], keras: dict[str, float] | None) -> None:
    print(f"-- {label}")
    for name, tr, tr_auto, tr_split, inf in rows:
        print(f"{name:10s} {count_parameters(create_model(name, 10)):>9,} params   train {tr:8.0f} img/s (batch 128, Adam; threads: auto {tr_auto:6.0f}, split {tr_split:6.0f})   "
              f"inference {inf:8.0f} img/s (batch 512)")
    if keras:
        print(f"{'keras':10s} {'':>9s}          train {keras['train']:8.0f} img/s (same network, batch 128, Adam)   inference {keras['infer']:8.0f} img/s  [measured in this run]")
    ref = keras["train"] if keras else KERAS_REFERENCE_TRAIN
    if not keras:
        print(f"keras reference: {ref:.0f} img/s training (issue #2 figure for this machine class, idle; pass --keras-python to measure it here)")
    seed = next((r for r in rows if r[0] == "seed-cnn"), None)
    if seed:
        for how, rate in ((f"{torch.get_num_threads()} threads", seed[1]), ("threads: auto", seed[2]), ("threads: split", seed[3])):
            ratio = rate / ref
            print(f"{label}: seed-cnn training speed ({how}) / Keras = {ratio:.2f}x  ({'OK' if ratio >= 1 else 'SLOWER'})")


def _has_keras() -> bool:
    import importlib.util

    return importlib.util.find_spec("keras") is not None and importlib.util.find_spec("tensorflow") is not None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["seed-cnn", "hcr-cnn"])
    ap.add_argument("--steps", type=int, default=60, help="training steps of 128 images per timed repeat")
    ap.add_argument("--keras-python", help="a Python with TensorFlow + Keras 3 to measure the reference in this run (default: this one, when it has them)")
    ap.add_argument("--load", type=int, default=os.cpu_count() or 2, help="processes spinning on the CPU for the loaded measurement (0: idle only)")
    args = ap.parse_args()
    keras_python = args.keras_python or (sys.executable if _has_keras() else None)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    report("idle", *measure(args.models, args.steps, keras_python))
    if args.load > 0:
        with cpu_load(args.load):
            report(f"under load ({args.load} spinning processes)", *measure(args.models, args.steps, keras_python))


if __name__ == "__main__":
    main()
