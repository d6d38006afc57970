"""Tasks, the run queue and preemption points: the seam between the model and an executor.

The model is written as ``async def`` kernel code. It may give up the (virtual) CPU only at an
instrumented point: ``await preempt()`` before an access to shared state, a lock operation, or a
sleeping wait. Between two points a task runs atomically. The model's tasks stand for CPUs
running in parallel, so a spinlock only excludes other holders of the same lock.

This module owns the *state* of scheduling (which tasks exist, which are runnable, which runs)
but not the *policy* or the *mechanism*: an executor from ``stress`` installs itself with
:func:`install`, and from then on ``preempt()`` hands control to it. The kernel never imports
``stress`` or trio (dependency inversion, as shuttle's sync primitives call into its runtime).

Blocking is state, not a call: a task that must wait (a contended spinlock, a sleeping lock, a
page bit) is moved off the runnable list with :meth:`Runqueue.block` and then reaches a point;
the executor will not pick it until someone calls :meth:`Runqueue.wake`. A spinning CPU is
treated as blocked too: spinning changes nothing, and not scheduling it keeps the search space
finite and lets "nobody can run" mean deadlock.
"""

from __future__ import annotations

import bisect
import enum
import sys
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, NamedTuple

from ._bug import KernelFinding
from ._lockdep import LockClass, LockGraph


class Action(enum.IntEnum):
    """What a task is about to do to the object of its pending operation (loom's
    ``Operation`` action, fray's pending-operation kind)."""

    NONE = 0  # a point that touches no shared object: cond_resched, a task's start, an idle irq
    ACQUIRE = 1  # a blocking lock acquisition (spin_lock, down_*, lock_page)
    TRY = 2  # a trylock: takes the lock only if it is free, never waits
    RELEASE = 3  # the point right after a release (see Released): the release just done
    READ = 4  # a load of shared state (an unlocked pte peek, page->mapping, a count test)
    WRITE = 5  # a store or read-modify-write (a pte write, get_page, a mapcount change)


# Module constants, so that a point in the model is a global load, not an enum lookup.
NONE = Action.NONE
ACQUIRE = Action.ACQUIRE
TRY = Action.TRY
RELEASE = Action.RELEASE
READ = Action.READ
WRITE = Action.WRITE


class PendingOp(NamedTuple):
    """The operation a task will perform when it next runs: what a strategy that reasons
    about conflicts (POS, SURW, conflict-aware PCT, DPOR) needs of every runnable task.

    ``obj`` is the model object itself (identity matters, not its name): a lock (its class is
    ``obj.lock_class``), a ``Page``, an ``MmStruct`` (a pte: ``part`` is its address), a zone
    (``"free_list"``), the world's I/O lists (``"pending_writeback"``, ``"bio_queue"``).
    ``part`` says which part of it: a page's ``"count"``, ``"mapcount"``, ``"flags"``,
    ``"data"`` or ``"mapping"``; a pte's address; ``"read"`` for a shared rwsem acquisition;
    None for the rest of the locks. An anon_vma's vma list and the swap map are touched only
    under their locks (``anon_vma->lock``, ``swap_lock``), so the lock's ACQUIRE is their
    point. Two operations conflict when they name the same object and part and at least one
    of them is not a READ (two ``"read"`` acquisitions of one rwsem do not conflict).

    ``NONE`` (nothing shared: a task's first step, ``cond_resched``, a sleep until another
    task exits) and ``RELEASE`` (the point after a release, :class:`Released`) say what the
    task did or waits for, not an access to come.

    Built only for a scheduler that asks (:meth:`KTask.pending`); the hot path stores the
    three references in the task's slots and builds nothing.
    """

    tid: int
    obj: object
    part: object
    action: Action

    @property
    def lock_class(self) -> LockClass | None:
        """The lock class when the object is a lock (spinlock, rwsem, page lock), else None."""
        cls = getattr(self.obj, "lock_class", None)
        return cls if isinstance(cls, LockClass) else None


class LockFields(dict[str, Any]):
    """The fields of a lock event: a dict like any event's, carrying the lock's class.

    The class rides on the fields, not as a fifth element of :class:`Event`, so an event stays
    the 4-tuple every reader unpacks and the trace hash (built from the fields' items) is the
    one recorded before classes were carried: the class is a function of the lock instance
    the fields already name, so the hash loses nothing.
    """

    __slots__ = ("lock_class",)

    def __init__(self, lock_class: LockClass, /, **fields: Any) -> None:
        super().__init__(fields)
        self.lock_class = lock_class


