"""Test your own concurrent program with migfuzz's schedulers: the public runtime API.

A program is an ``async def main()`` written against this module instead of pthreads:
:func:`spawn` / :meth:`Thread.join` for tasks, :class:`Shared` for shared variables,
:class:`Mutex` and :class:`Cond` for pthread's mutex and condition variable, :func:`check`
for ``assert``. Every access to a :class:`Shared` and every pthread-like operation is a
scheduling point with a typed pending operation (``target.kernel.PendingOp``: the object,
READ/WRITE/ACQUIRE/TRY/RELEASE), the same points the model of page migration has; between two
points a task runs atomically. A failed :func:`check` and a deadlock (no task can run, some
have not finished) are findings.

:func:`explore` runs ``main`` under one of our strategies (random walk, PCT, POS,
conflict-aware PCT, SURW, preemption-bounded DFS) for up to N schedules and returns the
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
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from stress import DEFAULT_MAX_STEPS, Finding, Outcome
from stress.executors import run_direct
from stress.schedulers import (
    ConflictPCTScheduler,
    DFSScheduler,
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
    current,
    preempt,
)

T = TypeVar("T")

Program = Callable[[], Coroutine[Any, Any, None]]
"""A program: a fresh ``main()`` coroutine per execution (it builds its own shared state)."""

STRATEGIES = ("random", "pct", "pos", "cpct", "surw", "dfs")


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


async def spawn(fn: Callable[..., Coroutine[Any, Any, None]], *args: Any,
                name: str | None = None) -> Thread:
    """``pthread_create``: a point, then a new runnable task running ``fn(*args)``."""
    rq = HOOKS.rq
    thread = Thread(name or f"{getattr(fn, '__name__', 'thread')}#{len(rq.tasks)}")
    await preempt(thread, WRITE)

    async def body() -> None:
        await fn(*args)
        thread._exited()

    thread.task = rq.spawn(thread.name, body())
    return thread


class Shared(Generic[T]):
    """A shared variable: each :meth:`read` and :meth:`write` is a scheduling point."""

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

    async def trylock(self) -> bool:
        await preempt(self, TRY)
        if self.owner is not None:
            return False
        self.owner = current()
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
    rq.block(current(), what)
    await HOOKS.point()


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
    exhausted: bool  # DFS only: the bounded search space was explored completely


def make_scheduler(strategy: str, seed: int = 0, *, depth: int = 3,
                   bound: int | None = 2, schedules: int | None = None) -> Scheduler:
    """A scheduler of ``strategy`` (:data:`STRATEGIES`) from :mod:`stress.schedulers`.

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
    raise ValueError(f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")


def run_once(main: Program, scheduler: Scheduler, *, max_steps: int = DEFAULT_MAX_STEPS,
             trace: bool = False) -> Outcome:
    """One execution of ``main`` under ``scheduler`` (its ``new_execution`` was called)."""
    return run_direct(scheduler, [("main", main)], max_steps=max_steps, trace=trace)


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
