"""safestack bug1: SCTBench benchmarks/safestack/SafeStack.cpp (run by build.sh/run.sh).

A lock-free stack of array indices (Dmitry Vyukov's SafeStack): 3 threads each pop an index
twice, write their id to the item's ``Value``, assert it reads back, and push the index back.
Pop takes ``Next`` of the head item by ``exchange(-1)`` (a -1 makes other
poppers yield), then swings ``head`` by compare-and-swap. The bug (an ABA on head): a Pop
that loaded head before index 0 was popped takes the -1 "lock" on 0 while its popper pushes
it back; the pusher's CAS fails, its retry stores Next again over the lock, and once 0 is
head again the stale Pop's CAS succeeds with a stale next, making head an index another
thread holds. Two threads then hold index 0 and one's ``Value`` is overwritten before its
read: ``assert(Value == idx)`` fails. tests/test_sctbench.py replays such a run (43 accesses
to the stack). Its depth: at least 7 preemptions (a 0-1 BFS over the C program's states,
3 threads x 3 items, a switch away from a thread that could go on costing 1, one about to
sched_yield costing 0 as in SCTBench's DFS; not part of migfuzz). In 200,000 schedules
(seed 1), a random walk found it once, at schedule 184,999, and PCT d=3 and 5 and DFS pb=3
not at all (bench/sctbench_safestack.md).

Mapping: the ``std::atomic<int>`` head, count and every item's Next, and the ``volatile``
Value, are a Shared each; ``load``/``store`` are read/write, ``exchange``,
``compare_exchange_strong`` and ``fetch_add``/``fetch_sub`` one point each (memory orders
are moot: every point is sequentially consistent here, as in SCTBench's schedulers).
``compare_exchange_strong(head1, index)`` writes the value it found back into ``head1`` on
failure, as here. ``sched_yield()`` is :func:`migfuzz.testing.yield_`. The global ``stack``
(constructed before main in the C) is built by main before it creates the threads.
"""

from __future__ import annotations

from migfuzz.testing import Shared, Thread, check, spawn, yield_

NUM_THREADS = 3
PUSH_COUNT = 3  # SafeStack<int> stack(3)


class SafeStackItem:
    def __init__(self, i: int) -> None:
        self.value = Shared(f"array[{i}].Value", 0)
        self.next = Shared(f"array[{i}].Next", 0)


class SafeStack:
    def __init__(self, push_count: int) -> None:
        self.array = [SafeStackItem(i) for i in range(push_count)]
        self.head = Shared("head", 0)
        self.count = Shared("count", 0)

    async def construct(self, push_count: int) -> None:
        await self.count.write(push_count)
        await self.head.write(0)
        for i in range(push_count - 1):
            await self.array[i].next.write(i + 1)
        await self.array[push_count - 1].next.write(-1)

    async def pop(self) -> int:
        while await self.count.read() > 1:
            head1 = await self.head.read()
            next1 = await self.array[head1].next.exchange(-1)
            if next1 >= 0:
                head2 = head1
                if await self.head.compare_exchange(head2, next1) == head2:
                    await self.count.fetch_add(-1)
                    return head1
                await self.array[head1].next.exchange(next1)
            else:
                await yield_()
        return -1

    async def push(self, index: int) -> None:
        head1 = await self.head.read()
        while True:
            await self.array[index].next.write(head1)
            found = await self.head.compare_exchange(head1, index)
            if found == head1:
                break
            head1 = found  # compare_exchange_strong updates its expected argument
        await self.count.fetch_add(1)


async def main() -> None:
    stack = SafeStack(PUSH_COUNT)
    await stack.construct(PUSH_COUNT)

    async def thread(idx: int) -> None:
        for _ in range(2):
            while True:
                elem = await stack.pop()
                if elem >= 0:
                    break
                await yield_()
            await stack.array[elem].value.write(idx)
            check(await stack.array[elem].value.read() == idx, "array[elem].Value == idx")
            await stack.push(elem)

    threads: list[Thread] = []
    for i in range(NUM_THREADS):
        threads.append(await spawn(thread, i, name=f"thread{i}"))
    for t in threads:
        await t.join()