class Event(NamedTuple):
    """One timeline event: at ``step``, task ``tid`` (-1: the execution itself) did ``kind``.

    ``kind`` is ``switch``, ``op``, ``finding``, ``lock``/``unlock`` or one of the model's
    events (``pte``, ``get_page``, ``mapcount``...); ``fields`` says with what. Lock events
    carry their lockdep class (:attr:`lock_class`), so readers never guess it from a name.
    """

    step: int
    tid: int
    kind: str
    fields: dict[str, Any]

    @property
    def lock_class(self) -> LockClass | None:
        """The class of the lock a ``lock``/``unlock`` event names, else None."""
        return self.fields.lock_class if type(self.fields) is LockFields else None


class KTask:
    """One model task: a CPU running one operation program.

    Invariants:
        ``wait_on is None`` iff the task is on ``Runqueue.runnable`` (or finished).
        ``held`` is the lockdep held-lock stack, innermost last.
        ``atomic > 0`` iff a spinlock (or an RCU read section) is held: sleeping is a finding.
    """

    __slots__ = ("atomic", "atomic_epoch", "coro", "finished", "held", "name", "op_action",
                 "op_obj", "op_part", "tid", "trio_task", "wait_on")

    def __init__(self, tid: int, name: str, coro: Coroutine[Any, Any, None]) -> None:
        self.tid = tid
        self.name = name
        self.coro = coro
        self.held: list[Any] = []  # lockdep HeldLock entries; typed in _lockdep
        self.wait_on: object | None = None
        self.atomic = 0
        # Counts the task's non-preemptible sections: it changes each time ``atomic`` leaves
        # 0, which is how KASAN tells an RCU reader that stayed inside its section since an
        # object was freed (SLAB_DESTROY_BY_RCU) from one that came back later.
        self.atomic_epoch = 0
        self.finished = False
        self.trio_task: Any = None  # the trio executor's handle; unused by the direct one
        # The pending operation (PendingOp without the tuple): set at every point before the
        # task suspends, so at a decision each runnable task's slots say what it does next.
        self.op_obj: object = None
        self.op_part: object = None
        self.op_action = NONE

    def pending(self) -> PendingOp:
        """The operation this task performs when it next runs (see :class:`PendingOp`)."""
        return PendingOp(self.tid, self.op_obj, self.op_part, self.op_action)

    def __repr__(self) -> str:
        return f"<task {self.tid} {self.name}>"


def enter_atomic(task: KTask) -> None:
    """preempt_disable(): a spinlock or an RCU read section begins."""
    if task.atomic == 0:
        task.atomic_epoch += 1
    task.atomic += 1


NEVER = sys.maxsize


class Runqueue:
    """Which tasks exist, which can run, and which one is running.

    Invariants:
        ``runnable`` is sorted by tid and ``runnable_tids == [t.tid for t in runnable]``:
        schedulers see tids in a fixed order, so a decision means the same on every executor.
        ``current`` is the task whose code is executing between two points.
    """

    def __init__(self) -> None:
        self.tasks: list[KTask] = []
        self.runnable: list[KTask] = []
        self.runnable_tids: list[int] = []
        self.current: KTask | None = None
        self.step = 0  # scheduling points passed; names events in KASAN and lockdep reports
        self.yielding = False  # set by yield_() for the next decision only
        self.lockdep = LockGraph()
        # The interrupt actor of the execution (asynchronous I/O completions), if it has one,
        # and the step by which it must run: the executor runs it then without a decision
        # (an interrupt is not the scheduler's choice once it is due). NEVER: nothing due.
        self.irq_task: KTask | None = None
        self.irq_due = NEVER
        # The accesses the running step made past its point (:func:`touch`), for a scheduler
        # that must know everything a step touches (DPOR); None: nobody asked, record nothing.
        self.touches: list[tuple[object, Action, object]] | None = None

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> KTask:
        task = KTask(len(self.tasks), name, coro)
        self.tasks.append(task)
        self.runnable.append(task)
        self.runnable_tids.append(task.tid)
        return task

    def block(self, task: KTask, on: object) -> None:
        """Take ``task`` off the runnable list until :meth:`wake`; ``on`` is what it awaits."""
        task.wait_on = on
        i = self.runnable_tids.index(task.tid)
        del self.runnable[i]
        del self.runnable_tids[i]

    def wake(self, task: KTask) -> None:
        if task.wait_on is None:
            return
        task.wait_on = None
        i = bisect.bisect_left(self.runnable_tids, task.tid)
        self.runnable.insert(i, task)
        self.runnable_tids.insert(i, task.tid)

    def finish(self, task: KTask) -> None:
        task.finished = True
        if task.wait_on is None and task.tid in self.runnable_tids:
            i = self.runnable_tids.index(task.tid)
            del self.runnable[i]
            del self.runnable_tids[i]
        for other in self.tasks:  # wait_for_other_task_exit sleepers
            if other.wait_on is TASK_EXIT:
                self.wake(other)


class _TaskExit:
    def __repr__(self) -> str:
        return "another task's exit"


