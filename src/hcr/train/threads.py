"""How a training step uses the CPU's threads: a fixed count, the batch split between
threads, or the count picked by measured speed.

PyTorch splits each operation of a step evenly between its OpenMP threads, and the
operation ends when the slowest thread ends. On an idle machine two threads are faster than
one; on a machine whose cores are busy with other work, the thread the operating system
has paused holds every operation up: on a shared 2-core machine seed-cnn trained at about
1,200-2,000 images/s with 2 threads and 2,600-3,700 with 1 (benchmarks/README.md,
"Throughput").

``threads`` in a recipe (``hcr train --threads``):

- ``0`` (default): PyTorch's own count (one per core), kept for the whole run;
- ``N``: N threads, kept for the whole run;
- ``split``: each step's batch is cut into one part per core, and each part runs its
  forward and backward pass in its own thread with one thread per operation
  (:class:`SplitStep`); the parts' gradients add up to the whole batch's (as under
  ``torchrun``, but in one process). No operation waits for another thread, so a
  descheduled thread holds up only its own part: seed-cnn trained at 1.1x Keras' speed
  under load and 1.2x idle, where PyTorch's own threads reach about half of Keras under
  load. Each part draws its dropout from its own generator, seeded by the step, so a
  ``split`` run is repeatable (its numbers differ from a whole-batch run's in the last
  bits and in the dropout drawn). For fp32 character models on the CPU in one process,
  without outliers;
- ``auto``: :class:`ThreadTuner` times a few steps with each candidate count (all the
  threads, half of them, one), in turns, trains with the fastest, and measures again
  every 500 steps, so a run follows the machine's load (the probes cost a few per cent).
  The numbers a step computes depend (in the last bits) on how its sums are split between
  threads, so an ``auto`` run is not bit-for-bit repeatable when the load changes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch
from torch import nn

from ..config import THREAD_AUTO, THREAD_SPLIT
from ..errors import HcrError

#: The ``threads`` values that pick the count by measured speed (:class:`ThreadTuner`) and
#: that split each step's batch between threads (:class:`SplitStep`); recipes check them.
AUTO, SPLIT = THREAD_AUTO, THREAD_SPLIT


def thread_candidates(most: int) -> tuple[int, ...]:
    """The counts :class:`ThreadTuner` tries with ``most`` threads available: all, half, one."""
    return tuple(dict.fromkeys(c for c in (most, most // 2, 1) if c >= 1))


@contextmanager
def kept_threads() -> Iterator[None]:
    """PyTorch's thread count as it was before the block (a run may change it)."""
    before = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


class ThreadTuner:
    """Picks the number of PyTorch threads for a training loop by timing its steps.

    Call :meth:`begin` before a run of steps (an epoch: the time between epochs is not a
    step's) and :meth:`tick` after each step. A probe times each of ``candidates`` for
    ``probe_steps`` steps (after one step to settle), in turn, ``rounds`` times: on a
    shared machine the speed comes in bursts, and taking turns gives every count its share
    of good and bad moments. After each round a count slower than ``drop_below`` times the
    fastest so far takes no more turns (a count that is far behind costs the most to time).
    The probe's winner by mean step time (the current count unless another is at least
    ``margin`` faster) trains for ``hold_steps`` steps, then it probes again. ``chosen`` is
    the count it trains with.
    """

    def __init__(self, candidates: Sequence[int], *, probe_steps: int = 4, rounds: int = 3, hold_steps: int = 500, margin: float = 0.05, drop_below: float = 0.5,
                 set_threads: Callable[[int], None] = torch.set_num_threads, clock: Callable[[], float] = time.perf_counter) -> None:
        if not candidates or any(c < 1 for c in candidates):
            raise ValueError(f"thread counts must be >= 1, got {list(candidates)}")
        self.candidates = tuple(dict.fromkeys(candidates))
        self.probe_steps, self.rounds, self.hold_steps, self.margin, self.drop_below = probe_steps, rounds, hold_steps, margin, drop_below
        self._set, self._clock = set_threads, clock
        self.chosen = self.candidates[0]
        self._current = self.chosen
        self._queue: list[int] = []  # the counts still to time in this round
        self._round = 0  # rounds of the probe begun
        self._times: dict[int, list[float]] = {}
        self._settle = 0
        self._block = 0  # timed steps of the current probe block
        self._hold = 0
        self._last: float | None = None
        self._start_probe()

    @classmethod
    def for_run(cls, threads: int | str, device: torch.device) -> ThreadTuner | None:
        """Apply a recipe's ``threads``: a fixed count is set here (None returned); ``auto`` on
        the CPU gives a tuner (on a GPU the CPU threads hardly matter: None); ``split``: None
        (see :meth:`SplitStep.for_run`)."""
        if threads == SPLIT:
            return None  # :class:`SplitStep`'s
        if threads == AUTO:
            most = torch.get_num_threads()
            return cls(thread_candidates(most)) if device.type == "cpu" and most > 1 else None
        if isinstance(threads, int) and threads > 0:
            torch.set_num_threads(threads)
        return None

    @property
    def probing(self) -> bool:
        return bool(self._queue)

    def _use(self, n: int) -> None:
        if n != self._current:
            self._set(n)
            self._current = n
        self._settle = 1  # the first step after a switch (or a pause) is not timed

    def _start_probe(self) -> None:
        # the current count first: no switch when it stays the fastest
        self._queue = [self._current] + [c for c in self.candidates if c != self._current]
        self._round = 1
        self._times = {c: [] for c in self.candidates}
        self._use(self._queue[0])

    def _speeds(self) -> dict[int, float]:
        return {c: len(t) / max(sum(t), 1e-9) for c, t in self._times.items() if t}

    def _next_round(self) -> None:
        """Another round for the counts not far behind the fastest, in the same order."""
        speed = self._speeds()
        fastest = max(speed.values())
        self._queue = [c for c in speed if speed[c] >= self.drop_below * fastest]
        self._round += 1

    def _decide(self) -> None:
        speed = self._speeds()
        best = max(speed, key=speed.__getitem__)
        if self.chosen in speed and speed[best] < speed[self.chosen] * (1 + self.margin):
            best = self.chosen
        self.chosen = best
        self._use(best)
        self._hold = self.hold_steps

    def begin(self) -> None:
        """A run of steps starts (the time since the last step is not a step's)."""
        self._last = None

    def tick(self) -> None:
        """A step ended."""
        now = self._clock()
        last, self._last = self._last, now
        if last is None:
            return
        if self._settle:
            self._settle -= 1
            return
        if not self._queue:
            self._hold -= 1
            if self._hold <= 0:
                self._start_probe()
            return
        n = self._queue[0]
        self._times[n].append(now - last)
        self._block += 1
        if self._block >= self.probe_steps:
            self._block = 0
            self._queue.pop(0)
            if not self._queue and self._round < self.rounds:
                self._next_round()
                if len(self._queue) == 1:
                    self._queue = []  # one count left: nothing to compare it with
            if self._queue:
                self._use(self._queue[0])
            else:
                self._decide()


