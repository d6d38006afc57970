"""The direct executor: model coroutines stepped by ``send(None)`` from one loop.

A preemption point is a bare ``yield`` out of the model's coroutine chain; the loop asks the
execution who runs next and resumes that coroutine. No event loop, no task objects: a
scheduling point costs a generator resume plus the decision (see bench/executors.md).
"""

from __future__ import annotations

import types
from collections.abc import Generator, Sequence

from target.kernel import install, uninstall

from .._execution import DEFAULT_MAX_STEPS, Execution, ModelTask, Outcome
from ..schedulers import Scheduler


@types.coroutine
def _point() -> Generator[None, None, None]:
    yield


def run_direct(
    scheduler: Scheduler,
    tasks: Sequence[ModelTask],
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    trace: bool = False,
) -> Outcome:
    """Run one execution of ``tasks`` under ``scheduler`` (its ``new_execution`` was called)."""
    ex = Execution(scheduler, tasks, max_steps=max_steps, trace=trace)
    install(ex.rq, _point, ex.tracer())
    pick = ex.pick
    try:
        while True:
            task = pick()
            if task is None:
                break
            try:
                task.coro.send(None)
            except StopIteration:
                ex.task_done(task)
            except BaseException as exc:  # a finding ends the run; anything else re-raises
                ex.fail(task, exc)
                break
    finally:
        for t in ex.rq.tasks:
            t.coro.close()
        uninstall()
    return ex.outcome()
