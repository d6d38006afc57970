"""wronglock_bad: SCTBench benchmarks/concurrent-software-benchmarks/wronglock_bad.c.

funcA increments dataValue under dataLock and asserts nobody else did meanwhile; the seven
funcB threads increment it under a different lock (thisLock), so one running between funcA's
read and its check fails the assertion (iNum1 = 1, iNum2 = 7, the defaults).
"""

from __future__ import annotations

from migfuzz.testing import Mutex, Shared, Thread, check, spawn

I_NUM1 = 1
I_NUM2 = 7


async def main() -> None:
    data_value = Shared("dataValue", 0)
    data_lock, this_lock = Mutex("dataLock"), Mutex("thisLock")

    async def func_a() -> None:
        await data_lock.lock()
        x = await data_value.read()
        await data_value.write(await data_value.read() + 1)
        if await data_value.read() != x + 1:
            check(False, "dataValue == x + 1")  # BAD
        await data_lock.unlock()

    async def func_b() -> None:
        await this_lock.lock()
        await data_value.write(await data_value.read() + 1)
        await this_lock.unlock()

    pool1: list[Thread] = []
    pool2: list[Thread] = []
    for i in range(I_NUM1):
        pool1.append(await spawn(func_a, name=f"funcA{i}"))
    for i in range(I_NUM2):
        pool2.append(await spawn(func_b, name=f"funcB{i}"))
    for t in pool1 + pool2:
        await t.join()
