"""Data-parallel training under torchrun (hcr.distributed): two gloo processes on the CPU.

The runs go through the real launcher (``python -m torch.distributed.run``, loopback
rendezvous on a free port) and the real command (``-m hcr train``) on the embedded digits.
Two hooks of :mod:`hcr.distributed` make them observable: ``HCR_SHARD_LOG`` (each rank's
training indices per epoch and its final weights' digest) and ``HCR_TEST_EXIT`` (a rank
dies at the start of an epoch, like a crashed worker).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from helpers_train import hcr_cache, one_thread, quiet  # noqa: F401  (fixtures)
from test_sequence import TEXTS, TINY, make_line_folder

from hcr.amp import Precision
from hcr.checkpoint import load_checkpoint
from hcr.config import SequenceConfig, TrainConfig
from hcr.distributed import World, _pick_backend, session, weights_digest
from hcr.errors import HcrError
from hcr.train.classify import fit

pytestmark = pytest.mark.usefixtures("hcr_cache")

#: 256 digits, 4 global batches of 64 an epoch, validated on the test split.
RECIPE: dict[str, Any] = {"data": "digits", "val_split": "test", "model": "seed-cnn", "epochs": 3, "batch_size": 64, "lr": 0.003, "augment": "light",
                          "max_train_samples": 256, "seed": 0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun(tmp: Path, recipe: dict[str, Any], out: Path, *extra: str, env: dict[str, str] | None = None, restarts: int = 0) -> subprocess.CompletedProcess[str]:
    """``torchrun --nproc-per-node 2 -m hcr train --config RECIPE --out OUT`` on loopback.

    With ``restarts`` the c10d rendezvous (a fresh round per restart; the static one given
    by ``--master-addr`` may hand a restarted worker its peer's stale address)."""
    config = tmp / f"recipe-{out.name}.yaml"
    config.write_text(yaml.safe_dump(recipe))
    port = str(_free_port())
    rdzv = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}"] if restarts else ["--master-addr", "127.0.0.1", "--master-port", port]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", *rdzv, "--max-restarts", str(restarts),
           "-m", "hcr", "train", "--config", str(config), "--out", str(out), "--no-progress", *extra]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("HCR_TEST_", "HCR_SHARD_LOG"))}
    full_env.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})})
    # its own process group: on a timeout the workers go too, not only the launcher
    with subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"torchrun did not finish in 240 s:\n{stdout[-2000:]}{stderr[-2000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _records(folder: Path, rank: int) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / f"rank{rank}.jsonl").read_text().splitlines()]


def _shards(folder: Path, rank: int) -> dict[int, set[int]]:
    """Epoch -> indices of rank ``rank`` (the last record of an epoch: a restart repeats it)."""
    return {r["epoch"]: set(r["indices"]) for r in _records(folder, rank) if "epoch" in r}


def _final_digests(folder: Path) -> list[str]:
    return [[r["final_weights"] for r in _records(folder, rank) if "final_weights" in r][-1] for rank in (0, 1)]


