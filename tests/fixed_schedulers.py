"""Tiny deterministic schedulers for tests: the decision policy is the test's, not chance's."""

from __future__ import annotations

from collections.abc import Sequence


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
