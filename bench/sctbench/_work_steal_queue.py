"""CHESS's work-stealing queue (SCTBench benchmarks/chess/WorkStealQueue.h, ``THE``
namespace) and the test driver of WorkStealQueue.cpp and InterlockedWorkStealQueue.cpp,
shared by the two ports: they differ only in the SpinLock (a pthread mutex, or with
``USE_NON_BLOCKING_SYNC`` a test-and-set lock on an atomic exchange with ``sleep(0)``).

The mapping. ``head`` and ``tail`` are ``std::atomic<long>``: ``readV`` is
``compare_exchange_strong(0, 0)`` (InterlockedCompareExchange(&v, 0, 0) in the original
CHESS code) and ``writeV`` is ``exchange``, one point each (:meth:`Shared.compare_exchange`,
:meth:`Shared.exchange`). ``elems`` (the ``T*``, replaced when SyncPush grows the array)
and ``mask`` are plain fields that Steal reads: a Shared each, as is every slot of the C
array (a list of Shared; a new array is a new list). An ObjType's ``field`` is a Shared.
``new T[size]`` leaves pointer slots indeterminate: here None, and calling Operation on one
(a segfault in the C) is a failed check. ``Push`` is compiled with ``BUG3`` (the file
defines it): it fills the last free slot, which a concurrent Steal may be reading;
``bug3=False`` builds the header's "Correct" test instead, the fixed variant the tests use.
"""

from __future__ import annotations

from typing import Protocol

from migfuzz.testing import Shared, Thread, check, spawn

MAX_SIZE = 1024 * 1024
INITIAL_SIZE = 1024  # must be a power of 2
INITQSIZE = 2  # must be power of 2
N_STEALERS = 1
N_ITEMS = 4
N_STEAL_ATTEMPTS = 2


class SpinLock(Protocol):
    async def acquire(self) -> None: ...
    async def release(self) -> None: ...


class ObjType:
    def __init__(self, i: int) -> None:
        self.field = Shared(f"items[{i}].field", 0)

    async def operation(self) -> None:
        await self.field.write(await self.field.read() + 1)

    async def check_once(self) -> None:
        check(await self.field.read() == 1, "field == 1")


Slot = Shared[ObjType | None]
Got = tuple[bool, ObjType | None]  # the bool a Steal/Pop returns, and ``result``


def _array(size: int, gen: int) -> list[Slot]:
    return [Shared(f"elems{gen}[{i}]", None) for i in range(size)]


class WorkStealQueue:
    """``THE::WorkStealQueue<ObjType*>``: Push/Pop by the bound thread, Steal by others."""

    def __init__(self, lock: SpinLock, *, bug3: bool) -> None:
        self.lock = lock
        self.bug3 = bug3
        self.head = Shared("head", 0)  # only updated by Take
        self.tail = Shared("tail", 0)  # only updated by Push and Pop
        self.elems: Shared[list[Slot]] = Shared("elems", [])
        self.mask = Shared("mask", 0)
        self._gen = 0  # names each new array's slots apart (not program state)

    async def construct(self, size: int) -> None:
        await self.write_v(self.head, 0)
        await self.write_v(self.tail, 0)
        await self.mask.write(size - 1)
        await self.elems.write(_array(size, self._gen))

    @staticmethod
    async def read_v(v: Shared[int]) -> int:
        return await v.compare_exchange(0, 0)

    @staticmethod
    async def write_v(v: Shared[int], w: int) -> None:
        await v.exchange(w)

    async def slot(self, i: int) -> Slot:
        """``elems[i & mask]``: the array pointer and the mask are read first."""
        elems = await self.elems.read()
        return elems[i & await self.mask.read()]

    async def steal(self) -> Got:
        await self.lock.acquire()
        h = await self.read_v(self.head)
        await self.write_v(self.head, h + 1)
        if h < await self.read_v(self.tail):
            result = await (await self.slot(h)).read()
            found = True
        else:
            await self.write_v(self.head, h)  # restore the head
            result, found = None, False
        await self.lock.release()
        return found, result

    async def pop(self) -> Got:
        t = await self.read_v(self.tail) - 1
        await self.write_v(self.tail, t)
        if await self.read_v(self.head) <= t:
            return True, await (await self.slot(t)).read()
        await self.write_v(self.tail, t + 1)  # restore the tail
        return await self.sync_pop()

    async def sync_pop(self) -> Got:
        await self.lock.acquire()
        t = await self.read_v(self.tail) - 1
        await self.write_v(self.tail, t)
        result: ObjType | None = None
        if await self.read_v(self.head) <= t:
            result = await (await self.slot(t)).read()
            found = True
        else:
            await self.write_v(self.tail, t + 1)  # restore tail
            found = False
        if await self.read_v(self.head) > t:  # queue is empty: reset head and tail
            await self.write_v(self.head, 0)
            await self.write_v(self.tail, 0)
            found = False
        await self.lock.release()
        return found, result

    async def push(self, elem: ObjType) -> None:
        t = await self.read_v(self.tail)
        # BUG3: + 1, so the slot a Steal has just claimed may be refilled
        if (t < await self.read_v(self.head) + await self.mask.read() + self.bug3
                and t < MAX_SIZE):
            await (await self.slot(t)).write(elem)
            await self.write_v(self.tail, t + 1)
        else:
            await self.sync_push(elem)

    async def sync_push(self, elem: ObjType) -> None:
        await self.lock.acquire()
        h = await self.read_v(self.head)
        count = await self.read_v(self.tail) - h
        h = h & await self.mask.read()  # normalize head
        await self.write_v(self.head, h)
        await self.write_v(self.tail, h + count)
        mask = await self.mask.read()
        if count >= mask:  # == (count >= size-1): enlarge the tasks
            newsize = INITIAL_SIZE if mask == 0 else 2 * (mask + 1)
            check(newsize < MAX_SIZE, "newsize < MaxSize")
            self._gen += 1
            newtasks = _array(newsize, self._gen)
            for i in range(count):
                await newtasks[i].write(await (await self.slot(h + i)).read())
            await self.elems.write(newtasks)
            await self.mask.write(newsize - 1)
            await self.write_v(self.head, 0)
            await self.write_v(self.tail, count)
        check(count < await self.mask.read(), "count < mask")
        t = await self.read_v(self.tail)
        await (await self.slot(t)).write(elem)
        await self.write_v(self.tail, t + 1)
        await self.lock.release()


async def operate(r: ObjType | None) -> None:
    """``r->Operation()``; on an indeterminate slot's value, the C's segfault."""
    if r is None:
        check(False, "r != NULL (Operation on an unset slot)")
        return
    await r.operation()


async def driver(lock: SpinLock, *, bug3: bool = True) -> None:
    """main() of WorkStealQueue.cpp / InterlockedWorkStealQueue.cpp with the defaults."""
    items = [ObjType(i) for i in range(N_ITEMS)]
    q = WorkStealQueue(lock, bug3=bug3)
    await q.construct(INITQSIZE)

    async def stealer() -> None:
        for _ in range(N_STEAL_ATTEMPTS):
            found, r = await q.steal()
            if found:
                await operate(r)

    handles: list[Thread] = []
    for i in range(N_STEALERS):
        handles.append(await spawn(stealer, name=f"stealer{i}"))
    for i in range(N_ITEMS // 2):
        await q.push(items[2 * i])
        await q.push(items[2 * i + 1])
        found, r = await q.pop()
        if found:
            await operate(r)
    for _ in range(N_ITEMS // 2):
        found, r = await q.pop()
        if found:
            await operate(r)
    for h in handles:
        await h.join()
    for item in items:
        await item.check_once()