TASK_EXIT = _TaskExit()


class _Hooks:
    """What the installed executor provides. Replaced as a whole by :func:`install`."""

    __slots__ = ("bare", "point", "rq", "tracer")

    def __init__(self) -> None:
        self.rq: Runqueue = Runqueue()
        self.point: Callable[[], Awaitable[None]] = _no_executor_point
        # The executor steps the model's coroutines itself (send(None)): a point is a bare
        # yield, which preempt() makes without calling ``point`` (one frame less per point).
        self.bare = False
        # Event sink for readable timelines; None on the fast path (fuzzing, stress).
        self.tracer: Callable[[Event], None] | None = None


def _no_executor_point() -> Awaitable[None]:
    raise RuntimeError("no executor installed: run model code through a stress executor")


@types.coroutine
def _bare_point() -> Generator[None, None, None]:
    yield


HOOKS = _Hooks()


def install(
    rq: Runqueue,
    point: Callable[[], Awaitable[None]] | None,
    tracer: Callable[[Event], None] | None = None,
) -> None:
    """Install an executor: its run queue, its preemption point and an optional event tracer.

    ``point`` None: the executor steps the model's coroutines with ``send(None)`` itself (the
    direct executor), so a point is a bare ``yield`` out of the coroutine chain.
    """
    HOOKS.rq = rq
    HOOKS.point = _bare_point if point is None else point
    HOOKS.bare = point is None
    HOOKS.tracer = tracer


def uninstall() -> None:
    install(Runqueue(), _no_executor_point, None)


def current() -> KTask:
    task = HOOKS.rq.current
    if task is None:
        raise RuntimeError("no current task: model code runs only inside an executor")
    return task


@types.coroutine
def preempt(
    obj: object = None, action: Action = NONE, part: object = None
) -> Generator[Any, Any, None]:
    """A scheduling point: the executor may run other tasks before this one continues.

    ``obj``, ``action`` and ``part`` name what the task does right after the point (its
    :class:`PendingOp`): ``await preempt(page, WRITE, "count")`` before ``get_page``'s
    increment. They are stored in the current task's slots, three stores and no allocation,
    because this is the hot path of every executor (bench/executors.md).

    A generator, not a function returning the executor's awaitable: under the direct
    executor the point is this generator's own ``yield``, one Python frame less per point,
    which pays for the stores. Outside an executor it raises when awaited (not when called:
    calling it runs nothing, as calling any coroutine function does).
    """
    hooks = HOOKS
    task = hooks.rq.current
    if task is not None:  # None only outside an executor, where the point raises
        task.op_obj = obj
        task.op_action = action
        task.op_part = part
    if hooks.bare:
        yield
    else:
        yield from hooks.point()  # type: ignore[misc]


def touch(obj: object, action: Action, part: object = None) -> None:
    """An access the running step makes past its point, with no point of its own.

    The model has a point before each access whose interleaving its races are about; code
    after a point runs on to the next one, and shared accesses sit there because no race of
    the kernel of the time turns on being preempted right before them: the process table and
    ``task->mm`` read on entering a system call and written by fork and exit, ``mm_users``
    (an atomic in the kernel), the bio queue and a swap slot's data, and every access to a
    page's fields and bits (recorded by ``target.mm.types.TracedPage`` and
    :class:`TracedWaitBit` rather than here). Preemption-based strategies need no point there;
    DPOR does need to know them, or two steps that do not commute look independent and it
    skips an order (tests/test_dpor.py: the same final states and findings as DFS).

    Recorded only when a scheduler asked (``Runqueue.touches`` set): one attribute load and
    a test otherwise, no allocation. ``obj``, ``action`` and ``part`` as for :func:`preempt`.
    """
    log = HOOKS.rq.touches
    if log is not None:
        log.append((obj, action, part))


def set_pending(task: KTask, obj: object, action: Action, part: object = None) -> None:
    """Name the operation ``task`` performs when it next runs, for a point not reached
    through :func:`preempt` (a lock's own points, a release, a sleep)."""
    task.op_obj = obj
    task.op_action = action
    task.op_part = part


async def _point_after_release() -> None:
    await HOOKS.point()


class Released:
    """What a release returns: awaiting it is the scheduling point right after the release.

    The release itself names the point's pending operation (``RELEASE`` of that lock, set by
    the unlock before it returns this): the release is done, but other CPUs see its effect
    only from this point on, which is what a conflict-aware strategy needs to know of it.

    On an SMP machine another CPU can run the instant a lock is dropped, so everything the
    releasing task does next (a ``get_page`` after ``spin_unlock``) must be interleavable with
    it. ``await lock.unlock()`` is that point. A release is also callable from a plain
    function (``swap_writepage``, a test): not awaiting it drops only the point, never the
    release, because the release has already happened when this object is returned.
    tests/test_kernel_invariants.py checks that every release in an ``async def`` of the
    model is awaited.
    """

    __slots__ = ()
    # Off only to measure what the points cost (bench/release_points.md): never in a campaign.
    enabled = True

    def __await__(self) -> Generator[Any, None, None]:
        if Released.enabled:
            yield from _point_after_release().__await__()


