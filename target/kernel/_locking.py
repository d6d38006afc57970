"""Kernel locks for the model: spinlock_t, rw_semaphore, and bit locks with a wait queue.

Every acquire is a scheduling point (taken *before* the attempt, so another CPU can get there
first) and goes through lockdep *before* waiting, so an order that could deadlock is reported
even in the schedule where it does not. Every release is followed by a point too: it returns
:data:`RELEASED`, and ``await lock.unlock()`` lets another CPU run the instant the lock is free,
before the releasing task's next statement (the get-after-unlock race of the catalog lives in
exactly that gap).

Waiters are woken all at once and race again (a spinlock has no queue; a page bit's wait
queue wakes every waiter too), except for the rw_semaphore, which hands the lock over in FIFO
order as the 2006 rwsem does (``__rwsem_do_wake``). A woken waiter's retry is another point.

Every blocking path is the same two steps, as trio's ``ParkingLot`` underlies its primitives:
try, and if that fails park on the lock's :class:`WaitQueue` and try again when woken. Only
the rw_semaphore's hand-off differs (its waiters are granted the lock before they wake, in
FIFO order), and it stays its own policy.
"""

from __future__ import annotations

from typing import Any

from . import _lockdep
from ._bug import KernelFinding
from ._kasan import KObject, kasan_check
from ._lockdep import LockClass
from ._sched import (
    ACQUIRE,
    HOOKS,
    READ,
    RELEASE,
    RELEASED,
    TRY,
    WRITE,
    KTask,
    Released,
    current,
    enter_atomic,
    might_sleep,
    preempt,
    set_pending,
    sleep_on,
    touch,
    trace_lock,
)


class WaitQueue:
    """``wait_queue_head_t`` reduced to what every lock here needs: park the current task
    until the next :meth:`wake_all`, which wakes every parked task (each retries; the
    scheduler decides who wins).

    Invariant: every task in ``waiters`` is blocked on the lock that owns this queue.
    """

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: list[KTask] = []

    async def park(self, task: KTask, on: object) -> None:
        """Sleep until woken; ``on`` is the lock, what the deadlock report names."""
        self.waiters.append(task)
        await sleep_on(on)

    def wake_all(self) -> None:
        if self.waiters:
            rq = HOOKS.rq
            for w in self.waiters:
                rq.wake(w)
            self.waiters.clear()


def _acquire_point(lock: Any, what: str) -> KTask:
    """The prologue of every acquire after its scheduling point (``preempt(lock, ACQUIRE)``
    or ``TRY``, which names the lock as the task's pending operation): the running task,
    and KASAN's check of the object embedding the lock."""
    task = HOOKS.rq.current
    assert task is not None  # harness: a point runs only inside an executor
    if lock.obj is not None:
        kasan_check(lock.obj, f"{what}({lock.name})")
    return task


class spinlock_t:
    """``spinlock_t``. Holding one makes the task atomic: it may not sleep.

    Invariants:
        ``owner`` is the holder or None; ``owner.atomic >= 1`` while it holds it.
        ``waiters`` holds blocked tasks spinning on this lock; empty when ``owner`` is None.
    """

    __slots__ = ("lock_class", "name", "obj", "owner", "waiters")
    spinning = True

    def __init__(self, lock_class: LockClass, name: str, obj: KObject | None = None) -> None:
        self.lock_class = lock_class
        self.name = name
        self.obj = obj  # the object embedding the lock, checked by KASAN
        self.owner: KTask | None = None
        self.waiters = WaitQueue()

    def __repr__(self) -> str:
        return f"<spinlock {self.name}>"

    def owners(self) -> list[KTask]:
        return [self.owner] if self.owner is not None else []

    async def lock(self, subclass: int = 0) -> None:
        """``spin_lock`` (``spin_lock_nested`` with a subclass)."""
        await preempt(self, ACQUIRE)
        task = _acquire_point(self, "spin_lock")
        rq = HOOKS.rq
        _lockdep.acquire(task, rq.lockdep, rq.step, self, subclass, False, False)
        # The task counts as atomic while it spins: it has preemption disabled already.
        enter_atomic(task)
        while self.owner is not None:
            await self.waiters.park(task, self)
        self.owner = task
        if HOOKS.tracer is not None:
            trace_lock("lock", self)

    async def trylock(self) -> bool:
        """``spin_trylock``: take the lock if free, never wait."""
        await preempt(self, TRY)
        task = _acquire_point(self, "spin_trylock")
        if self.owner is not None:
            return False
        rq = HOOKS.rq
        _lockdep.acquire(task, rq.lockdep, rq.step, self, 0, True, False)
        enter_atomic(task)
        self.owner = task
        trace_lock("lock", self, trylock=True)
        return True

    def unlock(self) -> Released:
        """``spin_unlock``; await the result for the point after the release."""
        task = current()
        if self.obj is not None:
            kasan_check(self.obj, f"spin_unlock({self.name})")
        if self.owner is not task:
            raise KernelFinding(
                "lock-not-held",
                f"spin_unlock of {self.name} by {task.name}, owner "
                f"{self.owner.name if self.owner else 'none'}",
                {"lock": self.name},
            )
        _lockdep.release(task, self)
        self.owner = None
        task.atomic -= 1
        self.waiters.wake_all()
        if HOOKS.tracer is not None:
            trace_lock("unlock", self)
        set_pending(task, self, RELEASE)
        return RELEASED


