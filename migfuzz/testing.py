"""Test your own concurrent program with migfuzz's schedulers: the public runtime API.

A program is an ``async def main()`` written against this module instead of pthreads:
:func:`spawn` / :meth:`Thread.join` for tasks, :class:`Shared` for shared variables,
:class:`Mutex` and :class:`Cond` for pthread's mutex and condition variable, :func:`check`
for ``assert``; :meth:`Shared.exchange`, :meth:`Shared.compare_exchange` and
:meth:`Shared.fetch_add` for atomic read-modify-writes, :func:`yield_` for ``sched_yield``.
Every access to a :class:`Shared` and every pthread-like operation is a scheduling point
with a typed pending operation (``target.kernel.PendingOp``: the object,
READ/WRITE/ACQUIRE/TRY/RELEASE), the same points the model of page migration has; between two
points a task runs atomically. A failed :func:`check` and a deadlock (no task can run, some
have not finished) are findings.

:func:`explore` runs ``main`` under one of our strategies (random walk, PCT, POS,
conflict-aware PCT, SURW, preemption-bounded DFS, DPOR) for up to N schedules and returns the
first failing one; :func:`replay` re-runs a schedule exactly::

    from migfuzz.testing import Shared, check, explore, spawn

    async def main() -> None:
        x = Shared("x", 0)
        async def inc() -> None:
            await x.write(await x.read() + 1)
        a, b = await spawn(inc), await spawn(inc)
        await a.join(); await b.join()
        check(await x.read() == 2, "lost update")

    result = explore(main, "pct", schedules=1000, seed=1)

Why here (``migfuzz.testing``, like ``trio.testing``): it is what a user of migfuzz imports
to test code that is not the model, so it sits beside the service's public modules, not inside
``stress`` (the harness's internals) or ``target`` (the model, which must not depend on it).
It adds no executor and no scheduler: executions run on :func:`stress.executors.run_direct`
with the schedulers of :mod:`stress.schedulers`, so a strategy added there works here too.
SCTBench ported onto it lives in ``bench/sctbench/``.

Not modelled (ours): spurious condition-variable wakeups; a relocked default mutex blocks its
owner forever, as ``PTHREAD_MUTEX_NORMAL`` does, so it ends as a deadlock finding.

The same module tests the model of page migration from a user's pytest suite (docs/testing.md,
docs/testing_example.py): Hypothesis strategies :func:`scenarios` (the swarm generator's
space, each choice a draw, so it shrinks) and :func:`schedules` (:class:`Preemptions` of a
scenario, shrinking toward fewer), :func:`run_schedule` for one drawn pair, and the helpers
:func:`check_scenario` (N schedules under a strategy) and :func:`check_schedule` (one drawn
pair), which fail with :class:`ScenarioFailed`: the finding's timeline and the ``migfuzz
repro FILE`` command of the finding file they saved.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from stress import DEFAULT_MAX_STEPS, Finding, Outcome
from stress.executors import run_direct
from stress.schedulers import (
    ConflictPCTScheduler,
    DFSScheduler,
    DPORScheduler,
    PCTScheduler,
    POSScheduler,
    RandomScheduler,
    ReplayScheduler,
    Scheduler,
    SURWScheduler,
)
from target.kernel import (
    ACQUIRE,
    HOOKS,
    READ,
    RELEASE,
    TRY,
    WRITE,
    KernelFinding,
    KTask,
    Runqueue,
    current,
    preempt,
)
from target.kernel import yield_ as _point_yielding

from ._testing_check import ScenarioFailed as ScenarioFailed
from ._testing_check import check_scenario as check_scenario
from ._testing_check import check_schedule as check_schedule
from ._testing_draw import Preemptions as Preemptions
from ._testing_draw import run_schedule as run_schedule
from ._testing_draw import scenarios as scenarios
from ._testing_draw import schedules as schedules

T = TypeVar("T")


Program = Callable[[], Coroutine[Any, Any, None]]
"""A program: a fresh ``main()`` coroutine per execution (it builds its own shared state)."""

STRATEGIES = ("random", "pct", "pos", "cpct", "surw", "dfs", "dpor")


class Thread:
    """A spawned task (``pthread_t``); :meth:`join` waits for it to return."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.task: KTask | None = None
        self.done = False
        self._joiners: list[KTask] = []

    def __repr__(self) -> str:
        return f"<thread {self.name}>"

    def owners(self) -> list[KTask]:
        """Who a joiner waits for: the deadlock report follows this edge."""
        return [] if self.task is None or self.done else [self.task]

    async def join(self) -> None:
        """``pthread_join``: a point, then sleep until the thread has returned."""
        await preempt(self, ACQUIRE)
        while not self.done:
            self._joiners.append(current())
            await _sleep_on(self)

    def _exited(self) -> None:
        self.done = True
        rq = HOOKS.rq
        for t in self._joiners:
            rq.wake(t)
        self._joiners.clear()
        _changed()  # a yielding task may wait for this thread's end


