"""Conflict-aware PCT: PCT whose change points fire only where the running task is about to
touch an object another task has touched in this execution.

PCT (:mod:`.pct`) spreads its ``d - 1`` change points uniformly over the decisions of a run,
and most of them land where the running task does something no other task cares about: a
preemption there changes no outcome. Snowboard (Gong et al., SOSP 2021) found its Linux
concurrency bugs by preempting only where two tasks access the same memory; this is the
same idea inside PCT, as issue 15 describes it.

Each execution draws its priorities and change points exactly as PCT does (same ``k``
estimate, same hint from the campaign). A change point reached at a decision where the
running task is *not* about to touch a shared object another task touches is *armed*, not
spent: it fires at the next decision where the running task's pending operation races
(:mod:`._conflict`) with

* an access another task made earlier in this execution: a task's pending operation at a
  decision is *executed* when the task is chosen, or when at a later decision its pending
  operation is another one (it ran alone in between); or
* the pending operation of another task (runnable, or the last one it was seen with while it
  waits): an access it is about to make. This second half is ours, beyond "touched": with
  the first alone, no change point fired in 6 executions of migrate-vs-fault (seeds 0-5,
  depth 3), because under PCT the highest-priority task makes its accesses first, at
  decisions, and the others make theirs after it finished, alone, where no decision sees
  them; "touched by another task" then never holds at a decision. A pending conflict is
  the race those later accesses would be: preempting there decides which access goes
  first; or
* a task that has not started yet (never chosen, still at its first point, whose pending
  operation is ``NONE``): what it will touch is unknown, so any shared access of the running
  task may race with it. Ours as well: without it a scenario whose second task waits at its
  start while the first runs (migrate-vs-fault under most priority draws) has no conflict
  until the first task ends, and no change point ever lets the second one in; the run is
  sequential, and conflict-aware PCT found none of four catalog bugs PCT finds there.

At most one change point fires per decision; the rest stay armed. A run whose armed change
points never meet a conflict is PCT of a lower depth. What a task touches while it runs alone
(one runnable task, not a decision: ``Execution.pick``) past its first operation is never
seen, so "touched" is a subset of the run's real accesses. The scheduler only *chooses* among
what it is told; it reads nothing else of the model.
"""

from __future__ import annotations

from collections.abc import Sequence

from target.kernel import PendingOp

from ._conflict import Access, access, races, same
from .pct import DEFAULT_MAX_STEPS_HINT, PCTScheduler


class ConflictPCTScheduler(PCTScheduler):
    """PCT of depth ``depth`` whose change points wait for a conflict (see the module)."""

    def __init__(self, seed: int, depth: int = 3,
                 max_steps_hint: int = DEFAULT_MAX_STEPS_HINT,
                 iterations: int | None = None) -> None:
        super().__init__(seed, depth, max_steps_hint, iterations)
        # Per execution: the accesses executed so far, by key: the tids that made them and
        # whether any of them wrote. _op keeps each task's last pending operation seen (and
        # with it the objects whose ids are keys here, so no id is reused meanwhile).
        self._touched: dict[tuple[int, object], dict[int, bool]] = {}
        self._op: dict[int, PendingOp] = {}
        self._started: set[int] = set()  # tids chosen at least once, or seen to have run
        self.armed = 0  # change points reached and not yet fired
        self.fired = 0  # change points fired, this execution (a test reads it)

    def __repr__(self) -> str:
        return f"ConflictPCTScheduler(seed={self.seed}, depth={self.depth})"

    def new_execution(self) -> bool:
        self._touched = {}
        self._op = {}
        self._started = set()
        self.armed = 0
        self.fired = 0
        return super().new_execution()

    def next_task_pending(self, runnable: Sequence[int], current: int | None, yielding: bool,
                          pending: Sequence[PendingOp]) -> int:
        prio, ops = self._priority, self._op
        for tid, op in zip(runnable, pending, strict=True):
            if tid not in prio:
                self._rank_new(tid)
            old = ops.get(tid)
            if old is not None and not same(old, op):
                self._executed(tid, old)
            ops[tid] = op
        if self.steps in self.change_points:
            self.armed += 1
        self.steps += 1
        if self.armed and current is not None and current in runnable:
            if self._conflicts(current, access(ops[current])):
                self._lower(current)
                self.armed -= 1
                self.fired += 1
        choice = max(runnable, key=prio.__getitem__)
        self._executed(choice, ops[choice])
        return choice

    def _executed(self, tid: int, op: PendingOp) -> None:
        """Record that ``tid`` performed ``op``."""
        self._started.add(tid)
        acc = access(op)
        if acc is not None:
            seen = self._touched.setdefault(acc.key, {})
            seen[tid] = seen.get(tid, False) or acc.write

    def _conflicts(self, tid: int, acc: Access | None) -> bool:
        """Whether ``acc`` races with an access another task made in this execution, with
        another task's pending operation, or may race with a task not started yet."""
        if acc is None:
            return False
        for other, wrote in self._touched.get(acc.key, {}).items():
            if other != tid and (wrote or acc.write):
                return True
        return any(other != tid and (other not in self._started or races(acc, access(op)))
                   for other, op in self._op.items())
