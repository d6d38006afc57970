"""twostage_bad: SCTBench benchmarks/concurrent-software-benchmarks/twostage_bad.c.

funcA sets data1 then, in a second critical section, data2 = data1 + 1; funcB (reading after
data1 is set) asserts ``t2 == t1 + 1``, which fails when it runs between funcA's two
sections (iTThreads = iRThreads = 1, the defaults).
"""

from __future__ import annotations

from migfuzz.testing import Mutex, Shared, Thread, check, spawn

I_T_THREADS = 1
I_R_THREADS = 1


async def main() -> None:
    data1_value, data2_value = Shared("data1Value", 0), Shared("data2Value", 0)
    data1_lock, data2_lock = Mutex("data1Lock"), Mutex("data2Lock")

    async def func_a() -> None:
        await data1_lock.lock()
        await data1_value.write(1)
        await data1_lock.unlock()
        await data2_lock.lock()
        await data2_value.write(await data1_value.read() + 1)
        await data2_lock.unlock()

    async def func_b() -> None:
        await data1_lock.lock()
        if await data1_value.read() == 0:
            await data1_lock.unlock()
            return
        t1 = await data1_value.read()
        await data1_lock.unlock()
        await data2_lock.lock()
        t2 = await data2_value.read()
        await data2_lock.unlock()
        if t2 != t1 + 1:
            check(False, "t2 == t1 + 1")  # BAD

    t_pool: list[Thread] = []
    r_pool: list[Thread] = []
    for i in range(I_T_THREADS):
        t_pool.append(await spawn(func_a, name=f"funcA{i}"))
    for i in range(I_R_THREADS):
        r_pool.append(await spawn(func_b, name=f"funcB{i}"))
    for t in t_pool + r_pool:
        await t.join()
