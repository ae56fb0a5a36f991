"""CPU threads of a training step (hcr.train.threads): fixed counts, and ``auto``, which
picks the fastest count by timing steps and follows the machine's load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hcr.config import TrainConfig
from hcr.errors import HcrError
from hcr.train.threads import ThreadTuner, kept_threads, thread_candidates


class FakeMachine:
    """Steps whose duration depends on the thread count: ``cost[n]`` seconds with n threads."""

    def __init__(self, cost: dict[int, float]) -> None:
        self.cost, self.now, self.threads, self.switches = dict(cost), 0.0, None, []

    def set_threads(self, n: int) -> None:
        self.threads = n
        self.switches.append(n)

    def clock(self) -> float:
        return self.now

    def run(self, tuner: ThreadTuner, steps: int) -> list[int]:
        """``steps`` steps; the thread count each ran with."""
        used = []
        for _ in range(steps):
            n = self.threads if self.threads is not None else tuner.candidates[0]
            used.append(n)
            self.now += self.cost[n]
            tuner.tick()
        return used


def tuner_on(machine: FakeMachine, candidates: tuple[int, ...] = (2, 1), rounds: int = 1, **kw: float) -> ThreadTuner:
    return ThreadTuner(candidates, set_threads=machine.set_threads, clock=machine.clock, rounds=rounds, **kw)  # type: ignore[arg-type]


def test_candidates_are_all_half_and_one() -> None:
    assert thread_candidates(8) == (8, 4, 1)
    assert thread_candidates(2) == (2, 1)
    assert thread_candidates(1) == (1,)


def test_a_loaded_machine_trains_with_the_faster_count() -> None:
    m = FakeMachine({2: 0.030, 1: 0.018})  # other work on the cores: one thread is faster
    t = tuner_on(m, probe_steps=4, hold_steps=50)
    t.begin()
    m.run(t, 12)  # the probes: 1 untimed + 4 timed steps each
    assert not t.probing and t.chosen == 1 and m.threads == 1
    assert m.run(t, 40) == [1] * 40  # held


def test_an_idle_machine_keeps_all_threads() -> None:
    m = FakeMachine({2: 0.010, 1: 0.016})
    t = tuner_on(m, probe_steps=4, hold_steps=50)
    t.begin()
    m.run(t, 12)
    assert t.chosen == 2 and m.threads == 2


def test_a_small_difference_does_not_switch() -> None:
    m = FakeMachine({2: 0.0100, 1: 0.0098})  # 2% apart: under the 5% margin
    t = tuner_on(m, probe_steps=4, hold_steps=50)
    t.begin()
    m.run(t, 12)
    assert t.chosen == 2


def test_it_measures_again_and_follows_the_load() -> None:
    m = FakeMachine({2: 0.030, 1: 0.018})
    t = tuner_on(m, probe_steps=3, hold_steps=20)
    t.begin()
    m.run(t, 10)
    assert t.chosen == 1
    m.cost = {2: 0.010, 1: 0.018}  # the other work ended
    m.run(t, 20 + 10)  # the hold, then a new probe
    assert t.chosen == 2 and m.threads == 2


def test_probes_take_turns_over_several_rounds() -> None:
    """On a shared machine the speed comes in bursts: each count is timed in several
    short turns, not in one stretch that may fall into a quiet moment."""
    m = FakeMachine({2: 0.030, 1: 0.018})
    t = tuner_on(m, probe_steps=3, rounds=3, hold_steps=100)
    t.begin()
    used = m.run(t, 1 + 3 * 2 * 4)  # the untimed first step, then 3 rounds of (settle + 3 timed) per count
    assert used == [2] + ([2] * 4 + [1] * 4) * 3
    assert not t.probing and t.chosen == 1


def test_a_count_far_behind_takes_no_more_turns() -> None:
    m = FakeMachine({2: 0.060, 1: 0.018})  # 2 threads at under a third of the speed
    t = tuner_on(m, probe_steps=3, rounds=3, hold_steps=100)
    t.begin()
    used = m.run(t, 1 + 4 * 2)  # one round: each count timed once
    assert used == [2] * 5 + [1] * 4
    assert not t.probing and t.chosen == 1  # decided after the first round
    m2 = FakeMachine({2: 0.030, 1: 0.018})  # 2 threads at 0.6 of the speed: close enough for more turns
    t2 = tuner_on(m2, probe_steps=3, rounds=3, hold_steps=100)
    t2.begin()
    m2.run(t2, 1 + 4 * 2)
    assert t2.probing


def test_time_between_epochs_is_not_a_step() -> None:
    m = FakeMachine({2: 0.010, 1: 0.016})
    t = tuner_on(m, probe_steps=3, hold_steps=50)
    t.begin()
    m.run(t, 2)  # 2 threads: one untimed step, one timed
    m.now += 60.0  # validation between epochs
    t.begin()
    m.run(t, 10)
    assert t.chosen == 2  # the 60 s pause was not counted against 2 threads


def test_bad_candidates_are_refused() -> None:
    with pytest.raises(ValueError):
        ThreadTuner([])
    with pytest.raises(ValueError):
        ThreadTuner([2, 0])


def test_for_run_sets_a_fixed_count_and_kept_threads_restores_it() -> None:
    before = torch.get_num_threads()
    with kept_threads():
        assert ThreadTuner.for_run(1, torch.device("cpu")) is None
        assert torch.get_num_threads() == 1
        assert ThreadTuner.for_run(0, torch.device("cpu")) is None  # 0: leave PyTorch's count
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_for_run_auto_tunes_on_the_cpu_only() -> None:
    with kept_threads():
        torch.set_num_threads(2)
        t = ThreadTuner.for_run("auto", torch.device("cpu"))
        assert t is not None and t.candidates == (2, 1)
        assert ThreadTuner.for_run("auto", torch.device("cuda")) is None  # not created on a GPU run
        torch.set_num_threads(1)
        assert ThreadTuner.for_run("auto", torch.device("cpu")) is None  # nothing to choose from


@pytest.mark.parametrize("value", ["auto", 0, 3, "2"])
def test_recipe_threads_accepts_auto_and_counts(value: object) -> None:
    cfg = TrainConfig.from_dict({"threads": value})
    cfg.validate()
    assert cfg.threads == ("auto" if value == "auto" else int(value))  # type: ignore[call-overload]


@pytest.mark.parametrize("value", ["fast", -1, 1.5])
def test_recipe_threads_refuses_anything_else(value: object) -> None:
    with pytest.raises(HcrError, match="threads"):
        TrainConfig.from_dict({"threads": value}).validate()


def test_a_run_with_threads_auto_records_the_count_and_restores_pytorch(tmp_path: Path) -> None:
    from hcr.train.classify import fit

    cfg = TrainConfig(data="digits", epochs=2, batch_size=32, max_train_samples=600, augment="none", threads="auto")
    with kept_threads():
        torch.set_num_threads(2)  # a choice to make, whatever this machine has
        res = fit(cfg, tmp_path / "run", progress=False, log=lambda s: None)
        assert [r["threads"] in (2, 1) for r in res.history] == [True, True]
        assert torch.get_num_threads() == 2  # the run's choices do not outlive it
    fixed = fit(cfg.updated(threads=1), tmp_path / "fixed", progress=False, log=lambda s: None)
    assert all("threads" not in r for r in fixed.history)  # a fixed count: the history is as before


def test_cli_threads_flag_reaches_the_recipe_and_bad_values_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hcr.cli import main

    code = main(["train", "--data", "digits", "--threads", "fast", "--out", str(tmp_path / "bad"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "threads must be auto, split or a whole number" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()
    with kept_threads():
        code = main(["train", "--data", "digits", "--epochs", "1", "--max-train-samples", "300", "--threads", "1", "--out", str(tmp_path / "one"), "--no-progress"])
    assert code == 0
    from hcr.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "one" / "best.pt").config["threads"] == 1


# --------------------------------------------------------------------------- threads: split


def _tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 10))


def test_split_step_gradient_is_the_whole_batch_gradient() -> None:
    from hcr.train.threads import SplitStep

    x, y = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(1)), torch.arange(10) % 10
    whole = _tiny()
    torch.nn.functional.cross_entropy(whole.eval()(x), y).backward()  # eval: the same statistics in both
    parts = _tiny().eval()
    step = SplitStep(parts, 3)  # 4, 3 and 3 images
    try:
        loss, logits = step.run(x, y, torch.nn.functional.cross_entropy, [1, 2, 3])
    finally:
        step.close()
    assert logits.shape == (10, 10) and not logits.requires_grad
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(whole(x), y), atol=1e-6)
    for a, b in zip(whole.parameters(), parts.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6)


def test_a_batch_smaller_than_the_parts_leaves_the_empty_parts_out() -> None:
    from hcr.train.threads import SplitStep

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    step = SplitStep(model, 4)
    try:
        loss, logits = step.run(torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3]), torch.nn.functional.cross_entropy, [0, 1, 2, 3])
    finally:
        step.close()
    assert logits.shape == (3, 10) and torch.isfinite(loss) and all(torch.isfinite(q.grad).all() for q in model.parameters())


def test_split_step_keeps_the_first_parts_batch_statistics() -> None:
    from hcr.train.threads import SplitStep

    model = _tiny().train()
    step = SplitStep(model, 2)
    try:
        step.run(torch.rand(8, 1, 28, 28), torch.arange(8), torch.nn.functional.cross_entropy, [0, 0])
        first = dict(step.replicas[0].named_buffers())
        for name, buf in model.named_buffers():
            assert torch.equal(buf, first[name])
            assert torch.equal(buf, dict(step.replicas[1].named_buffers())[name])
        assert model[1].num_batches_tracked.item() == 1
    finally:
        step.close()


def test_a_split_run_is_repeatable_and_learns(tmp_path: Path) -> None:
    from hcr.train.classify import fit

    cfg = TrainConfig(data="digits", epochs=4, batch_size=64, max_train_samples=800, augment="light", threads="split")
    with kept_threads():
        torch.set_num_threads(2)
        a = fit(cfg, tmp_path / "a", progress=False, log=lambda s: None)
        assert torch.get_num_threads() == 2
        b = fit(cfg, tmp_path / "b", progress=False, log=lambda s: None)
    wa, wb = (load_checkpoint_weights(r.last_path) for r in (a, b))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)  # dropout drawn per part and step: repeatable
    assert a.best_val_acc > 0.75  # as a whole-batch run of this recipe learns (0.83 measured; split 0.85)


def load_checkpoint_weights(path: Path) -> dict[str, torch.Tensor]:
    from hcr.checkpoint import load_checkpoint

    return load_checkpoint(path).state_dict


def test_split_is_refused_where_it_does_not_apply() -> None:
    from hcr.config import SequenceConfig

    with pytest.raises(HcrError, match="threads: split"):
        TrainConfig.from_dict({"threads": "split", "outliers": 0.1}).validate()
    with pytest.raises(HcrError, match="threads: split"):
        TrainConfig.from_dict({"threads": "split", "precision": "bf16"}).validate()
    with pytest.raises(HcrError, match="threads: split"):
        SequenceConfig.from_dict({"threads": "split"}).validate()
    from hcr.train.threads import SplitStep

    with pytest.raises(HcrError, match="CPU in one process"):
        SplitStep.for_run("split", _tiny(), torch.device("cpu"), distributed=True)
    with pytest.raises(HcrError, match="Dropout2d"):
        SplitStep(torch.nn.Sequential(torch.nn.Dropout2d(0.1)), 2)


def test_a_resumed_split_run_ends_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    from hcr.train.classify import fit

    cfg = TrainConfig(data="digits", epochs=3, batch_size=64, max_train_samples=400, augment="light", threads="split")

    def stop_after_epoch_2(line: str) -> None:
        if line.startswith("epoch 2/3"):
            raise KeyboardInterrupt

    with kept_threads():
        torch.set_num_threads(2)
        whole = fit(cfg, tmp_path / "a", progress=False, log=lambda s: None)
        with pytest.raises(KeyboardInterrupt):
            fit(cfg, tmp_path / "b", progress=False, log=stop_after_epoch_2)
        assert torch.get_num_threads() == 2  # restored after the interruption too
        resumed = fit(cfg, tmp_path / "b", resume=True, progress=False, log=lambda s: None)
    wa, wb = load_checkpoint_weights(whole.last_path), load_checkpoint_weights(resumed.last_path)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