def _ok(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p.stdout + p.stderr


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The recipe trained by 2 processes, uninterrupted: (run folder, shard logs, output)."""
    tmp = tmp_path_factory.mktemp("ddp")
    out = _ok(torchrun(tmp, RECIPE, tmp / "run", env={"HCR_SHARD_LOG": str(tmp / "shards")}))
    return tmp / "run", tmp / "shards", out


# --------------------------------------------------------------------------- two processes


def test_ranks_see_disjoint_shards_covering_each_epoch_reshuffled(ddp_run: tuple[Path, Path, str]) -> None:
    run, shards, _ = ddp_run
    n = load_checkpoint(run / "best.pt").metrics["train_samples"]
    r0, r1 = _shards(shards, 0), _shards(shards, 1)
    assert sorted(r0) == sorted(r1) == [1, 2, 3]
    for epoch in (1, 2, 3):
        assert not r0[epoch] & r1[epoch], epoch  # different data on each rank
        assert r0[epoch] | r1[epoch] == set(range(n)), epoch  # together: the whole epoch
        assert len(r0[epoch]) == len(r1[epoch]) == n // 2
    assert r0[1] != r0[2] != r0[3]  # reshuffled every epoch


def test_saved_model_is_rank_0s_and_all_ranks_agree(ddp_run: tuple[Path, Path, str]) -> None:
    run, shards, output = ddp_run
    d0, d1 = _final_digests(shards)
    assert d0 == d1  # DDP kept the replicas identical
    last = load_checkpoint(run / "last.pt")
    assert weights_digest(last.state_dict) == d0 and last.train_state["epoch"] == 3
    assert last.train_state["world_size"] == 2
    # only rank 0 logged and wrote: one line per epoch, one summary
    assert output.count("epoch 1/3:") == 1 and output.count("best validation accuracy") == 1
    assert "2 processes (gloo)" in output
    hist = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in hist] == [1, 2, 3]
    assert TrainConfig.from_dict(yaml.safe_load((run / "config.yaml").read_text())) == TrainConfig(**RECIPE)


def test_resume_after_a_killed_rank_continues_from_the_last_complete_epoch(ddp_run: tuple[Path, Path, str], tmp_path: Path) -> None:
    run = tmp_path / "run"
    died = torchrun(tmp_path, RECIPE, run, env={"HCR_TEST_EXIT": "1:2"})  # rank 1 dies starting epoch 2
    assert died.returncode != 0
    assert load_checkpoint(run / "last.pt").train_state["epoch"] == 1  # complete, readable
    out = _ok(torchrun(tmp_path, RECIPE, run, "--resume"))
    assert "at epoch 2/3" in out and "epoch 1/3:" not in out
    assert [r["epoch"] for r in json.loads((run / "history.json").read_text())] == [1, 2, 3]
    # every rank's randomness is reseeded per epoch: the resumed run is the uninterrupted one
    assert weights_digest(load_checkpoint(run / "last.pt").state_dict) == weights_digest(load_checkpoint(ddp_run[0] / "last.pt").state_dict)


def test_a_torchrun_restart_continues_by_itself(ddp_run: tuple[Path, Path, str], tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = _ok(torchrun(tmp_path, RECIPE, run, env={"HCR_TEST_EXIT": "1:2"}, restarts=1))
    assert "torchrun restart 1: continuing from" in out and "at epoch 2/3" in out
    assert weights_digest(load_checkpoint(run / "last.pt").state_dict) == weights_digest(load_checkpoint(ddp_run[0] / "last.pt").state_dict)


def test_crnn_trains_on_two_processes(tmp_path: Path) -> None:
    folder = make_line_folder(tmp_path / "lines", TEXTS)
    recipe = {"task": "sequence", "data": [f"lines:{folder}"], "model_kwargs": TINY, "epochs": 2, "batch_size": 4, "lr": 3e-3, "val_fraction": 0.25, "device": "cpu", "seed": 0}
    out = _ok(torchrun(tmp_path, recipe, tmp_path / "run", env={"HCR_SHARD_LOG": str(tmp_path / "shards")}))
    assert out.count("best validation CER") == 1
    r0, r1 = _shards(tmp_path / "shards", 0), _shards(tmp_path / "shards", 1)
    n = load_checkpoint(tmp_path / "run" / "best.pt").metrics["train_lines"]
    for epoch in (1, 2):
        assert not r0[epoch] & r1[epoch] and r0[epoch] | r1[epoch] == set(range(n))
    d0, d1 = _final_digests(tmp_path / "shards")
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert d0 == d1 == weights_digest(last.state_dict) and last.task == "sequence"
    assert SequenceConfig.from_dict(yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())).epochs == 2


# --------------------------------------------------------------------------- in one process


def test_a_global_batch_is_split_into_weighted_shards() -> None:
    batch = torch.arange(10)
    parts = [World(r, 4).shard(batch) for r in range(4)]
    assert [p.tolist() for p in parts] == [[0, 4, 8], [1, 5, 9], [2, 6], [3, 7]]
    # the weights make DDP's average of the ranks' mean losses the global batch's mean
    averaged = sum(World(r, 4).loss_weight(10) * p.float().mean() for r, p in enumerate(parts)) / 4
    assert float(averaged) == pytest.approx(float(batch.float().mean()))
    assert [World(r, 4).loss_weight(10) for r in range(4)] == [1.2, 1.2, 0.8, 0.8]
    # a batch shorter than the world: the last ranks get one weightless filler item
    assert World(3, 4).shard(torch.arange(2)).tolist() == [0] and World(3, 4).loss_weight(2) == 0.0
    assert World().shard(batch) is batch and World().loss_weight(10) == 1.0


def test_sizes_backend_and_precision_errors_are_one_line() -> None:
    with pytest.raises(HcrError, match="2 processes but only 1 training samples"):
        World(0, 2).check_sizes(1, 64)
    with pytest.raises(HcrError, match="batch_size 2 is the global batch"):
        World(0, 4).check_sizes(100, 2)
    with pytest.raises(HcrError, match="nccl backend needs a CUDA GPU"):
        _pick_backend("nccl", torch.device("cpu"))
    assert _pick_backend("auto", torch.device("cpu")) == "gloo"
    with pytest.raises(HcrError, match="fp16 needs a CUDA GPU"):
        Precision("fp16", torch.device("cpu"))
    with pytest.raises(HcrError, match="precision must be one of"):
        TrainConfig(precision="fp8").validate()
    with pytest.raises(HcrError, match="loader_workers"):
        SequenceConfig(loader_workers=-1).validate()
    with pytest.raises(HcrError, match="distributed backend"), session("cpu", "mpi"):
        pass


def test_outside_torchrun_a_world_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    with session("cpu") as (world, device):
        assert world == World() and not world.active and world.is_main and device == torch.device("cpu")


def test_loader_workers_give_the_same_run_whatever_their_number(tmp_path: Path) -> None:
    """Batches built in worker processes draw their augmentation from the batch's own seed."""
    cfg = dict(RECIPE, epochs=1, max_train_samples=192)
    with one_thread():
        fit(TrainConfig(**cfg, loader_workers=1), tmp_path / "w1", progress=False, log=quiet)
        fit(TrainConfig(**cfg, loader_workers=2), tmp_path / "w2", progress=False, log=quiet)
    a, b = (weights_digest(load_checkpoint(tmp_path / w / "last.pt").state_dict) for w in ("w1", "w2"))
    assert a == b


def test_bf16_autocast_trains_on_the_cpu(tmp_path: Path) -> None:
    with one_thread():
        res = fit(TrainConfig(**dict(RECIPE, epochs=1, max_train_samples=128), precision="bf16"), tmp_path, progress=False, log=quiet)
    ck = load_checkpoint(res.last_path)
    assert all(v.dtype == torch.float32 for v in ck.state_dict.values() if v.is_floating_point())  # weights stay fp32
    assert res.history[0]["train_loss"] > 0


def test_python_dash_m_hcr_runs_the_cli() -> None:
    p = subprocess.run([sys.executable, "-m", "hcr", "--version"], capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0 and p.stdout.startswith("hcr ")
