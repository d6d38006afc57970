"""One execution: the scheduling decisions and the outcome, shared by every executor.

An executor (direct or trio) only *transfers control*; everything that decides what happens,
which task runs at each point, what is recorded, when the run is over and what it found, lives
here. That is why the same scheduler decisions give the same trace on both executors.

A decision is recorded only where two or more tasks could run: with one runnable task there is
nothing to choose, and skipping those keeps schedules short (a migrate-vs-fault run has a few
hundred decisions, not thousands of points).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from target.kernel import Event, KernelFinding, KTask, PendingOp, Runqueue, canonical_classes

from .schedulers import PendingOpsScheduler, Scheduler

ModelTask = tuple[str, Callable[[], Coroutine[Any, Any, None]]]

DEFAULT_MAX_STEPS = 50_000

_WORKLOAD_MODULE = "stress.workload"


class StressInternalError(Exception):
    """A bug in the harness or the model's Python, never a finding of the modelled kernel.

    If you get this error, all bets are off for the run that raised it: fix the harness first.
    """


@dataclass
class Finding:
    """What one execution found: a kernel finding plus where and when it fired."""

    kind: str
    message: str
    function: str
    task: str
    step: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def signature(self) -> str:
        """Deduplication key, like a syzbot title: kind, model function, lock classes.

        A function of the bug's cause, not of the trace: the lock classes are the cause's
        (a lock-order inversion's cycle, a deadlock's awaited locks) in their canonical
        order (:func:`target.kernel.canonical_classes`), whichever schedule showed them."""
        classes = self.details.get("classes")
        suffix = f" [{' -> '.join(classes)}]" if classes else ""
        return f"{self.kind} in {self.function}{suffix}"


@dataclass
class Outcome:
    finding: Finding | None
    schedule: list[int]
    steps: int
    events: list[Event] | None = None
    # (pages a migrate operation found on its source node, pages it moved): stress/workload.py
    migrations: tuple[int, int] = (0, 0)
    # move_pages statuses of the run's move_pages operations: "node N" or the errno name
    move_pages: dict[str, int] = field(default_factory=dict)

    @property
    def trace_key(self) -> tuple[Any, ...]:
        """What must be identical between two runs of the same input."""
        f = self.finding
        return (
            tuple(self.schedule),
            self.steps,
            None if f is None else (f.signature, f.task, f.step),
            None if self.events is None else tuple(
                (s, t, e, tuple(sorted(d.items()))) for s, t, e, d in self.events
            ),
        )


def _is_model(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs model code: a module of the ``target`` package outside its
    kernel substrate (``target.mm``, a catalog override in ``target.bugs``...). By module
    name, not file path, which says nothing about a checkout that sits under a folder named
    ``target``."""
    if frame is None:
        return False
    module = frame.f_globals.get("__name__", "")
    return module.startswith("target.") and not module.startswith("target.kernel")


def _model_function(exc: BaseException) -> str:
    """The innermost model function (outside target.kernel) in the finding's traceback."""
    name = "?"
    tb = exc.__traceback__
    while tb is not None:
        if _is_model(tb.tb_frame):
            name = tb.tb_frame.f_code.co_name
        tb = tb.tb_next
    return name


