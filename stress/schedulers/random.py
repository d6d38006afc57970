"""Seeded random walk: at every decision, a uniformly random runnable task.

The baseline strategy (shuttle's ``RandomScheduler``). Cheap per decision, and good at
shallow races; PCT is better at bugs that need a few preemptions at exact places.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from math import floor


class RandomScheduler:
    """Random walk over ``iterations`` executions, each seeded from the master seed.

    Invariant: execution ``i`` of seed ``s`` is the same walk on every run and executor.
    """

    def __init__(self, seed: int, iterations: int | None = None) -> None:
        self.seed = seed
        self.iterations = iterations
        self.execution = -1
        self._rng = random.Random(seed)

    def __repr__(self) -> str:
        return f"RandomScheduler(seed={self.seed})"

    def new_execution(self) -> bool:
        self.execution += 1
        if self.iterations is not None and self.execution >= self.iterations:
            return False
        self._rng = random.Random(f"{self.seed}:{self.execution}")
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        # floor, not int(): the same index for a non-negative float (so the same walk as
        # before), and about a fifth of this method's cost cheaper, at every decision.
        return runnable[floor(self._rng.random() * len(runnable))]
