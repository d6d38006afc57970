"""Partial Order Sampling (POS): random priorities per event, re-drawn for the events that race.

The algorithm is from "Partial Order Aware Concurrency Sampling", Yuan, Yang and Gu, CAV 2018
(Algorithm 2, POS). Random walk samples partial orders very unevenly (an order reached by
many interleavings is drawn that much more often); PCT's task priorities ignore which steps
actually race. POS gives every pending *event* a random priority, runs the highest, and after
an event runs re-draws only the priorities of the pending events that race with it, so an
independent event keeps its place and the order between racing events is re-sampled where it
matters.

Here an event is a task's pending operation (``next_task_pending``; the objects and the race
relation are :mod:`._conflict`'s). At each decision:

1. a task whose pending operation was executed since the last decision (the task chosen
   then, or one whose operation changed because it ran alone at points that were not
   decisions) has a new event: it draws a new priority, and every other task's pending event
   that races with the executed one is re-drawn. A task that reaches a ``RELEASE`` point has
   just released the lock, an event of its own: its racers (the waiters) are re-drawn too;
2. the runnable task with the highest priority runs.

Blocked tasks keep their pending event (the acquisition they wait for) and its priority, so
a release re-draws them as the paper's disabled events are. ``yielding`` changes nothing (see
:mod:`.pct` on why a scheduler must stay free to be unfair to a busy-wait).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from target.kernel import RELEASE, PendingOp

from ._conflict import Access, access, races, same


class POSScheduler:
    """POS over ``iterations`` executions (None: until the caller stops).

    Invariant: execution ``i`` of seed ``s`` is the same on every run and executor: its draws
    come from a generator seeded with ``(s, i)`` alone, in tid order.
    """

    def __init__(self, seed: int, iterations: int | None = None) -> None:
        self.seed = seed
        self.iterations = iterations
        self.execution = -1
        self._rng = random.Random(f"pos:{seed}:0")
        # invariant: _op's keys are among _prio's; _op[t] is t's pending operation at the
        # last decision where t was runnable (kept, with its object, while t waits).
        self._prio: dict[int, float] = {}
        self._op: dict[int, PendingOp] = {}
        self._last: int | None = None
        # Priorities re-drawn because of a race, this execution: what a test checks the
        # pending operations are used by (0 for tasks that share nothing).
        self.redraws = 0

    def __repr__(self) -> str:
        return f"POSScheduler(seed={self.seed})"

    def new_execution(self) -> bool:
        self.execution += 1
        if self.iterations is not None and self.execution >= self.iterations:
            return False
        self._rng = random.Random(f"pos:{self.seed}:{self.execution}")
        self._prio = {}
        self._op = {}
        self._last = None
        self.redraws = 0
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        """Without pending operations every event is new and nothing races: a random walk
        of fresh priorities. The execution always asks :meth:`next_task_pending`."""
        prio = self._prio
        for tid in runnable:
            prio[tid] = self._rng.random()
        return max(runnable, key=prio.__getitem__)

    def next_task_pending(self, runnable: Sequence[int], current: int | None, yielding: bool,
                          pending: Sequence[PendingOp]) -> int:
        prio, ops, rng = self._prio, self._op, self._rng
        executed: list[tuple[int, Access | None]] = []
        last = self._last
        if last is not None and last not in runnable and last in ops:
            # It ran its event and then blocked or finished: what it waits for now is not
            # known until it is runnable again, when it counts as a new event.
            executed.append((last, access(ops.pop(last))))
            del prio[last]
        for tid, op in zip(runnable, pending, strict=True):
            old = ops.get(tid)
            if old is None or tid == last or not same(old, op):
                if old is not None:
                    executed.append((tid, access(old)))
                if op.action == RELEASE:  # the release just done is an event of its own
                    executed.append((tid, access(op)))
                prio[tid] = rng.random()
            ops[tid] = op
        for tid, done in executed:
            if done is None:
                continue
            for other in sorted(ops):
                if other != tid and races(done, access(ops[other])):
                    prio[other] = rng.random()
                    self.redraws += 1
        choice = max(runnable, key=prio.__getitem__)
        self._last = choice
        return choice
