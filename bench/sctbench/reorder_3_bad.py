"""reorder_3_bad: SCTBench benchmarks/concurrent-software-benchmarks/reorder_3_bad.c.

Two setThreads write ``a = 1; b = -1`` unlocked; one checkThread asserts it sees both or
neither (iSet = 2, iCheck = 1, the file's defaults). It fails when a set runs between the
check's reads.
"""

from __future__ import annotations

from migfuzz.testing import Shared, Thread, check, spawn

I_SET = 2
I_CHECK = 1


async def main() -> None:
    a, b = Shared("a", 0), Shared("b", 0)

    async def set_thread() -> None:
        await a.write(1)
        await b.write(-1)

    async def check_thread() -> None:
        # C's || and && short-circuit: b is read only where the left operand needs it.
        ok = ((await a.read() == 0 and await b.read() == 0)
              or (await a.read() == 1 and await b.read() == -1))
        check(ok, "(a == 0 && b == 0) || (a == 1 && b == -1)")  # BAD

    set_pool: list[Thread] = []
    check_pool: list[Thread] = []
    for i in range(I_SET):
        set_pool.append(await spawn(set_thread, name=f"set{i}"))
    for i in range(I_CHECK):
        check_pool.append(await spawn(check_thread, name=f"check{i}"))
    for t in set_pool + check_pool:
        await t.join()
