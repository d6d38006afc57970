"""The trio executor: each model task is a trio task; the execution decides who proceeds.

Only one model task is ever runnable from trio's point of view: at a preemption point the
running task asks the execution for the next one, reschedules its trio task with
``trio.lowlevel.reschedule`` and parks itself with ``wait_task_rescheduled``. Trio's own
scheduler therefore never has a choice to make, and its randomised batch order cannot leak into
the model's interleaving.

    conductor                 task A                       task B
    spawn A, B; park          park (started)               park (started)
                              <- last one wakes conductor
    pick() = A; wake A; park  runs to a point
                              pick() = B; wake B; park     runs to a point ...
    ...                       finishes / finding: over     parked
    woken: cancel nursery                                  Cancelled, closes its coroutine

Teardown is the one place where model code could run outside the execution's control: the
``Cancelled`` that unparks the abandoned tasks unwinds through model frames. As in the direct
executor (``close_tasks``), any model code that runs then, a ``finally`` that unlocks, a
swallowed ``Cancelled``, a point, is a harness error, never a finding of the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio

from target.kernel import KTask, install, uninstall

from .._execution import DEFAULT_MAX_STEPS, Execution, ModelTask, Outcome, StressInternalError
from ..schedulers import Scheduler
from .direct import close_tasks

_reschedule = trio.lowlevel.reschedule
_wait = trio.lowlevel.wait_task_rescheduled


def _abort(_: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.SUCCEEDED


class _TrioRun:
    def __init__(self, ex: Execution) -> None:
        self.ex = ex
        self.conductor: Any = None
        self.parked_at_start = 0
        self.error: BaseException | None = None
        # Set by the conductor just before it cancels the parked tasks: from then on, any
        # model code that runs is unwinding code (see the module docstring).
        self.tearing_down = False

    async def point(self) -> None:
        ex = self.ex
        me = ex.rq.current
        nxt = ex.pick()
        if nxt is me:
            return
        self._hand_to(nxt)
        await _wait(_abort)

    def _hand_to(self, nxt: KTask | None) -> None:
        if nxt is None:
            _reschedule(self.conductor)
        else:
            _reschedule(nxt.trio_task)

    async def body(self, task: KTask) -> None:
        task.trio_task = trio.lowlevel.current_task()
        self.parked_at_start += 1
        if self.parked_at_start == len(self.ex.rq.tasks):
            _reschedule(self.conductor)
        await _wait(_abort)
        ex = self.ex
        try:
            await task.coro
        except trio.Cancelled:
            raise
        except BaseException as exc:
            if self.tearing_down:
                self._torn_down(task, exc)
                return
            try:
                ex.fail(task, exc)
            except StressInternalError as err:
                self._set_error(err)
            self._hand_to(None)
            return
        if self.tearing_down:  # the model swallowed the Cancelled and returned
            self._torn_down(task, None)
            return
        ex.task_done(task)
        try:
            nxt = ex.pick()
        except StressInternalError as err:  # a scheduler bug: end the run, report it
            self._set_error(err)
            nxt = None
        self._hand_to(nxt)

    def _set_error(self, err: BaseException) -> None:
        """Remember the first harness error and end the execution."""
        if self.error is None:
            self.error = err
        self.ex.over = True

    def _torn_down(self, task: KTask, exc: BaseException | None) -> None:
        err = StressInternalError(
            f"model task {task.name} ran code while its execution was torn down ({exc!r}): "
            "model code must not use try/finally or catch GeneratorExit/Cancelled"
        )
        err.__cause__ = exc
        self._set_error(err)

    async def conduct(self) -> None:
        self.conductor = trio.lowlevel.current_task()
        async with trio.open_nursery() as nursery:
            for task in self.ex.rq.tasks:
                nursery.start_soon(self.body, task)
            if self.ex.rq.tasks:  # with none, nobody would ever wake us
                await _wait(_abort)  # until every task has parked at its start
            try:
                first = self.ex.pick()
            except StressInternalError as err:
                self._set_error(err)
                first = None
            if first is not None:
                _reschedule(first.trio_task)
                await _wait(_abort)  # until the execution is over
            # Model code that the Cancelled unwinds through must find no kernel to act on,
            # as in the direct executor's close_tasks: uninstall before cancelling.
            self.tearing_down = True
            uninstall()
            nursery.cancel_scope.cancel()


def run_trio(
    scheduler: Scheduler,
    tasks: Sequence[ModelTask],
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    trace: bool = False,
) -> Outcome:
    """Run one execution under ``trio.run``; same contract as :func:`run_direct`."""
    ex = Execution(scheduler, tasks, max_steps=max_steps, trace=trace)
    run = _TrioRun(ex)
    install(ex.rq, run.point, ex.tracer())
    try:
        trio.run(run.conduct)
    finally:
        uninstall()
        close_tasks(ex)  # all finished or cancelled by now, unless trio.run itself failed
    if run.error is not None:
        raise run.error
    return ex.outcome()


async def run_in_trio(
    scheduler: Scheduler,
    tasks: Sequence[ModelTask],
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    trace: bool = False,
) -> Outcome:
    """The same, inside an already running trio loop: for callers that have one (the
    executor tests, bench/executors.py). The stress service does not: each of its executions
    is a ``trio.run`` of its own (:func:`run_trio`), so no state outlives a run."""
    ex = Execution(scheduler, tasks, max_steps=max_steps, trace=trace)
    run = _TrioRun(ex)
    install(ex.rq, run.point, ex.tracer())
    try:
        await run.conduct()
    finally:
        uninstall()
        close_tasks(ex)  # all finished or cancelled by now, unless trio.run itself failed
    if run.error is not None:
        raise run.error
    return ex.outcome()
