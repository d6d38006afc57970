"""queue_bad: SCTBench benchmarks/concurrent-software-benchmarks/queue_bad.c.

t1 enqueues value 0, then up to SIZE - 1 more values, each when ``enqueue_flag`` is set;
t2 makes SIZE tries, dequeuing when ``dequeue_flag`` is set and asserting the element equals
``stored_elements[i]``, i its try (not its dequeue) count; the flags alternate the two, all
under m. A try of t2 that finds nothing to dequeue (it ran before t1's enqueue set the flag)
shifts i, and the next dequeue fails ``/* BAD */``. In the sequential order t1's values are
all stored before t2 tries, so it holds.

Each field of the QType ``queue`` (element[i], head, tail, amount), each
``stored_elements[i]`` and each flag is a Shared. The ``==`` of the BAD assertion evaluates
``dequeue`` first (C leaves the order unspecified). The asserts on enqueue (it returns 0)
and empty are kept, as they cost points in the C too; the printf calls are dropped.
"""

from __future__ import annotations

from migfuzz.testing import Mutex, Shared, check, spawn

SIZE = 20
EMPTY = -1
FULL = -2


class QType:
    def __init__(self) -> None:
        self.element = [Shared(f"queue.element[{i}]", 0) for i in range(SIZE)]
        self.head = Shared("queue.head", 0)
        self.tail = Shared("queue.tail", 0)
        self.amount = Shared("queue.amount", 0)


async def init(q: QType) -> None:
    await q.head.write(0)
    await q.tail.write(0)
    await q.amount.write(0)


async def empty(q: QType) -> int:
    if await q.head.read() == await q.tail.read():
        return EMPTY  # printf("queue is empty\n")
    return 0


async def enqueue(q: QType, x: int) -> int:
    await q.element[await q.tail.read()].write(x)
    await q.amount.write(await q.amount.read() + 1)
    if await q.tail.read() == SIZE:
        await q.tail.write(1)
    else:
        await q.tail.write(await q.tail.read() + 1)
    return 0


async def dequeue(q: QType) -> int:
    x = await q.element[await q.head.read()].read()
    await q.amount.write(await q.amount.read() - 1)
    if await q.head.read() == SIZE:
        await q.head.write(1)
    else:
        await q.head.write(await q.head.read() + 1)
    return x


async def main() -> None:
    m = Mutex("m")
    stored_elements = [Shared(f"stored_elements[{i}]", 0) for i in range(SIZE)]
    enqueue_flag, dequeue_flag = Shared("enqueue_flag", False), Shared("dequeue_flag", False)
    queue = QType()

    async def t1() -> None:
        await m.lock()
        value = 0
        check(not await enqueue(queue, value), "!enqueue(&queue, value)")
        await stored_elements[0].write(value)
        check(not await empty(queue), "!empty(&queue)")
        await m.unlock()
        for i in range(SIZE - 1):
            await m.lock()
            if await enqueue_flag.read():
                value += 1
                await enqueue(queue, value)
                await stored_elements[i + 1].write(value)
                await enqueue_flag.write(False)
                await dequeue_flag.write(True)
            await m.unlock()

    async def t2() -> None:
        for i in range(SIZE):
            await m.lock()
            if await dequeue_flag.read():
                got = await dequeue(queue)
                check(got == await stored_elements[i].read(),
                      "dequeue(&queue) == stored_elements[i]")  # BAD
                await dequeue_flag.write(False)
                await enqueue_flag.write(True)
            await m.unlock()

    await enqueue_flag.write(True)
    await dequeue_flag.write(False)
    await init(queue)
    check(await empty(queue) == EMPTY, "empty(&queue) == EMPTY")
    id1 = await spawn(t1, name="t1")
    id2 = await spawn(t2, name="t2")
    await id1.join()
    await id2.join()
