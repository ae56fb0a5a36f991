"""Shared, once-per-session state for the engine / predictor / CLI tests.

* ``hcr_cache``: points ``XDG_CACHE_HOME`` (where :func:`hcr.train.classify.prepare` caches
  preprocessed arrays) at a temporary folder, so tests never touch the real user cache.
* ``digits_model``: ``seed-cnn`` trained briefly on the embedded ``digits`` data (~10 s),
  trained once per session.

Import the fixtures into a test module (``from helpers_train import digits_model``).
A fixture imported into several modules gets one definition per module, so the results
are memoised here at module level: the model is trained once per session whichever module
asks first.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

_STATE: dict[str, Any] = {}

#: The session model's recipe (a short version of configs/demo.yaml).
DIGITS_RECIPE = dict(data="digits", val_split="test", model="seed-cnn", epochs=8, batch_size=64, lr=0.003, augment="light", seed=0)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread: the test machine's 2 cores are shared with other
    work, and an oversubscribed OpenMP pool is many times slower than one thread."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """:func:`one_thread` for a whole module: ``from helpers_train import single_thread`` and
    ``pytestmark = pytest.mark.usefixtures("single_thread")``. (Higher-scoped fixtures are
    set up before it, so fixtures that train use :func:`one_thread` themselves.)"""
    with one_thread():
        yield


def quiet(_: str) -> None:
    """A ``log`` callback for :func:`hcr.train.classify.fit` that prints nothing."""


def _isolate_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "cache" not in _STATE:
        d = tmp_path_factory.mktemp("xdg-cache")
        mp = pytest.MonkeyPatch()
        mp.setenv("XDG_CACHE_HOME", str(d))
        _STATE["cache"], _STATE["cache_mp"] = d, mp
    return _STATE["cache"]


def _restore_cache_env() -> None:
    mp = _STATE.pop("cache_mp", None)
    if mp is not None:
        mp.undo()
    _STATE.pop("cache", None)


@pytest.fixture(scope="session")
def hcr_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temporary ``XDG_CACHE_HOME`` for the whole session (restored at the end)."""
    d = _isolate_cache(tmp_path_factory)
    yield d
    _restore_cache_env()


@dataclass
class TrainedModel:
    out: Path  # run folder
    best: Path  # best.pt
    history: list[dict[str, Any]]
    best_val_acc: float


@pytest.fixture(scope="session")
def digits_model(hcr_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """seed-cnn trained on digits (train split, validated on the test split); trained once."""
    if "digits_model" not in _STATE:
        from hcr.config import TrainConfig
        from hcr.train.classify import fit

        out = tmp_path_factory.mktemp("digits-seed-cnn")
        with one_thread():
            res = fit(TrainConfig(**DIGITS_RECIPE), out, progress=False, log=quiet)
        _STATE["digits_model"] = TrainedModel(out, res.best_path, res.history, res.best_val_acc)
    return _STATE["digits_model"]


def digits_test_split() -> tuple[np.ndarray, np.ndarray]:
    """Raw images (N, 32, 32) uint8, ink bright, and targets of the digits *test* split."""
    if "digits_test" not in _STATE:
        from hcr.data.digits import DigitsSource

        s = DigitsSource().load("test")
        _STATE["digits_test"] = (s.images, s.targets)
    return _STATE["digits_test"]
