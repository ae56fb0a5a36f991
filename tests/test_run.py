"""The run-folder protocol every training loop shares (hcr.train.run.RunFolder): best and
last model files, history, early stopping, resuming, the end of the run, and the one layout
of the random streams in ``last.pt`` (with the two older layouts still read)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hcr.amp import Precision
from hcr.checkpoint import Checkpoint, load_checkpoint
from hcr.distributed import World
from hcr.errors import HcrError
from hcr.labels import LabelMap
from hcr.models import create_model
from hcr.preprocess import PreprocessSpec
from hcr.train.run import RNG_LAYOUT, Figure, RunFolder, RunRngs, upgrade_rng_state


class Loop:
    """A stand-in training loop: a small classifier whose weights change every epoch, its
    optimizer, schedule and random streams, and a scripted validation figure per epoch."""

    def __init__(self, out: Path, figure: Figure, patience: int = 0, epochs: int = 6) -> None:
        torch.manual_seed(0)
        self.model = create_model("seed-cnn", 3)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda _: 1.0)
        self.gen = torch.Generator().manual_seed(1)
        self.np_rng = np.random.default_rng(2)
        self.logs: list[str] = []
        template = Checkpoint("seed-cnn", {}, LabelMap(("a", "b", "c")), PreprocessSpec(), {}, {"epochs": epochs})
        self.run = RunFolder(out, World(), "", figure, patience=patience, epochs=epochs, template=template, log=self.logs.append)

    def start(self, last: Checkpoint | None = None) -> int:
        return self.run.start(last, self.model, self.opt, self.sched, Precision("fp32", torch.device("cpu")), RunRngs({"order": self.gen}, {"lines": self.np_rng}))

    def epoch(self, epoch: int, value: float) -> bool:
        with torch.no_grad():
            for p in self.model.parameters():
                p.add_(torch.randn(p.shape, generator=self.gen) * 0.01)
        self.np_rng.random()
        return self.run.end_epoch(epoch, {"epoch": epoch, "val_x": round(value, 2)}, value, {"note": "n"})

    def train(self, values: list[float], start: int = 1) -> list[int]:
        """Epochs ``start``.. with these figures; the epochs that improved."""
        improved = []
        for epoch, value in enumerate(values, start):
            if self.epoch(epoch, value):
                improved.append(epoch)
            if self.run.should_stop():
                break
        return improved


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_best_last_history_and_early_stopping(tmp_path: Path) -> None:
    loop = Loop(tmp_path, Figure("val_x", higher_is_better=True), patience=2)
    assert loop.start() == 1
    assert (tmp_path / "config.yaml").read_text() == "epochs: 6\n"
    best_weights = None
    improved = []
    for epoch, value in enumerate([0.5, 0.7, 0.6, 0.65, 0.9, 0.95], 1):
        if loop.epoch(epoch, value):
            improved.append(epoch)
            best_weights = _weights(loop.model)
        if loop.run.should_stop():
            break
    assert improved == [1, 2] and epoch == 4  # two epochs without improvement: stop
    assert loop.logs[-1] == "early stopping: no validation improvement for 2 epochs"
    best, last = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "last.pt")
    assert best.metrics == {"best_val_x": 0.7, "epoch": 2, "note": "n"} and best.train_state is None
    assert best_weights is not None and _same(best.state_dict, best_weights)
    assert last.metrics == {"best_val_x": 0.7, "epoch": 4, "note": "n"}
    assert _same(last.state_dict, _weights(loop.model))
    state = last.train_state
    assert state is not None and state["epoch"] == 4 and state["best_x"] == 0.7 and state["stale"] == 2
    assert state["rng"]["layout"] == RNG_LAYOUT and set(state["rng"]["torch"]) == {"order"} and set(state["rng"]["numpy"]) == {"lines"}
    assert [r["epoch"] for r in json.loads((tmp_path / "history.json").read_text())] == [1, 2, 3, 4] == [r["epoch"] for r in loop.run.history]
    assert loop.run.best == 0.7


def test_lower_is_better_and_no_patience_never_stops(tmp_path: Path) -> None:
    loop = Loop(tmp_path, Figure("val_cer", higher_is_better=False))
    loop.start()
    assert loop.train([0.9, 0.95, 0.96, 0.97, 0.5, 0.5]) == [1, 5]  # equal is no improvement
    assert len(loop.run.history) == 6 and loop.run.stale == 1
    assert load_checkpoint(tmp_path / "best.pt").metrics["best_val_cer"] == 0.5
    assert load_checkpoint(tmp_path / "last.pt").train_state["best_cer"] == 0.5  # type: ignore[index]


def test_a_resumed_run_is_the_uninterrupted_run(tmp_path: Path) -> None:
    values = [0.9, 0.8, 0.85, 0.7, 0.75, 0.6]
    whole = Loop(tmp_path / "whole", Figure("val_cer", higher_is_better=False), patience=3)
    whole.start()
    whole.train(values)

    first = Loop(tmp_path / "part", Figure("val_cer", higher_is_better=False), patience=3)
    first.start()
    first.train(values[:3])  # interrupted after epoch 3
    again = Loop(tmp_path / "part", Figure("val_cer", higher_is_better=False), patience=3)  # a fresh process: other weights, other streams
    assert again.start(load_checkpoint(tmp_path / "part" / "last.pt")) == 4
    assert again.logs == [f"resuming {tmp_path / 'part'} at epoch 4/6"]
    assert (again.run.best, again.run.stale, len(again.run.history)) == (0.8, 1, 3)
    again.train(values[3:], start=4)
    assert again.run.history == whole.run.history and again.run.best == whole.run.best
    for name in ("best.pt", "last.pt"):
        a, b = load_checkpoint(tmp_path / "whole" / name), load_checkpoint(tmp_path / "part" / name)
        assert _same(a.state_dict, b.state_dict) and a.metrics == b.metrics, name
    assert whole.gen.initial_seed() == again.gen.initial_seed() and torch.equal(whole.gen.get_state(), again.gen.get_state())
    assert whole.np_rng.random() == again.np_rng.random()


def test_finish_calibrates_the_best_model_file(tmp_path: Path) -> None:
    loop = Loop(tmp_path, Figure("val_x", higher_is_better=True))
    loop.start()
    loop.train([0.5, 0.7, 0.6])
    before = (tmp_path / "best.pt").read_bytes()
    loop.run.finish(lambda best: None)  # nothing to calibrate: the file is left alone
    assert (tmp_path / "best.pt").read_bytes() == before

    def calibrate(best: Checkpoint) -> str:
        assert best.metrics["epoch"] == 2
        best.temperature = 1.5
        best.metrics["temperature"] = 1.5
        return "calibrated"

    loop.run.finish(calibrate)
    best = load_checkpoint(tmp_path / "best.pt")
    assert best.temperature == 1.5 == best.meta.temperature and best.metrics["temperature"] == 1.5
    assert loop.logs[-1] == "calibrated"


# --------------------------------------------------------------------------- the random streams in last.pt


def _streams(seed: int) -> tuple[RunRngs, torch.Generator, torch.Generator, np.random.Generator]:
    a, b = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    n = np.random.default_rng(seed)
    return RunRngs({"order": a, "augment": b}, {"order": n}), a, b, n


def _draws(a: torch.Generator, b: torch.Generator, n: np.random.Generator) -> tuple[list[float], ...]:
    return torch.rand(3, generator=a).tolist(), torch.rand(3, generator=b).tolist(), n.random(3).tolist(), torch.rand(3).tolist()


def test_rng_state_round_trip() -> None:
    rngs, a, b, n = _streams(0)
    _draws(a, b, n)
    saved = rngs.state()
    expected = _draws(a, b, n)
    other, a2, b2, n2 = _streams(5)
    other.restore(saved)
    assert _draws(a2, b2, n2) == expected


def test_the_classifier_rng_layout_of_older_files_is_read() -> None:
    """Before the shared layout, fit wrote {"order": ..., "augment": ..., "torch": ...}."""
    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)
    old = {"order": a.get_state(), "augment": b.get_state(), "torch": torch.get_rng_state()}
    expected = (torch.rand(2, generator=a).tolist(), torch.rand(2, generator=b).tolist(), torch.rand(2).tolist())
    up = upgrade_rng_state(old)
    assert up["layout"] == RNG_LAYOUT and set(up["torch"]) == {"order", "augment"} and up["numpy"] == {}
    a2, b2 = torch.Generator(), torch.Generator()
    RunRngs({"order": a2, "augment": b2}).restore(old)
    assert (torch.rand(2, generator=a2).tolist(), torch.rand(2, generator=b2).tolist(), torch.rand(2).tolist()) == expected


def test_the_sequence_rng_layout_of_older_files_is_read() -> None:
    """Before the shared layout, fit_sequence wrote {"numpy": JSON of the state, "torch": ...}."""
    n = np.random.default_rng(7)
    old = {"numpy": json.dumps(n.bit_generator.state), "torch": torch.get_rng_state()}
    expected = (n.random(2).tolist(), torch.rand(2).tolist())
    up = upgrade_rng_state(old)
    assert up["layout"] == RNG_LAYOUT and up["torch"] == {} and set(up["numpy"]) == {"order"}
    n2 = np.random.default_rng(0)
    RunRngs(numpy_gens={"order": n2}).restore(old)
    assert (n2.random(2).tolist(), torch.rand(2).tolist()) == expected


def test_a_state_without_a_stream_is_refused() -> None:
    rngs, *_ = _streams(0)
    with pytest.raises(HcrError, match="no random state for order, augment"):
        rngs.restore({"numpy": json.dumps(np.random.default_rng(0).bit_generator.state), "torch": torch.get_rng_state()})
