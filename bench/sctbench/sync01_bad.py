"""sync01_bad: SCTBench benchmarks/concurrent-software-benchmarks/sync01_bad.c.

``num`` starts at 1; thread1 waits on ``empty`` while ``num > 0``, thread2 waits on
``full`` while ``num == 0`` and (its ``num--`` commented out in the C) never consumes, so
thread1 waits forever whatever the order: a deadlock (``/* BAD: deadlock */``). Each signal
is sent after the unlock, as in the C. :func:`main_ok` is sync01_ok.c, the fixed variant
(num starts at 0 and thread2 consumes), for the tests.
"""

from __future__ import annotations

from migfuzz.testing import Cond, Mutex, Shared, spawn


async def main() -> None:
    await sync01(num0=1, consume=False)


async def main_ok() -> None:
    await sync01(num0=0, consume=True)


async def sync01(*, num0: int, consume: bool) -> None:
    num = Shared("num", 0)
    m = Mutex("m")
    empty, full = Cond("empty"), Cond("full")

    async def thread1() -> None:
        await m.lock()
        while await num.read() > 0:
            await empty.wait(m)  # BAD: deadlock
        await num.write(await num.read() + 1)
        await m.unlock()
        await full.signal()

    async def thread2() -> None:
        await m.lock()
        while await num.read() == 0:
            await full.wait(m)
        if consume:
            await num.write(await num.read() - 1)
        await m.unlock()
        await empty.signal()

    await num.write(num0)
    t1 = await spawn(thread1, name="t1")
    t2 = await spawn(thread2, name="t2")
    await t1.join()
    await t2.join()
