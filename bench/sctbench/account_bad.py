"""account_bad: SCTBench benchmarks/concurrent-software-benchmarks/account_bad.c.

check_result asserts ``balance == (x - y) - z`` once deposit and withdraw are both done; the
deposit adds y, so the assertion fails whenever check_result runs after both (it is created
first, so the sequential order runs it before them).
"""

from __future__ import annotations

from migfuzz.testing import Mutex, Shared, check, spawn


async def main() -> None:
    m = Mutex("m")
    x, y, z, balance = Shared("x", 0), Shared("y", 0), Shared("z", 0), Shared("balance", 0)
    deposit_done, withdraw_done = Shared("deposit_done", False), Shared("withdraw_done", False)

    async def deposit() -> None:
        await m.lock()
        await balance.write(await balance.read() + await y.read())
        await deposit_done.write(True)
        await m.unlock()

    async def withdraw() -> None:
        await m.lock()
        await balance.write(await balance.read() - await z.read())
        await withdraw_done.write(True)
        await m.unlock()

    async def check_result() -> None:
        await m.lock()
        if await deposit_done.read() and await withdraw_done.read():
            expected = (await x.read() - await y.read()) - await z.read()
            check(await balance.read() == expected, "balance == (x - y) - z")  # BAD
        await m.unlock()

    await x.write(1)
    await y.write(2)
    await z.write(4)
    await balance.write(await x.read())
    await spawn(check_result, name="t3")
    await spawn(deposit, name="t1")
    await spawn(withdraw, name="t2")