async def spawn(fn: Callable[..., Coroutine[Any, Any, None]], *args: Any,
                name: str | None = None) -> Thread:
    """``pthread_create``: a point, then a new runnable task running ``fn(*args)``."""
    rq = HOOKS.rq
    thread = Thread(name or f"{getattr(fn, '__name__', 'thread')}#{len(rq.tasks)}")
    await preempt(thread, WRITE)

    async def body() -> None:
        await fn(*args)
        thread._exited()

    task = thread.task = rq.spawn(thread.name, body())
    # Its first step runs ``fn`` up to its first point, which by this module's contract
    # touches nothing shared (every shared access is a Shared, Mutex, Cond or join point):
    # a read of its own start (task-local, class _Start), where a model task starts at a
    # NONE point and DPOR learns what its first step touches (target.kernel.touch).
    task.op_obj, task.op_action = _START, READ
    return thread


class _Start:
    """What a thread's first step reads: nothing any task writes."""
    task_local = True  # no access for POS, cpct and SURW (stress/schedulers/_conflict.py)

    def __repr__(self) -> str:
        return "<thread start>"


_START = _Start()


class Shared(Generic[T]):
    """A shared variable: each :meth:`read` and :meth:`write` is a scheduling point, and so
    is each atomic read-modify-write (:meth:`exchange`, :meth:`compare_exchange`,
    :meth:`fetch_add`: C11/C++ ``std::atomic``, Win32 ``Interlocked*``), as one point."""

    def __init__(self, name: str, value: T) -> None:
        self.name = name
        self._value = value

    def __repr__(self) -> str:
        return f"<shared {self.name}>"

    async def read(self) -> T:
        await preempt(self, READ)
        return self._value

    async def write(self, value: T) -> None:
        await preempt(self, WRITE)
        self._store(value)

    async def exchange(self, value: T) -> T:
        """``atomic_exchange`` / ``InterlockedExchange``: store ``value``, return the old one."""
        await preempt(self, WRITE)
        old = self._value
        self._store(value)
        return old

    async def compare_exchange(self, expected: T, desired: T) -> T:
        """``InterlockedCompareExchange`` / ``compare_exchange_strong``: store ``desired``
        only if the value equals ``expected``; return the value found (it succeeded iff that
        equals ``expected``). A WRITE point even when it fails, as the RMW instruction is."""
        await preempt(self, WRITE)
        old = self._value
        if old == expected:
            self._store(desired)
        return old

    async def fetch_add(self: Shared[int], delta: int) -> int:
        """``atomic_fetch_add`` / ``InterlockedExchangeAdd``: add ``delta``, return the old."""
        await preempt(self, WRITE)
        old = self._value
        self._store(old + delta)
        return old

    def _store(self, value: T) -> None:
        if value is not self._value and value != self._value:
            _changed()  # a yielding task waits for a change; a same-value store is none
        self._value = value


