"""phase01_bad: SCTBench benchmarks/concurrent-software-benchmarks/phase01_bad.c.

Two threads run thread1: lock x, unlock x, lock x again and never unlock it (the unlock is
commented out in the C), then lock/unlock y twice. The first to finish leaves x locked, so
the second blocks on x forever: a deadlock in every order (``/* BAD: deadlock */``).
A thread that ends holding a pthread mutex keeps it locked, as here. :func:`main_ok` is
phase01_ok.c, the fixed variant (the unlock restored), for the tests.
"""

from __future__ import annotations

from migfuzz.testing import Mutex, spawn


async def main() -> None:
    await phase01(fixed=False)


async def main_ok() -> None:
    await phase01(fixed=True)


async def phase01(*, fixed: bool) -> None:
    x, y = Mutex("x"), Mutex("y")

    async def thread1() -> None:
        await x.lock()  # BAD: deadlock
        await x.unlock()
        await x.lock()
        if fixed:
            await x.unlock()
        await y.lock()
        await y.unlock()
        await y.lock()
        await y.unlock()

    t1 = await spawn(thread1, name="t1")
    t2 = await spawn(thread1, name="t2")
    await t1.join()
    await t2.join()
