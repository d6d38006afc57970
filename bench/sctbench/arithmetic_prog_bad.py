"""arithmetic_prog_bad: SCTBench benchmarks/concurrent-software-benchmarks/arithmetic_prog_bad.c.

A producer and a consumer hand N=3 items over a mutex and two condition variables; main
asserts ``total != N*(N+1)/2`` after joining both, which every complete run violates (the
consumer adds 0+1+2 and then 3): the sequential order shows it too.
"""

from __future__ import annotations

from migfuzz.testing import Cond, Mutex, Shared, check, spawn

N = 3


async def main() -> None:
    num, total, flag = Shared("num", 0), Shared("total", 0), Shared("flag", 0)
    m, empty, full = Mutex("m"), Cond("empty"), Cond("full")

    async def thread1() -> None:
        i = 0
        while i < N:
            await m.lock()
            while await num.read() > 0:
                await empty.wait(m)
            await num.write(await num.read() + 1)
            await m.unlock()
            await full.signal()
            i += 1

    async def thread2() -> None:
        j = 0
        while j < N:
            await m.lock()
            while await num.read() == 0:
                await full.wait(m)
            await total.write(await total.read() + j)
            await num.write(await num.read() - 1)
            await m.unlock()
            await empty.signal()
            j += 1
        await total.write(await total.read() + j)
        await flag.write(1)

    await num.write(0)
    await total.write(0)
    t1 = await spawn(thread1, name="t1")
    t2 = await spawn(thread2, name="t2")
    await t1.join()
    await t2.join()
    if await flag.read():
        check(await total.read() != (N * (N + 1)) // 2, "total != N*(N+1)/2")  # BAD