class Mutex:
    """``pthread_mutex_t`` (default kind): lock, trylock, unlock, each a scheduling point."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.owner: KTask | None = None
        self._waiters: deque[KTask] = deque()

    def __repr__(self) -> str:
        return f"<mutex {self.name}>"

    def owners(self) -> list[KTask]:
        return [] if self.owner is None else [self.owner]

    async def lock(self) -> None:
        await preempt(self, ACQUIRE)
        me = current()
        while self.owner is not None:
            self._waiters.append(me)
            await _sleep_on(self)
        self.owner = me
        _changed()

    async def trylock(self) -> bool:
        await preempt(self, TRY)
        if self.owner is not None:
            return False
        self.owner = current()
        _changed()
        return True

    async def unlock(self) -> None:
        """Release, then the point right after it (another CPU may run at once)."""
        me = current()
        if self.owner is not me:
            raise KernelFinding("lock-not-held", f"unlock of {self.name} not held by "
                                f"{me.name}", {"lock": self.name}, function=_caller())
        self._release()
        await preempt(self, RELEASE)

    def _release(self) -> None:
        self.owner = None
        _changed()
        if self._waiters:  # the woken waiter retries: another task may take it first
            HOOKS.rq.wake(self._waiters.popleft())


class Cond:
    """``pthread_cond_t``: wait (releases the mutex, reacquires it), signal, broadcast."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._waiters: deque[KTask] = deque()

    def __repr__(self) -> str:
        return f"<cond {self.name}>"

    async def wait(self, mutex: Mutex) -> None:
        await preempt(self, WRITE)
        me = current()
        if mutex.owner is not me:
            raise KernelFinding("lock-not-held", f"cond wait on {self.name} without "
                                f"{mutex.name}", {"lock": mutex.name}, function=_caller())
        self._waiters.append(me)
        mutex._release()  # atomically with the enqueue, as pthread_cond_wait promises
        await _sleep_on(self)
        await mutex.lock()

    async def signal(self) -> None:
        await preempt(self, WRITE)
        if self._waiters:
            HOOKS.rq.wake(self._waiters.popleft())

    async def broadcast(self) -> None:
        await preempt(self, WRITE)
        while self._waiters:
            HOOKS.rq.wake(self._waiters.popleft())


async def _sleep_on(what: object) -> None:
    """Block the current task on ``what`` (it queued itself first) until someone wakes it;
    the executor's point, as the model's ``sleep_on`` (a private of ``target.kernel``)."""
    rq = HOOKS.rq
    _changed()  # one task fewer can run: a yielding one may be the one that must
    rq.block(current(), what)
    await HOOKS.point()


# -- sched_yield ----------------------------------------------------------------------------
#
# A busy-wait loop (spin until a flag changes, sched_yield() between tries) would let an
# unfair scheduler run the spinner forever: our PCT keeps a yielding task's priority
# (stress/schedulers/pct.py says why), so it would end every such run as a livelock.
# SCTBench's own schedulers make a yield give way: its PCT drops the yielder to the lowest
# priority, its DFS disables it for one step (maple/src/systematic/pct_random.cc, chess.cc).
# Here the runtime does it, for every strategy alike: a task that yields when nothing has
# changed since its previous yield (so its next try would see what its last one saw) sleeps
# until something changes, when another task can run. A change: a store that changes a
# Shared's value, a mutex changing hands, a task sleeping or ending (another may now be the
# only one left to run). With no other task runnable it does not sleep: a spinner alone
# spins on, and the run ends as a livelock, which is what it is.


class _Yields:
    """One execution's yield bookkeeping; yielders sleep on it (named in a deadlock)."""

    name = "sched_yield"

    def __init__(self) -> None:
        self.version = 0  # changes so far
        self.seen: dict[int, int] = {}  # tid -> version when it last yielded
        self.sleepers: list[KTask] = []

    def owners(self) -> list[KTask]:
        return []


_YIELDS: WeakKeyDictionary[Runqueue, _Yields] = WeakKeyDictionary()


def _yields() -> _Yields:
    rq = HOOKS.rq
    state = _YIELDS.get(rq)
    if state is None:
        state = _YIELDS[rq] = _Yields()
    return state


def _changed() -> None:
    """Shared state changed: wake the tasks that yielded waiting for a change."""
    state = _yields()
    state.version += 1
    if state.sleepers:
        rq = HOOKS.rq
        for t in state.sleepers:
            rq.wake(t)
        state.sleepers.clear()