class Execution:
    """The state of one run: run queue, scheduler, recorded schedule, outcome.

    Invariants:
        ``schedule`` holds one tid per decision, i.e. per pick with >= 2 runnable tasks.
        ``finding is not None`` implies ``over``.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        tasks: Sequence[ModelTask],
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        trace: bool = False,
    ) -> None:
        self.rq = Runqueue()
        self.scheduler = scheduler
        self.max_steps = max_steps
        self.schedule: list[int] = []
        self.finding: Finding | None = None
        self.over = False
        self.events: list[Event] | None = [] if trace else None
        # The richer protocol, fed only to a scheduler that has it: building every runnable
        # task's PendingOp costs an allocation per task per decision, which the others skip.
        self.pending_scheduler: PendingOpsScheduler | None = (
            scheduler if callable(getattr(scheduler, "next_task_pending", None))
            else None)  # type: ignore[assignment]
        # The step hooks: a strategy that must see every step, not only the decisions, has
        # ``observe(rq)`` (DPOR: the races between steps decide where it backtracks) or
        # ``observe_op(op)`` (SURW's remaining events). Only such a strategy's pick is wrapped,
        # so the hot path of every other strategy stays as it is.
        observe = getattr(scheduler, "observe", None)
        if callable(observe):
            self.pick = self._observing_rq(self.pick, observe)  # type: ignore[method-assign]
        observe_op = getattr(scheduler, "observe_op", None)
        if callable(observe_op):
            self.pick = _observing_op(self.pick, observe_op)  # type: ignore[method-assign]
        for name, fn in tasks:
            self.rq.spawn(name, fn())

    # -- tracing ------------------------------------------------------------------------------

    def tracer(self) -> Callable[[Event], None] | None:
        """The event sink to install: the model builds each :class:`Event`, we keep it."""
        return None if self.events is None else self.events.append

    # -- the decision -------------------------------------------------------------------------

    def pick(self) -> KTask | None:
        """Choose the task that runs next, or None when the execution is over.

        The hot path: every scheduling point of either executor comes here once. Its cost per
        point is measured in bench/executors.md; keep it a straight line of local loads.

        Raises:
            StressInternalError: the scheduler raised, or chose a task that cannot run.
        """
        rq = self.rq
        runnable = rq.runnable
        n = len(runnable)
        if n == 0 or self.over:
            if not self.over:
                self._end_without_runnable()
            return None
        step = rq.step = rq.step + 1
        if step > self.max_steps:
            self._livelock()
            return None
        if step >= rq.irq_due:
            task = self._due_irq()
        elif n == 1:
            task = runnable[0]
        else:
            cur = rq.current
            ps = self.pending_scheduler
            try:
                if ps is None:
                    tid = self.scheduler.next_task(
                        rq.runnable_tids, cur.tid if cur is not None else None, rq.yielding
                    )
                else:
                    tid = ps.next_task_pending(
                        rq.runnable_tids, cur.tid if cur is not None else None, rq.yielding,
                        [t.pending() for t in runnable],
                    )
                task = rq.tasks[tid]
            except Exception as exc:  # a strategy bug is a harness error, on every executor
                raise StressInternalError(
                    f"scheduler {self.scheduler!r} failed choosing among {rq.runnable_tids}: "
                    f"{exc!r}"
                ) from exc
            # ``task.tid != tid``: a negative index would otherwise pick some task silently.
            if task.wait_on is not None or task.finished or task.tid != tid:
                raise StressInternalError(
                    f"scheduler {self.scheduler!r} chose {tid!r}, not in {rq.runnable_tids}"
                )
            self.schedule.append(tid)
        rq.yielding = False
        if self.events is not None and task is not rq.current:
            self.events.append(Event(step, task.tid, "switch", {}))
        rq.current = task
        return task

    def _observing_rq(self, pick: Callable[[], KTask | None],
                      observe: Callable[[Runqueue | None], None]) -> Callable[[], KTask | None]:
        """``pick`` with ``observe(rq)`` at every step (DPOR's hook): after the step is counted
        and the max_steps check, before the choice; ``observe(None)`` when the execution ends.

        The same three cases as :meth:`pick`'s prologue: the end, then ``pick`` (which ends
        it) and None; the step past max_steps, ``pick`` alone (a livelock: no step to see);
        otherwise ``rq`` shown at the step ``pick`` is about to count, then ``pick``.
        """
        rq = self.rq

        def observed() -> KTask | None:
            if not rq.runnable or self.over:
                pick()
                observe(None)
                return None
            if rq.step < self.max_steps:
                rq.step += 1  # the count observe must see; pick counts it again
                observe(rq)
                rq.step -= 1
            return pick()

        return observed

    def _due_irq(self) -> KTask:
        """The interrupt actor, whose oldest bio is due (target.mm.page_io): it runs now, as
        a pending interrupt would, and that is not a decision (a replay reaches the same step
        with the same bio due). Off the hot path: only a world with asynchronous I/O sets a
        due step."""
        task = self.rq.irq_task
        if task is None or task.wait_on is not None or task.finished:
            raise StressInternalError(f"an interrupt is due but its actor {task!r} cannot run")
        return task

    # -- endings ------------------------------------------------------------------------------

    def task_done(self, task: KTask) -> None:
        if task.held:
            held = [h.describe() for h in task.held]
            self._record(
                task,
                KernelFinding(
                    "lock-misuse",
                    f"lock held when returning to user space: {', '.join(held)}",
                    {"held": held},
                    function="task_exit",
                ),
            )
            return
        self.rq.finish(task)

    def fail(self, task: KTask, exc: BaseException) -> None:
        """Record what escaped a model task: a finding, or a harness error (re-raised)."""
        if isinstance(exc, KernelFinding):
            self._record(task, exc)
            return
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise exc  # the user stopping the run is neither a finding nor a harness error
        if isinstance(exc, StressInternalError):
            # Raised by pick() (a scheduler error, e.g. a replay divergence) inside the task's
            # point; it unwound through the task but is not the task's fault.
            raise exc
        raise StressInternalError(f"harness or model error in task {task.name}: {exc!r}") from exc

    def _record(self, task: KTask | None, exc: KernelFinding) -> None:
        function = exc.function or _model_function(exc)
        self.finding = Finding(
            kind=exc.kind,
            message=exc.message,
            function=function,
            task=task.name if task is not None else "-",
            step=self.rq.step,
            details=exc.details,
        )
        self.over = True
        if self.events is not None:
            self.events.append(
                Event(self.rq.step, task.tid if task else -1, "finding", {"kind": exc.kind})
            )

    def _end_without_runnable(self) -> None:
        self.over = True
        waiting = [t for t in self.rq.tasks if not t.finished]
        if not waiting:
            return
        cycle = _wait_for_cycle(waiting)
        waits = {t.name: _describe_wait(t) for t in waiting}
        msg = (
            "deadlock: " + " -> ".join(cycle)
            if cycle
            else "deadlock: no task can run: " + "; ".join(f"{k} {v}" for k, v in waits.items())
        )
        classes = canonical_classes(
            getattr(t.wait_on, "lock_class", None).name  # type: ignore[union-attr]
            for t in waiting if getattr(t.wait_on, "lock_class", None))
        self._record(
            None,
            KernelFinding(
                "deadlock",
                msg,
                {"waits": waits, "cycle": cycle, "classes": classes},
                function=_blocked_function(waiting),
            ),
        )

    def _livelock(self) -> None:
        self.over = True
        self._record(
            self.rq.current,
            KernelFinding(
                "livelock",
                f"no progress: more than {self.max_steps} scheduling points",
                {"max_steps": self.max_steps,
                 "unfinished": [t.name for t in self.rq.tasks if not t.finished]},
                function=_running_function(self.rq.current),
            ),
        )

    def outcome(self) -> Outcome:
        return Outcome(self.finding, self.schedule, self.rq.step, self.events)


def _observing_op(pick: Callable[[], KTask | None],
                  observe_op: Callable[[PendingOp], None]) -> Callable[[], KTask | None]:
    """``pick``, then ``observe_op`` of what the picked task is about to do (SURW's hook)."""

    def observed() -> KTask | None:
        task = pick()
        if task is not None:
            observe_op(task.pending())
        return task

    return observed


def _describe_wait(task: KTask) -> str:
    on = task.wait_on
    if on is None:
        return "is runnable"
    owners: list[KTask] = getattr(on, "owners", lambda: [])()
    held_by = ", ".join(o.name for o in owners) or "nobody"
    return f"waits for {getattr(on, 'name', on)} (held by {held_by})"


def _wait_for_cycle(waiting: list[KTask]) -> list[str]:
    """The first wait-for cycle among blocked tasks, as 'task waits X held by task' steps."""
    for start in waiting:
        path: list[KTask] = []
        node: KTask | None = start
        while node is not None and node not in path:
            path.append(node)
            on = node.wait_on
            owners: list[KTask] = getattr(on, "owners", lambda: [])() if on is not None else []
            node = next((o for o in owners if o is not node), None)
        if node is not None:
            cyc = path[path.index(node):]
            return [f"{t.name} waits for {getattr(t.wait_on, 'name', '?')}" for t in cyc]
    return []


def _frame_function(coro: Any) -> str:
    """The innermost model function a suspended coroutine chain is in; outside any (a task
    preempted between two operations of its program), the innermost function that is not a
    kernel primitive in the scenario's program (stress/workload.py), e.g. ``run_op``: a
    signature ``livelock in ?`` says nothing."""
    name = outside = "?"
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if _is_model(frame):
            name = frame.f_code.co_name  # type: ignore[union-attr]
        elif frame is not None and _is_program(frame.f_globals.get("__name__", "")):
            outside = frame.f_code.co_name  # the same on every executor
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return name if name != "?" else outside


_HARNESS_PACKAGES = frozenset({"stress", "target", "migfuzz", "trio"})


def _is_program(module: str) -> bool:
    """Whether a frame of ``module`` is a task's own program: the scenario's operations
    (stress/workload.py), or a user's program written against :mod:`migfuzz.testing` (any
    module outside the harness, the model and trio), whose function then names a deadlock
    instead of ``deadlock in ?``."""
    return module == _WORKLOAD_MODULE or module.partition(".")[0] not in _HARNESS_PACKAGES


def _blocked_function(waiting: list[KTask]) -> str:
    return _frame_function(waiting[0].coro) if waiting else "?"


def _running_function(task: KTask | None) -> str:
    return _frame_function(task.coro) if task is not None else "?"
