"""How many CPU threads a training step uses: fixed, or picked by measured speed.

PyTorch splits each operation of a step evenly between its OpenMP threads, and the
operation ends when the slowest thread ends. On an idle machine two threads are faster than
one; on a machine whose cores are busy with other work, the thread the operating system
has paused holds every operation up, and one thread is faster: on a shared 2-core machine
seed-cnn trained at about 1,700-2,000 images/s with 2 threads and 3,200-3,700 with 1
(benchmarks/README.md, "Throughput").

``threads`` in a recipe (``hcr train --threads``):

- ``0`` (default): PyTorch's own count (one per core), kept for the whole run;
- ``N``: N threads, kept for the whole run;
- ``auto``: :class:`ThreadTuner` times a few steps with each candidate count (all the
  threads, half of them, one), in turns, trains with the fastest, and measures again every
  500 steps, so a run follows the machine's load (the probes cost a few per cent). The numbers a step computes
  depend (in the last bits) on how its sums are split between threads, so an ``auto`` run
  is not bit-for-bit repeatable when the load changes; a fixed count is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch

#: The ``threads`` value that picks the count by measured speed.
AUTO = "auto"


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
        the CPU gives a tuner (on a GPU the CPU threads hardly matter: None)."""
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


__all__ = ["AUTO", "ThreadTuner", "kept_threads", "thread_candidates"]
