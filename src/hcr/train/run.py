"""The run folder every training loop shares (:mod:`hcr.train.classify`, :mod:`hcr.train.sequence`):

``best.pt``       the best model so far (by the loop's validation figure), ready to read with
``last.pt``       the latest epoch plus optimizer/scheduler/RNG state, for ``--resume``
``history.csv``   one row per epoch (also ``history.json``) and ``learning_curve.png``
``config.yaml``   the resolved recipe

and what both loops start from: the seeds (:func:`seed_everything`) and the learning-rate
schedule of a recipe (:func:`scheduler`). Resuming, snapshots and early stopping under
``torchrun`` are :mod:`hcr.distributed`'s.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import SequenceConfig, TrainConfig
from ..modelfile import write_atomic


@dataclass
class RunResult:
    """What a finished run left in its folder: the best and last model files and the history."""

    best_path: Path
    last_path: Path
    history: list[dict[str, Any]]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def scheduler(cfg: TrainConfig | SequenceConfig, opt: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-step learning-rate schedule of ``cfg.schedule`` (onecycle, cosine or constant) over ``steps``."""
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.15, div_factor=20, final_div_factor=200)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=cfg.lr * 0.01)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def write_history(out: Path, history: list[dict[str, Any]]) -> None:
    """``history.json``, ``history.csv`` and ``learning_curve.png`` of a run's epochs so far."""
    from ..report import plot_history

    write_atomic(out / "history.json", json.dumps(history, indent=1))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(history[0]))
    w.writeheader()
    w.writerows(history)
    write_atomic(out / "history.csv", buf.getvalue())
    plot_history(history, out / "learning_curve.png")


__all__ = ["RunResult", "scheduler", "seed_everything", "write_history"]
