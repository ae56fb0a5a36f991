"""Data-parallel training over several processes or machines (``torchrun``), shared by
:func:`hcr.train.classify.fit` and :func:`hcr.train.sequence.fit_sequence`.

Run ``torchrun --nproc-per-node N -m hcr train --config ...``: torchrun starts N copies of
the command with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and the rendezvous address) in
their environment; :func:`session` sees them, joins the process group (NCCL when the
processes train on GPUs, gloo on CPU) and gives every loop a :class:`World`. Without
those variables it is a :class:`World` of one process and nothing changes: a run outside
torchrun is bit for bit the run it always was.

The rules every loop follows (see ``docs/scale.md``):

* The recipe's ``batch_size`` is the *global* batch. All ranks draw the same shuffled order
  (same seed, reshuffled every epoch), cut it into the same global batches and each trains
  on its own stride of every batch (:meth:`World.shard`), like ``DistributedSampler``:
  disjoint shards, the same number of steps everywhere. The loss of a rank is weighted
  by its share of the batch (:meth:`World.loss_weight`), so the gradient
  ``DistributedDataParallel`` averages is the mean over the global batch: same learning
  rate, same schedule as one process.
* Randomness that must agree (the order, rendered-copy swaps, outlier picks) comes from
  generators seeded alike on every rank; randomness that must differ (augmentation,
  dropout) is reseeded per rank and epoch (:func:`rank_seed`), so an interrupted run
  resumes deterministically.
* Only rank 0 validates, logs, shows progress and writes files; its verdict (the
  validation row, the stop decision) is broadcast (:meth:`World.broadcast`), so every rank
  stops at the same epoch.
* On resume rank 0 reads ``last.pt`` and broadcasts it: the other machines need no copy.

Two hooks, enabled by environment variables, make the behaviour testable:
``HCR_SHARD_LOG=DIR`` makes every rank append the training sample indices it sees, per
epoch, to ``DIR/rank<R>.jsonl``; ``HCR_TEST_EXIT=RANK:EPOCH`` makes that rank exit with
status 17 when it starts that epoch (first attempt only; torchrun's restarts run clean).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch import nn

from .errors import HcrError
from .modelfile import write_atomic

if TYPE_CHECKING:
    from .amp import Precision
    from .checkpoint import Checkpoint

T = TypeVar("T")
U = TypeVar("U")

#: Set by the test hook: the exit status of a rank told to die.
TEST_EXIT_STATUS = 17
BACKENDS = ("auto", "gloo", "nccl")

__all__ = ["BACKENDS", "JOB_FILE", "World", "batch_stream", "extra_train_state", "rank_seed", "resume_point", "session", "torchrun_env", "weights_digest"]


def torchrun_env() -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` from the environment torchrun sets, or None
    outside torchrun (or in a world of one)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise HcrError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (are they set by torchrun?)") from None
    if world <= 1:
        return None
    if not 0 <= rank < world:
        raise HcrError(f"RANK {rank} is outside WORLD_SIZE {world}")
    return rank, world, local


def rank_seed(seed: int, rank: int, epoch: int, step: int = -1) -> int:
    """A 63-bit seed for what must differ between ranks (and epochs, and batches)."""
    return int(np.random.SeedSequence([seed, rank, epoch, step + 1, 0x6863]).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


@dataclass(frozen=True)
class World:
    """The processes training together; ``World()`` is one process on its own."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # "gloo" / "nccl" when a process group is used
    elastic: bool = False  # started by torchrun (its agent restarts the workers after a failure)
    restarts: int = 0  # torchrun's TORCHELASTIC_RESTART_COUNT: > 0 after a worker failed

    @property
    def active(self) -> bool:
        """More than one process: the collective operations below do something."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that validates, logs and writes files."""
        return self.rank == 0

    def describe(self) -> str:
        return f"{self.world_size} processes ({self.backend})" if self.active else "1 process"

    # ---------------------------------------------------------------- data

    def check_sizes(self, n_train: int, batch_size: int, what: str = "training samples") -> None:
        """One-line errors for a world too large for the data or the global batch."""
        if not self.active:
            return
        if n_train < self.world_size:
            raise HcrError(f"{self.world_size} processes but only {n_train} {what}: every process needs at least one")
        if batch_size < self.world_size:
            raise HcrError(f"batch_size {batch_size} is the global batch, split across the {self.world_size} processes: make it at least {self.world_size}")

    def shard(self, batch: T) -> T:
        """This rank's part of a global batch (a tensor, array or list): every
        ``world_size``-th item from ``rank`` on. A batch shorter than the world leaves the
        last ranks one item (of weight 0, see :meth:`loss_weight`) so that every rank steps."""
        if not self.active:
            return batch
        part = batch[self.rank :: self.world_size]  # type: ignore[index]
        return part if len(part) else batch[:1]  # type: ignore[index,no-any-return,arg-type]

    def shard_size(self, n_global: int) -> int:
        """How many items of a global batch of ``n_global`` are really this rank's."""
        return len(range(self.rank, n_global, self.world_size))

    def loss_weight(self, n_global: int) -> float:
        """The factor on this rank's mean loss that makes the averaged gradient the mean
        over the global batch (1.0 in a world of one)."""
        if not self.active:
            return 1.0
        return self.shard_size(n_global) * self.world_size / n_global

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` in ``DistributedDataParallel`` (gradients averaged in ``backward``);
        the model itself in a world of one. Checkpoints use the unwrapped model."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    # ---------------------------------------------------------------- collectives

    def all_sum(self, values: Sequence[float], device: torch.device) -> list[float]:
        """Element-wise sums over all ranks (float64; the same result on every rank)."""
        if not self.active:
            return [float(v) for v in values]
        import torch.distributed as dist

        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self._comm_device(device))
        dist.all_reduce(t)
        return [float(v) for v in t.cpu()]

    def broadcast(self, obj: T, device: torch.device | None = None) -> T:
        """Rank 0's ``obj`` on every rank (any picklable value: a row of metrics, a flag)."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box: list[Any] = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self._comm_device(device) if device is not None else None)
        return box[0]  # type: ignore[no-any-return]

    def from_main(self, fn: Callable[[], T], device: torch.device | None = None) -> T:
        """``fn()`` computed on rank 0 only and broadcast to the others; an
        :class:`~hcr.errors.HcrError` there is raised on every rank."""
        if not self.active:
            return fn()
        outcome: tuple[bool, Any] = (True, None)
        if self.is_main:
            try:
                outcome = (True, fn())
            except HcrError as e:
                outcome = (False, e)
        ok, value = self.broadcast(outcome, device)
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def should_stop(self, patience: int, stale: int) -> bool:
        """Early stopping: rank 0's decision, the same on every rank."""
        return bool(self.broadcast(bool(patience) and stale >= patience))

    def reseed(self, seed: int, epoch: int, generator: torch.Generator | None = None) -> np.random.Generator | None:
        """In a world of several: reseed torch's global RNG (dropout) and ``generator``
        (augmentation) for this rank and epoch, and return a numpy generator seeded alike;
        in a world of one: nothing (the one-process run keeps its RNG streams) and None."""
        if not self.active:
            return None
        s = rank_seed(seed, self.rank, epoch)
        torch.manual_seed(s)
        if generator is not None:
            generator.manual_seed(s)
        return np.random.default_rng(s)

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (batch-norm running statistics) on every rank. DDP sends them
        before each forward pass, so after an epoch's last step the replicas differ only
        there; synced, every rank holds exactly the model rank 0 saves."""
        if not self.active:
            return
        import torch.distributed as dist

        for b in model.buffers():
            dist.broadcast(b.data, src=0)

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def local_main_first(self, fn: Callable[[], T]) -> T:
        """``fn()`` on every rank, the first process of each machine ahead of the others:
        it fills the machine's cache (preprocessed data) that they then read."""
        if not self.active:
            return fn()
        result = fn() if self.local_rank == 0 else None
        self.barrier()
        return result if self.local_rank == 0 else fn()  # type: ignore[return-value]

    def _comm_device(self, device: torch.device) -> torch.device:
        return device if self.backend == "nccl" else torch.device("cpu")

    # ---------------------------------------------------------------- helpers for the loops

    def log(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log`` on rank 0, a no-op elsewhere."""
        return log if self.is_main else _silent

    def test_exit(self, epoch: int) -> None:
        """The ``HCR_TEST_EXIT=RANK:EPOCH`` hook: die like a crashed worker (first attempt only)."""
        spec = os.environ.get("HCR_TEST_EXIT")
        if not spec or self.restarts > 0:
            return
        rank, _, at = spec.partition(":")
        if int(rank) == self.rank and int(at) == epoch:
            os._exit(TEST_EXIT_STATUS)

    def record_shard(self, epoch: int, indices: Iterable[int]) -> None:
        """The ``HCR_SHARD_LOG=DIR`` hook: append this rank's training indices of an epoch."""
        self._record({"epoch": epoch, "world_size": self.world_size, "indices": sorted(int(i) for i in indices)})

    def record_weights(self, model: nn.Module) -> None:
        """The ``HCR_SHARD_LOG=DIR`` hook: append the :func:`weights_digest` of this rank's
        model at the end of training (the test compares ranks and ``last.pt``)."""
        if os.environ.get("HCR_SHARD_LOG"):
            self._record({"final_weights": weights_digest(model.state_dict())})

    def _record(self, entry: dict[str, Any]) -> None:
        folder = os.environ.get("HCR_SHARD_LOG")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            with open(Path(folder) / f"rank{self.rank}.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")


def _silent(_: str) -> None:
    pass


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's names and values: equal digests, bit-identical weights."""
    h = hashlib.sha256()
    for k in sorted(state_dict):
        h.update(k.encode())
        h.update(state_dict[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


#: In a run folder trained under torchrun: the job that owns it (see :func:`resume_point`).
JOB_FILE = ".torchrun-job"


def extra_train_state(precision: Precision, world: World, job: str) -> dict[str, Any]:
    """What ``last.pt``'s training state adds beyond one fp32 process outside torchrun: the
    fp16 loss scale, and the torchrun job that wrote it (so that its restarts, and only
    they, continue from it by themselves)."""
    extra: dict[str, Any] = {}
    if precision.scaler is not None:
        extra["scaler"] = precision.state_dict()
    if world.elastic:
        extra.update(job=job, world_size=world.world_size)
    return extra


def resume_point(out: Path, *, resume: bool, world: World, task: str, log: Callable[[str], None]) -> tuple[Checkpoint | None, str]:
    """The checkpoint to resume from (or None) and the torchrun job token of the run.

    Rank 0 decides and reads, the others get its answer (other machines need no copy of the
    run folder). ``out/last.pt`` is read when ``resume`` is asked, or when torchrun restarted
    the workers after a failure and ``last.pt`` was written by this same job: the first
    attempt of a job writes a fresh token to ``out/.torchrun-job`` (or carries over the
    token of the run it resumes), and every ``last.pt`` it writes carries it too, so a
    restart never picks up a stale ``last.pt`` an earlier job left in the folder.
    """
    from .checkpoint import load_checkpoint

    last_path, job_path = out / "last.pt", out / JOB_FILE

    def read() -> tuple[Checkpoint | None, str]:
        _sweep_partial_writes(out)
        last: Checkpoint | None = None
        if resume:
            if not last_path.exists():
                raise HcrError(f"nothing to resume: {last_path} does not exist")
            last = load_checkpoint(last_path)
        elif world.restarts > 0 and last_path.exists() and job_path.exists():
            last = load_checkpoint(last_path)
            job = job_path.read_text(encoding="utf-8").strip()
            if not last.train_state or last.train_state.get("job") != job:
                return None, job  # the job died before its first epoch was saved: start over
            log(f"torchrun restart {world.restarts}: continuing from {last_path} (epoch {last.train_state['epoch']})")
        if last is not None and (not last.train_state or last.task != task):
            kind = "sequence training" if task == "sequence" else "training"
            raise HcrError(f"{last_path} holds no {kind} state to resume from")
        if not world.elastic:
            return last, ""
        if world.restarts > 0 and job_path.exists():
            return last, job_path.read_text(encoding="utf-8").strip()
        job = str((last.train_state or {}).get("job") or "") if last is not None else ""
        job = job or uuid.uuid4().hex
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(job_path, job + "\n")
        return last, job

    return world.from_main(read)


def _sweep_partial_writes(out: Path) -> None:
    """Delete what an interrupted atomic write (:func:`hcr.modelfile.write_atomic`) left in a
    run folder (``.best.x1y2.tmp.pt``, or ``.best.pt.x1y2.tmp`` from older versions: the
    temporary file a killed process never renamed). Only rank 0 writes there, and it
    calls this before its first write, so no write in progress is touched."""
    if not out.is_dir():
        return
    for leftover in out.glob(".*.tmp*"):
        if leftover.is_file() and (leftover.name.endswith(".tmp") or ".tmp." in leftover.name):
            leftover.unlink(missing_ok=True)


def _restarts() -> int:
    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    except ValueError:
        return 0


def _pick_backend(requested: str, device: torch.device) -> str:
    if requested not in BACKENDS:
        raise HcrError(f"distributed backend must be one of {', '.join(BACKENDS)}, got {requested!r}")
    if requested == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if requested == "nccl" and device.type != "cuda":
        raise HcrError("the nccl backend needs a CUDA GPU per process, and this run is on the CPU; use --dist-backend gloo (or auto)")
    return requested


def _device_for(device: str, local_rank: int, world_size: int) -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` for auto/cuda when GPUs are present."""
    from .runtime.torch import resolve_device

    dev = resolve_device(device)
    if dev.type != "cuda" or world_size <= 1:
        return dev
    if dev.index is not None:
        raise HcrError(f"device {device!r} names one GPU, but {world_size} processes need one each: use --device cuda (each takes cuda:LOCAL_RANK)")
    n = torch.cuda.device_count()
    if local_rank >= n:
        raise HcrError(f"LOCAL_RANK {local_rank} needs GPU {local_rank}, but this machine has {n}: start at most {n} processes per machine (--nproc-per-node {n})")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


@contextmanager
def session(device: str = "auto", backend: str = "auto") -> Iterator[tuple[World, torch.device]]:
    """The :class:`World` this process trains in and its device.

    Under torchrun (``WORLD_SIZE`` > 1), joins the default process group (unless the caller
    already did) and leaves it on exit; elsewhere yields a world of one and the resolved
    ``device``.
    """
    if backend not in BACKENDS:
        raise HcrError(f"distributed backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    env = torchrun_env()
    if env is None:
        yield World(elastic="TORCHELASTIC_RUN_ID" in os.environ, restarts=_restarts()), _device_for(device, 0, 1)
        return
    import torch.distributed as dist

    rank, world_size, local_rank = env
    dev = _device_for(device, local_rank, world_size)
    name = _pick_backend(backend, dev)
    if name == "nccl" and not dist.is_nccl_available():
        raise HcrError("the nccl backend is not available in this PyTorch build; use --dist-backend gloo")
    owned = not dist.is_initialized()
    if owned:
        # The rendezvous store outlives a torchrun restart, and with it the previous
        # round's peer addresses under the default keys: a restarted rank could read its
        # dead peer's address before the new peer wrote its own (a refused connection).
        # Each restart gets keys of its own.
        store, _, _ = next(dist.rendezvous("env://"))
        store = dist.PrefixStore(f"hcr/restart{_restarts()}/", store)
        dist.init_process_group(name, store=store, rank=rank, world_size=world_size, device_id=dev if name == "nccl" else None)
    try:
        yield World(rank, world_size, local_rank, name, True, _restarts()), dev
    finally:
        if owned and dist.is_initialized():
            dist.destroy_process_group()


# --------------------------------------------------------------------------- batches in worker processes


class _Tasks(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """A map-style data set whose "indices" are the batch tasks themselves."""

    def __init__(self, make: Callable[[Any], Any]) -> None:
        self.make = make

    def __getitem__(self, task: Any) -> Any:
        return self.make(task)


def batch_stream(make: Callable[[T], U], tasks: Sequence[T], *, workers: int = 0, pin_memory: bool = False) -> Iterator[U]:
    """``make(task)`` for each task, in order: in this process (``workers=0``), or in that
    many ``DataLoader`` worker processes that work ahead of the training step (``make``
    must then draw its randomness from the task, not from shared state). ``pin_memory``
    (for a GPU) returns page-locked tensors, which copy to the device asynchronously."""
    if workers <= 0:
        for task in tasks:
            out = make(task)
            yield _pin(out) if pin_memory else out
        return
    loader = torch.utils.data.DataLoader(
        _Tasks(make), batch_size=None, sampler=list(tasks), num_workers=workers, pin_memory=pin_memory,
        prefetch_factor=2, collate_fn=_identity,
    )
    yield from loader


def _identity(x: Any) -> Any:
    return x


def _pin(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.pin_memory()
    if isinstance(obj, tuple):
        return tuple(_pin(o) for o in obj)
    return obj
