"""The program of SCTBench's reorder_N_bad.c (reorder_bad.c preprocessed with its defaults:
``iSet`` set threads, ``iCheck`` check threads; the files differ only in those)."""

from __future__ import annotations

from migfuzz.testing import Shared, Thread, check, spawn


async def reorder(i_set: int, i_check: int) -> None:
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
    for i in range(i_set):
        set_pool.append(await spawn(set_thread, name=f"set{i}"))
    for i in range(i_check):
        check_pool.append(await spawn(check_thread, name=f"check{i}"))
    for t in set_pool + check_pool:
        await t.join()