async def yield_() -> None:
    """``sched_yield()`` (``sleep(0)``, Win32 ``Sleep(0)``/``SwitchToThread``): a point at
    which the task gives way; if nothing changed since its previous yield and another task
    can run, it sleeps until something changes (see the comment above)."""
    rq = HOOKS.rq
    await _point_yielding()  # the model's yield(): a point the scheduler sees as a yield
    state = _yields()
    me = current()
    if state.seen.get(me.tid) == state.version and any(t is not me for t in rq.runnable):
        state.sleepers.append(me)
        rq.block(me, state)
        await HOOKS.point()
    state.seen[me.tid] = state.version


def check(condition: object, message: str = "assertion failed") -> None:
    """``assert``: a false ``condition`` is a finding of kind ``bug``; not a point."""
    if not condition:
        raise KernelFinding("bug", f"assertion failed: {message}", {"assertion": message},
                            function=_caller())


def _caller() -> str:
    """The user function that called into this module (the finding's ``function``)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_code.co_name


@dataclass
class Result:
    """What :func:`explore` found: the first failing execution, if any, and the cost."""

    finding: Finding | None
    schedule: list[int]  # the failing execution's decisions (replay with :func:`replay`)
    schedules: int  # executions run, the failing one included
    exhausted: bool  # DFS and DPOR only: the (bounded) search was explored completely


def make_scheduler(strategy: str, seed: int = 0, *, depth: int = 3,
                   bound: int | None = 2, schedules: int | None = None) -> Scheduler:
    """A scheduler of ``strategy`` (:data:`STRATEGIES`) from :mod:`stress.schedulers`;
    ``bound`` is the preemption bound of dfs and dpor (None: every schedule, every trace).

    ``surw`` measures its estimates in its first execution (a random walk, counted among
    ``schedules``), as shuttle's and Fray's do."""
    if strategy == "random":
        return RandomScheduler(seed, iterations=schedules)
    if strategy == "pct":
        return PCTScheduler(seed, depth=depth, iterations=schedules)
    if strategy == "cpct":
        return ConflictPCTScheduler(seed, depth=depth, iterations=schedules)
    if strategy == "pos":
        return POSScheduler(seed, iterations=schedules)
    if strategy == "surw":
        return SURWScheduler(seed, iterations=schedules)
    if strategy == "dfs":
        return DFSScheduler(bound, max_executions=schedules)
    if strategy == "dpor":
        return DPORScheduler(bound, max_executions=schedules, seed=seed or None)
    raise ValueError(f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")


def run_once(main: Program, scheduler: Scheduler, *, max_steps: int = DEFAULT_MAX_STEPS,
             trace: bool = False) -> Outcome:
    """One execution of ``main`` under ``scheduler`` (its ``new_execution`` was called)."""

    async def root() -> None:
        await main()
        _changed()  # main's end, as a thread's: a yielding thread may wait for it

    return run_direct(scheduler, [("main", root)], max_steps=max_steps, trace=trace)


def explore(main: Program, strategy: str = "random", *, schedules: int = 1000, seed: int = 0,
            depth: int = 3, bound: int | None = 2,
            max_steps: int = DEFAULT_MAX_STEPS) -> Result:
    """Run ``main`` for up to ``schedules`` executions; stop at the first finding."""
    sched = make_scheduler(strategy, seed, depth=depth, bound=bound, schedules=schedules)
    n = 0
    while n < schedules and sched.new_execution():
        n += 1
        out = run_once(main, sched, max_steps=max_steps)
        if out.finding is not None:
            return Result(out.finding, out.schedule, n, False)
    exhausted = bool(getattr(sched, "exhausted", False))
    return Result(None, [], n, exhausted)


def replay(main: Program, schedule: Sequence[int], *,
           max_steps: int = DEFAULT_MAX_STEPS, trace: bool = False) -> Outcome:
    """Re-run the execution that made exactly the decisions ``schedule``."""
    sched = ReplayScheduler(schedule)
    sched.new_execution()
    return run_once(main, sched, max_steps=max_steps, trace=trace)
