"""Tiny deterministic schedulers for tests: the decision policy is the test's, not chance's."""

from __future__ import annotations

from collections.abc import Callable, Sequence


class Lowest:
    """Always the lowest runnable tid: run task 0 until it blocks or ends, then the next."""

    def new_execution(self) -> bool:
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        return runnable[0]


class RoundRobin:
    """Deterministic and fair: at every decision, the first runnable tid after the current one."""

    def new_execution(self) -> bool:
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        if current is not None:
            for tid in runnable:
                if tid > current:
                    return tid
        return runnable[0]


class Script:
    """A forced interleaving written as steps: each step runs the first runnable task of its
    ``prefer`` list (task names) until its ``done`` predicate on the model holds, then the
    next step; after the last, the lowest runnable task. Written in terms of what the model
    is doing, not of decision numbers, so a new preemption point does not move it.

    A step whose tasks are all blocked (asleep, spinning) lets the lowest runnable task that
    no later step names run until one of them can go on again.
    """

    def __init__(self, names: Sequence[str],
                 steps: Sequence[tuple[Sequence[str], Callable[[], bool]]]) -> None:
        self.tid = {n: i for i, n in enumerate(names)}
        self.steps = [([self.tid[n] for n in prefer], done) for prefer, done in steps]
        self.step = 0

    def new_execution(self) -> bool:
        self.step = 0
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        while self.step < len(self.steps) and self.steps[self.step][1]():
            self.step += 1
        if self.step < len(self.steps):
            for tid in self.steps[self.step][0]:
                if tid in runnable:
                    return tid
            # blocked: keep the tasks of later steps where they are, run another
            later = {t for prefer, _ in self.steps[self.step + 1:] for t in prefer}
            return next((t for t in runnable if t not in later), runnable[0])
        return runnable[0]

    @property
    def finished(self) -> bool:
        """Whether every step's predicate held: the interleaving happened as written."""
        return self.step == len(self.steps)
