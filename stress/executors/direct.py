"""The direct executor: model coroutines stepped by ``send(None)`` from one loop.

A preemption point is a bare ``yield`` out of the model's coroutine chain (installed as
``point=None``: ``target.kernel.preempt`` yields itself); the loop asks the execution who runs
next and resumes that coroutine. No event loop, no task objects: a
scheduling point costs a generator resume plus the decision (see bench/executors.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from target.kernel import install, uninstall

from .._execution import DEFAULT_MAX_STEPS, Execution, ModelTask, Outcome, StressInternalError
from ..schedulers import Scheduler


def run_direct(
    scheduler: Scheduler,
    tasks: Sequence[ModelTask],
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    trace: bool = False,
) -> Outcome:
    """Run one execution of ``tasks`` under ``scheduler`` (its ``new_execution`` was called)."""
    ex = Execution(scheduler, tasks, max_steps=max_steps, trace=trace)
    install(ex.rq, None, ex.tracer())
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
        uninstall()  # first, so that model code run by the closing fails (see close_tasks)
        close_tasks(ex)
    return ex.outcome()


def close_tasks(ex: Execution) -> None:
    """Close every model coroutine once the execution is over and its executor uninstalled.

    Closing throws ``GeneratorExit`` in at the task's last point. Model code has no business
    running then: the outcome is decided, and a ``finally`` or ``except BaseException`` in the
    model would act as whichever task happened to be current (an unlock "by a non-owner", a
    finding after the outcome). Kernel C has no unwinding, so the model must not either. With
    the executor uninstalled, any kernel operation such code attempts raises RuntimeError, and
    that is reported as a harness error. Every coroutine is closed even when one fails, so none
    is left for the garbage collector to close at some later, arbitrary moment.

    Raises:
        StressInternalError: a model coroutine raised or yielded while being closed.
    """
    first: tuple[str, BaseException] | None = None
    for t in ex.rq.tasks:
        try:
            t.coro.close()
        except BaseException as exc:  # reported below, after closing the rest
            if first is None:
                first = (t.name, exc)
    if first is not None:
        name, error = first
        raise StressInternalError(
            f"model task {name} ran code while its execution was torn down ({error!r}): "
            "model code must not use try/finally or catch GeneratorExit/Cancelled"
        ) from error
