"""lazy01_bad: SCTBench benchmarks/concurrent-software-benchmarks/lazy01_bad.c.

thread3 fails ``assert(0)`` when it sees ``data >= 3``, i.e. when thread1 and thread2 both
ran first: the sequential order (creation order) shows it.
"""

from __future__ import annotations

from migfuzz.testing import Mutex, Shared, check, spawn


async def main() -> None:
    mutex = Mutex("mutex")
    data = Shared("data", 0)

    async def thread1() -> None:
        await mutex.lock()
        await data.write(await data.read() + 1)
        await mutex.unlock()

    async def thread2() -> None:
        await mutex.lock()
        await data.write(await data.read() + 2)
        await mutex.unlock()

    async def thread3() -> None:
        await mutex.lock()
        if await data.read() >= 3:
            check(False, "data < 3")  # BAD
        await mutex.unlock()

    t1 = await spawn(thread1, name="t1")
    t2 = await spawn(thread2, name="t2")
    t3 = await spawn(thread3, name="t3")
    await t1.join()
    await t2.join()
    await t3.join()
