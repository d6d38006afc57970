"""The one protocol every scheduling strategy implements.

Mirrors shuttle's ``Scheduler`` trait (shuttle-engine/src/scheduler/mod.rs). A strategy only
*decides*; the execution records its decisions, so any strategy's run replays through
:class:`~stress.schedulers.replay.ReplayScheduler`.

There is no ``next_random``: the model draws no random data of its own (allocation, list order
and timing are all deterministic functions of the schedule), so a schedule is the list of task
choices alone. Should the model ever need a data choice, it goes here as a third method, and the
schedule format gets a step kind for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from target.kernel import PendingOp


class Scheduler(Protocol):
    def new_execution(self) -> bool:
        """Prepare for the next execution; False means the strategy is exhausted (stop)."""
        ...

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        """Choose the task to run next.

        Args:
            runnable: tids that can run, sorted, at least two of them (a point with one
                runnable task is not a decision and never reaches the scheduler).
            current: the task that reached this point, or None before the first step. It is
                in ``runnable`` unless it just blocked or finished; choosing another runnable
                task while it is runnable is a *preemption*.
            yielding: the current task called ``yield()`` and asks to give way.

        Returns:
            A tid from ``runnable``.
        """
        ...


class PendingOpsScheduler(Scheduler, Protocol):
    """The optional richer protocol: a strategy that reasons about what tasks are about to
    touch (POS, SURW, conflict-aware PCT) implements ``next_task_pending`` as well, and the
    execution then calls it *instead of* ``next_task`` at every decision. (DPOR must see
    every step, decisions or not: it has ``observe(rq)``, called by the execution at every
    pick before the choice and with None at the end (``Execution._observing_rq``); see
    :mod:`.dpor`.)

    Like loom's ``Operation`` and fray's pending operation: each runnable task's next
    operation, the object it touches (a lock with its class, a pte as (mm, address), a page's
    count/mapcount/flags/data/mapping, a list) and the action (acquire, try, release, read,
    write). Only a scheduler that has the method pays for building them.
    """

    def next_task_pending(self, runnable: Sequence[int], current: int | None,
                          yielding: bool, pending: Sequence[PendingOp]) -> int:
        """Choose the task to run next, as :meth:`Scheduler.next_task`.

        Args:
            pending: ``pending[i]`` is the operation task ``runnable[i]`` performs when it
                runs (``pending[i].tid == runnable[i]``). Built for this call: keep them.
        """
        ...


class StepObserver(Protocol):
    """The optional step hook: a strategy that must count what every task does, at points
    that are not decisions too (SURW's remaining events), has ``observe_op``; the execution then
    calls it at every pick (``stress._execution._observing_op``), and only for such a strategy."""

    def observe_op(self, op: PendingOp) -> None:
        """Task ``op.tid`` was picked and is about to perform ``op``."""
        ...


class OneExecution:
    """The ``new_execution`` of a strategy whose input describes a single execution (a byte
    string, a recorded schedule): True the first time, then False."""

    _started = False

    def new_execution(self) -> bool:
        """True once: the input describes a single execution."""
        if self._started:
            return False
        self._started = True
        return True