class _SeededDropout(nn.Module):
    """``nn.Dropout`` drawing from its own generator (the global one is shared by threads)."""

    def __init__(self, p: float, generator: torch.Generator) -> None:
        super().__init__()
        self.p, self.generator = p, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator)
        return x * keep / (1 - self.p)


def _replica(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """A copy of ``model`` sharing its parameters (so gradients meet in them), with buffers
    of its own and its dropout drawn from ``generator``."""
    rep = copy.deepcopy(model, memo={id(p): p for p in model.parameters()})
    for name, module in list(rep.named_modules()):
        if type(module) is nn.Dropout:
            parent, _, leaf = name.rpartition(".")
            setattr(rep.get_submodule(parent) if parent else rep, leaf, _SeededDropout(module.p, generator))
        elif isinstance(module, nn.modules.dropout._DropoutNd):
            raise HcrError(f"threads: split does not support {type(module).__name__} layers (only Dropout)")
    return rep


class SplitStep:
    """One training step's forward and backward passes as ``parts`` slices of the batch, in
    ``parts`` threads (the calling one and ``parts - 1`` more, one thread per operation each:
    ``threads: split``).

    The slices run on copies of the model that share its parameters, so their gradients add
    up in the parameters' ``.grad``; each slice's loss is weighted by its share of the batch,
    so the sum is the whole batch's mean-loss gradient (adding floats is commutative, so
    the order the threads finish in does not change a bit). Buffers (batch-norm statistics)
    are the first slice's, copied back to the model after every step, as
    ``DistributedDataParallel`` broadcasts rank 0's. Call :meth:`close` after the run.
    """

    def __init__(self, model: nn.Module, parts: int) -> None:
        if parts < 2:
            raise ValueError(f"a split step needs at least 2 parts, got {parts}")
        self.model, self.parts = model, parts
        self.generators = [torch.Generator() for _ in range(parts)]
        self.replicas = [_replica(model, g) for g in self.generators]
        # the calling thread runs the first part itself: one thread fewer to wake each step
        self._pool = ThreadPoolExecutor(parts - 1, thread_name_prefix="hcr-step", initializer=torch.set_num_threads, initargs=(1,))

    @classmethod
    def for_run(cls, threads: int | str, model: nn.Module, device: torch.device, distributed: bool) -> SplitStep | None:
        """A split step for a recipe with ``threads: split`` (one part per thread PyTorch
        would use, at least 2; the calling thread keeps one thread for the optimizer), else None."""
        if threads != SPLIT:
            return None
        if device.type != "cpu" or distributed:
            raise HcrError("threads: split runs on the CPU in one process (not on a GPU or under torchrun)")
        step = cls(model, max(2, torch.get_num_threads()))
        torch.set_num_threads(1)
        return step

    def run(self, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], seeds: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward of the batch ``(x, y)``; ``seeds``: one per part, for its
        dropout. Returns the batch's loss and logits (both detached); the gradients are in
        the model's parameters."""
        n = len(x)
        sizes = [n // self.parts + (k < n % self.parts) for k in range(self.parts)]  # the first parts one larger
        bounds = [sum(sizes[:k]) for k in range(self.parts + 1)]

        def work(k: int) -> tuple[torch.Tensor, torch.Tensor]:
            a, b = bounds[k], bounds[k + 1]
            rep = self.replicas[k]
            rep.train(self.model.training)
            self.generators[k].manual_seed(seeds[k])
            logits = rep(x[a:b])
            loss = loss_fn(logits, y[a:b]) * ((b - a) / n)
            loss.backward()
            return loss.detach(), logits.detach()

        others = [self._pool.submit(work, k) for k in range(1, self.parts) if bounds[k + 1] > bounds[k]]
        done = [work(0)] + [f.result() for f in others]
        with torch.no_grad():
            mine = dict(self.model.named_buffers())
            for name, buf in self.replicas[0].named_buffers():
                mine[name].copy_(buf)
            for rep in self.replicas[1:]:
                for name, buf in rep.named_buffers():
                    buf.copy_(mine[name])
        loss = done[0][0]
        for part_loss, _ in done[1:]:
            loss = loss + part_loss
        return loss, torch.cat([logits for _, logits in done])

    def close(self) -> None:
        self._pool.shutdown()


__all__ = ["AUTO", "SPLIT", "SplitStep", "ThreadTuner", "kept_threads", "thread_candidates"]
