"""The run folder every training loop shares (:mod:`hcr.train.classify`, :mod:`hcr.train.sequence`),
and the protocol that keeps it (:class:`RunFolder`):

``best.pt``       the best model so far (by the loop's validation figure), calibrated at the end
``last.pt``       the latest epoch plus optimizer/scheduler/RNG state, for ``--resume``
``history.csv``   one row per epoch (also ``history.json``) and ``learning_curve.png``
``config.yaml``   the resolved recipe

:class:`RunFolder` restores an interrupted run from ``last.pt``, keeps the best figure and
the epochs without improvement, writes the files after every epoch, decides early stopping
and ends the run (calibrating the best model). :class:`RunRngs` is the one way a loop's
random streams are stored in ``last.pt`` and restored (older layouts read too:
:func:`upgrade_rng_state`). Also here: what both loops start from, the seeds
(:func:`seed_everything`) and the learning-rate schedule of a recipe (:func:`scheduler`).
Under ``torchrun``, deciding which ``last.pt`` to resume from (:func:`hcr.distributed.resume_point`),
the job token and the collective operations are :mod:`hcr.distributed`'s.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import yaml
from torch import nn

from ..checkpoint import Checkpoint, current_versions, load_checkpoint, save_checkpoint
from ..config import SequenceConfig, TrainConfig
from ..distributed import World, extra_train_state
from ..errors import HcrError
from ..modelfile import write_atomic

if TYPE_CHECKING:
    from ..amp import Precision


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


# --------------------------------------------------------------------------- random streams

#: The layout of ``train_state["rng"]`` that :meth:`RunRngs.state` writes.
RNG_LAYOUT = 2


@dataclass
class RunRngs:
    """The random streams a loop carries across an interruption: named torch generators,
    named numpy generators and, always, torch's global RNG (dropout, initialisations).

    In ``last.pt`` (``train_state["rng"]``) they are
    ``{"layout": 2, "torch": {name: state tensor}, "numpy": {name: JSON of the bit
    generator's state}, "global": torch's global state}``.
    """

    torch_gens: dict[str, torch.Generator] = field(default_factory=dict)
    numpy_gens: dict[str, np.random.Generator] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        """The current state of every stream, in the :data:`RNG_LAYOUT` layout."""
        return {
            "layout": RNG_LAYOUT,
            "torch": {name: g.get_state().cpu() for name, g in self.torch_gens.items()},
            "numpy": {name: json.dumps(g.bit_generator.state) for name, g in self.numpy_gens.items()},
            "global": torch.get_rng_state(),
        }

    def restore(self, saved: dict[str, Any]) -> None:
        """Put every stream back where ``saved`` (any layout :func:`upgrade_rng_state` reads) left it."""
        rng = upgrade_rng_state(saved)
        missing = [n for n in self.torch_gens if n not in rng["torch"]] + [n for n in self.numpy_gens if n not in rng["numpy"]]
        if missing:
            raise HcrError(f"the saved training state has no random state for {', '.join(missing)}: it was written by another kind of run")
        for name, g in self.torch_gens.items():
            g.set_state(rng["torch"][name])
        for name, n in self.numpy_gens.items():
            n.bit_generator.state = json.loads(rng["numpy"][name])
        torch.set_rng_state(rng["global"])


def upgrade_rng_state(saved: dict[str, Any]) -> dict[str, Any]:
    """``train_state["rng"]`` of a ``last.pt`` in the :data:`RNG_LAYOUT` layout. Files written
    before it had one layout per loop, still read: the classifier's ``{"order": generator
    state, "augment": generator state, "torch": global state}`` (its torch generators
    ``order`` and ``augment``) and the sequence loop's ``{"numpy": JSON, "torch": global
    state}`` (its one numpy generator, now named ``order``)."""
    if saved.get("layout") == RNG_LAYOUT:
        return saved
    if isinstance(saved.get("numpy"), str):  # sequence loop, before the shared layout
        return {"layout": RNG_LAYOUT, "torch": {}, "numpy": {"order": saved["numpy"]}, "global": saved["torch"]}
    return {"layout": RNG_LAYOUT, "torch": {k: v for k, v in saved.items() if k != "torch"}, "numpy": {}, "global": saved["torch"]}


# --------------------------------------------------------------------------- the protocol


@dataclass(frozen=True)
class Figure:
    """The validation figure a run tracks: a column of its history (``val_acc``, ``val_cer``)
    and whether higher is better. The best model is the one with the best figure; the model
    files store it as ``best_<name>`` (``best_val_acc``) in their metrics."""

    name: str
    higher_is_better: bool

    def better(self, value: float, than: float) -> bool:
        return value > than if self.higher_is_better else value < than

    @property
    def worst(self) -> float:
        """Where the best starts: any figure is better (NaN is not)."""
        return -math.inf if self.higher_is_better else math.inf

    @property
    def state_key(self) -> str:
        """Its key in ``last.pt``'s training state: ``best_acc`` for ``val_acc``."""
        return "best_" + self.name.removeprefix("val_")