class rw_semaphore:
    """``struct rw_semaphore`` (mmap_sem): sleeping, FIFO hand-off between readers and writers.

    Invariants:
        ``writer is not None`` implies ``not readers``.
        Every queued waiter is blocked on this semaphore; a granted waiter is woken holding it.
    """

    __slots__ = ("lock_class", "name", "obj", "queue", "readers", "writer")
    spinning = False

    def __init__(self, lock_class: LockClass, name: str, obj: KObject | None = None) -> None:
        self.lock_class = lock_class
        self.name = name
        self.obj = obj
        self.readers: list[KTask] = []
        self.writer: KTask | None = None
        self.queue: list[tuple[KTask, bool]] = []  # (task, wants_write), FIFO

    def __repr__(self) -> str:
        return f"<rwsem {self.name}>"

    def owners(self) -> list[KTask]:
        return [self.writer] if self.writer is not None else list(self.readers)

    async def _down(self, write: bool, subclass: int) -> None:
        await preempt(self, ACQUIRE, None if write else "read")
        task = _acquire_point(self, "down")
        rq = HOOKS.rq
        # lockdep before might_sleep: an acquisition that is both against the lock order and
        # in atomic context is reported as the order violation, the more specific diagnosis.
        _lockdep.acquire(task, rq.lockdep, rq.step, self, subclass, False, not write)
        might_sleep("down_write" if write else "down_read")
        free = self.writer is None and not self.queue and (not write or not self.readers)
        if free:
            if write:
                self.writer = task
            else:
                self.readers.append(task)
        else:
            self.queue.append((task, write))
            await sleep_on(self)  # woken by _grant() already holding the semaphore
        if HOOKS.tracer is not None:
            trace_lock("lock", self, read=not write)

    async def down_read(self) -> None:
        await self._down(False, 0)

    async def down_read_trylock(self) -> bool:
        """``down_read_trylock``: take it for read only if that needs no wait (no writer,
        nobody queued: the FIFO hand-off is not jumped). A trylock to lockdep."""
        await preempt(self, TRY, "read")
        task = _acquire_point(self, "down_read_trylock")
        if self.writer is not None or self.queue:
            return False
        rq = HOOKS.rq
        _lockdep.acquire(task, rq.lockdep, rq.step, self, 0, True, True)
        self.readers.append(task)
        if HOOKS.tracer is not None:
            trace_lock("lock", self, read=True)
        return True

    async def down_write(self, subclass: int = 0) -> None:
        """``down_write`` (``down_write_nested`` with a subclass)."""
        await self._down(True, subclass)

    def _release(self, write: bool) -> None:
        task = current()
        if write:
            if self.writer is not task:
                raise KernelFinding(
                    "lock-not-held", f"up_write of {self.name} not held by {task.name}"
                )
            self.writer = None
        else:
            if task not in self.readers:
                raise KernelFinding(
                    "lock-not-held", f"up_read of {self.name} not held by {task.name}"
                )
            self.readers.remove(task)
        _lockdep.release(task, self)
        self._grant()
        if HOOKS.tracer is not None:
            trace_lock("unlock", self, read=not write)
        set_pending(task, self, RELEASE, None if write else "read")

    def _grant(self) -> None:
        rq = HOOKS.rq
        while self.queue and self.writer is None:
            task, write = self.queue[0]
            if write:
                if self.readers:
                    return
                self.writer = task
                del self.queue[0]
                rq.wake(task)
                return
            self.readers.append(task)
            del self.queue[0]
            rq.wake(task)

    def up_read(self) -> Released:
        """``up_read``; await the result for the point after the release."""
        self._release(False)
        return RELEASED

    def up_write(self) -> Released:
        """``up_write``; await the result for the point after the release."""
        self._release(True)
        return RELEASED


