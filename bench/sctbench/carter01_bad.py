"""carter01_bad: SCTBench benchmarks/concurrent-software-benchmarks/carter01_bad.c.

t1 and t2 each take l while holding m when their counter becomes 1, and need m again to
release l: t2 taking m while t1 holds l blocks on l with m held, a deadlock. t3 and t4 do
nothing, as in the original.
"""

from __future__ import annotations

from migfuzz.testing import Mutex, Shared, spawn


async def main() -> None:
    m, lk = Mutex("m"), Mutex("l")
    a, b = Shared("A", 0), Shared("B", 0)

    async def t1() -> None:
        await m.lock()
        await a.write(await a.read() + 1)
        if await a.read() == 1:
            await lk.lock()
        await m.unlock()
        await m.lock()
        await a.write(await a.read() - 1)
        if await a.read() == 0:
            await lk.unlock()
        await m.unlock()

    async def t2() -> None:
        await m.lock()
        await b.write(await b.read() + 1)
        if await b.read() == 1:
            await lk.lock()  # BAD: deadlock
        await m.unlock()
        await m.lock()
        await b.write(await b.read() - 1)
        if await b.read() == 0:
            await lk.unlock()
        await m.unlock()

    async def t3() -> None:
        pass

    async def t4() -> None:
        pass

    a1 = await spawn(t1, name="a1")
    b1 = await spawn(t2, name="b1")
    a2 = await spawn(t3, name="a2")
    b2 = await spawn(t4, name="b2")
    await a1.join()
    await b1.join()
    await a2.join()
    await b2.join()