RELEASED = Released()


def trace(event: str, **fields: Any) -> None:
    """Record a timeline event (refcount, pte ...) when a tracer is installed."""
    tracer = HOOKS.tracer
    if tracer is not None:
        _emit(tracer, event, fields)


def trace_lock(event: str, lock: Any, **fields: Any) -> None:
    """Record a ``lock``/``unlock`` event of ``lock`` with its class, when tracing."""
    tracer = HOOKS.tracer
    if tracer is not None:
        _emit(tracer, event, LockFields(lock.lock_class, lock=lock.name, **fields))


def _emit(tracer: Callable[[Event], None], event: str, fields: dict[str, Any]) -> None:
    rq = HOOKS.rq
    cur = rq.current
    tracer(Event(rq.step, cur.tid if cur is not None else -1, event, fields))


def might_sleep(what: str) -> None:
    """``might_sleep()``: sleeping with a spinlock held is a finding (reference I9)."""
    task = HOOKS.rq.current
    if task is not None and task.atomic:
        held = [h.lock.name for h in task.held if h.lock.spinning]
        raise KernelFinding(
            "sleep-in-atomic",
            f"BUG: sleeping function called from invalid context ({what})",
            {"task": task.name, "held": held, "op": what},
        )


async def sleep_on(what: object) -> None:
    """Sleep until another task wakes us with ``HOOKS.rq.wake``; the caller queued us first.

    The pending operation stays what the caller set at its point (the acquire it retries
    when woken, the bit it waits on): no point lies between that one and this sleep."""
    rq = HOOKS.rq
    task = rq.current
    assert task is not None  # harness: a point runs only inside an executor
    rq.block(task, what)
    await HOOKS.point()


def other_tasks_alive() -> bool:
    """Whether any model task but the current one has yet to finish. An idle interrupt
    actor (:func:`irq_idle`) does not count: it only acts on I/O the others submit."""
    rq = HOOKS.rq
    irq = rq.irq_task
    return any(not t.finished and not (t is irq and t.wait_on is TASK_EXIT)
               for t in rq.tasks if t is not rq.current)


async def irq_idle() -> None:
    """The interrupt actor has nothing in flight: sleep until :func:`raise_irq` or a task's
    exit wakes it.

    Tasks waiting on another task's exit (swapoff's sweep) are woken by going idle only when
    no other task is left that could still make the progress they wait for: then the I/O
    was the last work in flight, and they must look again (to finish, or to report the
    hang). Waking them on every idle would let a sweep that submits its own reads wake
    itself through their completions forever, and a strict-priority scheduler (PCT) would
    never run the exiting task the sweep waits for: a livelock of the model, not of the
    kernel, where that task runs on another CPU (tests/test_swap_io.py has the run)."""
    rq = HOOKS.rq
    task = rq.current
    assert task is not None and task is rq.irq_task  # harness: only the irq actor idles
    others = [t for t in rq.tasks if t is not task and not t.finished]
    if all(t.wait_on is TASK_EXIT for t in others):
        for other in others:
            rq.wake(other)
    rq.block(task, TASK_EXIT)
    set_pending(task, None, NONE)
    await HOOKS.point()


def raise_irq(due: int) -> None:
    """Work for the interrupt actor, to be done at the latest at step ``due``: wake it."""
    rq = HOOKS.rq
    if rq.irq_task is not None:
        rq.wake(rq.irq_task)
        rq.irq_due = min(rq.irq_due, due)


async def wait_for_other_task_exit() -> None:
    """Sleep until another task finishes: how the model runs a kernel loop that can only
    make progress through other CPUs' work (swapoff's sweep). A spinning CPU changes
    nothing, so it is treated as blocked, as a contended spinlock is: the search space stays
    finite and no scheduler can starve the others with it. The caller checks
    :func:`other_tasks_alive` first; with none alive this would sleep forever."""
    rq = HOOKS.rq
    task = rq.current
    assert task is not None  # harness: only a running task can sleep
    rq.block(task, TASK_EXIT)
    set_pending(task, None, NONE)
    await HOOKS.point()


async def cond_resched() -> None:
    """``cond_resched()``: a sleep point that lets any other task run."""
    might_sleep("cond_resched")
    await preempt()


async def yield_() -> None:
    """``yield()``: like cond_resched, but tells the scheduler the task asked to give way."""
    might_sleep("yield")
    HOOKS.rq.yielding = True
    await preempt()