class WaitBit:
    """A flag bit with a wait queue: PG_locked (a sleeping lock) and PG_writeback (a state).

    With a ``lock_class`` the bit is a lock to lockdep (``lock_page``/``unlock_page``); without
    one (PG_writeback) it is a condition that someone else, I/O completion, clears.

    Invariants:
        ``owner`` is set iff ``is_set`` and the bit is a lock, unless ``io`` (the holder
        handed it to the I/O it submitted: :meth:`release_to_io`).
        ``waiters`` are tasks blocked until the bit is clear.
    """

    __slots__ = ("io", "is_set", "lock_class", "name", "owner", "waiters")
    spinning = False
    obj = None  # a page flag bit: the page's own KASAN checks cover it

    def __init__(self, name: str, lock_class: LockClass | None = None) -> None:
        self.name = name
        self.lock_class: Any = lock_class
        self.is_set = False
        self.owner: KTask | None = None
        self.io = False
        self.waiters = WaitQueue()

    def __repr__(self) -> str:
        return f"<bit {self.name}={int(self.is_set)}>"

    def release_to_io(self) -> None:
        """The holder hands the lock to the I/O it submitted: a page locked for a read is
        unlocked by the read's completion, on whichever CPU takes the interrupt. lockdep
        forgets it for the holder; the completion's :meth:`clear` is then legitimate."""
        self._release_owner("I/O submitted on")
        self.io = True

    def _release_owner(self, what: str) -> None:
        """The current task gives up the lock it must hold (``what`` names the action)."""
        task = current()
        if not self.is_set or self.owner is not task:
            raise KernelFinding(
                "lock-not-held",
                f"{what} {self.name} by {task.name}, which does not hold it",
                {"lock": self.name},
            )
        _lockdep.release(task, self)
        self.owner = None
        set_pending(task, self, RELEASE)  # unlock_page's Released: the point after it

    def owners(self) -> list[KTask]:
        return [self.owner] if self.owner is not None else []

    def test_and_set(self, subclass: int = 0, *, trylock: bool = True) -> bool:
        """Atomically set the bit; returns the old value. The caller passed a point already.

        As a lock, a successful set is a lockdep acquisition (a trylock unless the caller is
        the blocking ``lock_page`` path, which validated the order before waiting).
        """
        if self.is_set:
            return True
        self.is_set = True
        if self.lock_class is not None:
            rq = HOOKS.rq
            task = rq.current
            assert task is not None  # harness: a point runs only inside an executor
            if trylock:
                _lockdep.acquire(task, rq.lockdep, rq.step, self, subclass, True, False)
            self.owner = task
            trace_lock("lock", self, trylock=trylock)
        return False

    def clear(self) -> None:
        """Clear the bit and wake every waiter (``unlock_page``, ``end_page_writeback``)."""
        if self.io:
            self.io = False  # the I/O's completion: nobody's lock to lockdep
            trace_lock("unlock", self)
        elif self.lock_class is not None:
            self._release_owner("unlock of")
            trace_lock("unlock", self)
        self.is_set = False
        self.waiters.wake_all()

    async def lock(self, subclass: int = 0) -> None:
        """The blocking acquire (``lock_page``): sleep until clear, then set.

        lockdep runs before might_sleep, as in ``rw_semaphore._down``.
        """
        await preempt(self, ACQUIRE)
        task = _acquire_point(self, "lock")
        rq = HOOKS.rq
        _lockdep.acquire(task, rq.lockdep, rq.step, self, subclass, False, False)
        might_sleep(f"lock({self.name})")
        while self.is_set:
            await self.waiters.park(task, self)
        self.test_and_set(subclass, trylock=False)

    async def wait_clear(self) -> None:
        """``wait_on_page_bit``: sleep until the bit is clear; does not take it."""
        might_sleep(f"wait_on({self.name})")
        await preempt(self, READ)
        task = current()
        while self.is_set:
            await self.waiters.park(task, self)


_IS_SET: Any = WaitBit.__dict__["is_set"]  # the slot's descriptor, under the property below


class TracedWaitBit(WaitBit):
    """A :class:`WaitBit` whose every test and change of the bit is a :func:`touch` (two
    tests commute, a change conflicts with both): ``PageWriteback(page)`` and
    ``PageLocked(page)`` are tested with no point of their own, and ``set_page_writeback``
    or an I/O completion changes the bit in the middle of a step. Pages switch their bits to
    it with their own class (``target.mm.types.TracedPage``), for DPOR only."""

    __slots__ = ()

    @property
    def is_set(self) -> bool:
        touch(self, READ)
        return bool(_IS_SET.__get__(self))

    @is_set.setter
    def is_set(self, value: bool) -> None:
        touch(self, WRITE, None)
        _IS_SET.__set__(self, value)


class _RCU:
    name = "rcu_read_lock"
    lock_class = LockClass("rcu_read_lock", sleeping=False)
    spinning = True

    def owners(self) -> list[KTask]:
        return []


RCU = _RCU()


def rcu_read_lock() -> None:
    """``rcu_read_lock()`` (classic RCU): a read-side section that may not sleep."""
    task = current()
    enter_atomic(task)
    task.held.append(_lockdep.HeldLock(RCU, ("rcu_read_lock", 0), True, True, HOOKS.rq.step))


def rcu_read_unlock() -> Released:
    task = current()
    _lockdep.release(task, RCU)
    task.atomic -= 1
    set_pending(task, RCU, RELEASE)
    return RELEASED


def lockdep_assert_held(lock: Any, *, write: bool = False) -> None:
    """``lockdep_assert_held``: the ``Context:`` line of a function, checked."""
    task = current()
    if not _lockdep.holds(task, lock, write=write):
        raise KernelFinding(
            "lock-not-held",
            f"{task.name} must hold {lock.name}{' for write' if write else ''} here",
            {"lock": lock.name, "held": [h.describe() for h in task.held]},
        )