class RunFolder:
    """One training run's folder, kept the same way by every loop.

    ``template`` is the model file the run writes, without weights or metrics (model name
    and arguments, classes, preprocessing, recipe as ``config``, task); the weights come
    from the model given to :meth:`start`. Only rank 0 of ``world`` writes; every rank keeps
    the same history, best figure and count of epochs without improvement, so the early
    stopping decision (rank 0's, broadcast) and the result are the same everywhere.

    A loop calls :meth:`start` once (restore an interrupted run, write ``config.yaml``),
    :meth:`end_epoch` after validating each epoch, :meth:`should_stop` after that, and
    :meth:`finish` after the last epoch.
    """

    def __init__(self, out: Path, world: World, job: str, figure: Figure, *, patience: int, epochs: int, template: Checkpoint, log: Callable[[str], None]) -> None:
        self.out, self.world, self.job, self.figure = out, world, job, figure
        self.patience, self.epochs, self.template, self.log = patience, epochs, template, log
        self.best_path, self.last_path = out / "best.pt", out / "last.pt"
        self.history: list[dict[str, Any]] = []
        self.best = figure.worst
        self.stale = 0  # epochs since the best one
        self._model: nn.Module | None = None
        self._opt: torch.optim.Optimizer | None = None
        self._sched: torch.optim.lr_scheduler.LRScheduler | None = None
        self._precision: Precision | None = None
        self._rngs = RunRngs()

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            raise RuntimeError("RunFolder.start() was not called")
        return self._model

    def start(self, last: Checkpoint | None, model: nn.Module, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler, precision: Precision, rngs: RunRngs) -> int:
        """Take what trains (the unwrapped ``model``, saved and validated; its optimizer,
        schedule, precision and random streams), restore all of it and the history from
        ``last`` (the interrupted run's ``last.pt``, see :func:`hcr.distributed.resume_point`;
        None: a fresh run), write ``config.yaml`` on rank 0, and return the first epoch to train."""
        self._model, self._opt, self._sched, self._precision, self._rngs = model, opt, sched, precision, rngs
        start = 1
        if last is not None and last.train_state is not None:
            state = last.train_state
            model.load_state_dict(last.state_dict)
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            rngs.restore(state["rng"])
            precision.load_state_dict(state.get("scaler"))
            self.history, self.best, self.stale = list(state["history"]), float(state[self.figure.state_key]), int(state["stale"])
            start = int(state["epoch"]) + 1
            self.log(f"resuming {self.out} at epoch {start}/{self.epochs}")
        if self.world.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(yaml.safe_dump(self.template.config, sort_keys=False, allow_unicode=True))
        return start

    def snapshot(self, metrics: dict[str, Any], train_state: dict[str, Any] | None = None) -> Checkpoint:
        """The model file of the model as it is now."""
        weights = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        return dataclasses.replace(self.template, state_dict=weights, metrics=metrics, versions=current_versions(), train_state=train_state)

    def end_epoch(self, epoch: int, row: dict[str, Any], value: float, metrics: dict[str, Any]) -> bool:
        """Record an epoch: ``row`` joins the history, ``value`` is its validation figure
        (``row`` may hold it rounded) and ``metrics`` what the model files add to the best
        figure and the epoch. Rank 0 saves ``best.pt`` when the epoch improved on the best,
        then ``last.pt`` (with the state to resume) and the history. Returns whether it improved."""
        self.history.append(row)
        improved = self.figure.better(value, self.best)
        if improved:
            self.best, self.stale = value, 0
        else:
            self.stale += 1
        if self.world.is_main:
            metrics = {f"best_{self.figure.name}": self.best, "epoch": epoch, **metrics}
            if improved:
                save_checkpoint(self.snapshot(metrics), self.best_path)
            save_checkpoint(self.snapshot(metrics, self._train_state(epoch)), self.last_path)
            write_history(self.out, self.history)
        return improved

    def _train_state(self, epoch: int) -> dict[str, Any]:
        assert self._opt is not None and self._sched is not None and self._precision is not None
        return {
            "epoch": epoch,
            "optimizer": self._opt.state_dict(),
            "scheduler": self._sched.state_dict(),
            "rng": self._rngs.state(),
            "history": self.history,
            self.figure.state_key: self.best,
            "stale": self.stale,
            **extra_train_state(self._precision, self.world, self.job),
        }

    def should_stop(self) -> bool:
        """Early stopping after ``patience`` epochs without improvement (rank 0's decision,
        the same on every rank; ``patience`` 0: never); logged when it stops."""
        if self.world.should_stop(self.patience, self.stale):
            self.log(f"early stopping: no validation improvement for {self.stale} epochs")
            return True
        return False

    def finish(self, calibrate: Callable[[Checkpoint], str | None] | None = None) -> None:
        """The end of the run: the final weights recorded for the test hook, then on rank 0
        ``calibrate(best)`` on the best model file (it sets the temperature and metrics and
        returns a line to log; None: nothing changed), saved in place; then every rank waits
        for rank 0."""
        self.world.record_weights(self.model)
        if self.world.is_main and calibrate is not None:
            best = load_checkpoint(self.best_path)
            note = calibrate(best)
            if note is not None:
                save_checkpoint(best, self.best_path)
                self.log(note)
        self.world.barrier()


__all__ = ["RNG_LAYOUT", "Figure", "RunFolder", "RunResult", "RunRngs", "scheduler", "seed_everything", "upgrade_rng_state", "write_history"]
