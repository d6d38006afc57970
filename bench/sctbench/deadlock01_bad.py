"""deadlock01_bad: SCTBench benchmarks/concurrent-software-benchmarks/deadlock01_bad.c.

thread1 takes a then b, thread2 b then a: each holding its first lock, they deadlock.
"""

from __future__ import annotations

from migfuzz.testing import Mutex, Shared, spawn


async def main() -> None:
    a, b = Mutex("a"), Mutex("b")
    counter = Shared("counter", 1)

    async def thread1() -> None:
        await a.lock()
        await b.lock()  # BAD: deadlock
        await counter.write(await counter.read() + 1)
        await b.unlock()
        await a.unlock()

    async def thread2() -> None:
        await b.lock()
        await a.lock()  # BAD: deadlock
        await counter.write(await counter.read() - 1)
        await a.unlock()
        await b.unlock()

    t1 = await spawn(thread1, name="t1")
    t2 = await spawn(thread2, name="t2")
    await t1.join()
    await t2.join()
