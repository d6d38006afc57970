"""The dining philosophers of SCTBench's din_philN_sat.c, N a parameter (the files differ
only in N and, from N = 5 on, in an atomic section around the increment and its check)."""

from __future__ import annotations

from migfuzz.testing import Mutex, Shared, Thread, check, spawn


async def philosophers(n: int, *, atomic_count: bool, count: bool = True) -> None:
    """The program of din_philN_sat.c; ``atomic_count``: ``++phil`` and ``if (phil == N)
    assert(0)`` inside ``__ESBMC_atomic_begin/end`` (din_phil5_sat.c and up); ``count``
    False: din_philN_unsat.c, without phil, its increment and its assertion."""
    esbmc_mutex = Mutex("esbmc_mutex")  # common.inc: __ESBMC_atomic_begin/end lock it
    x = [Mutex(f"x[{i}]") for i in range(n)]
    phil = Shared("phil", 0)

    async def thread1(arg: Shared[int]) -> None:
        ident = await arg.read()
        left = ident
        right = (ident + 1) % n
        await esbmc_mutex.lock()  # __ESBMC_atomic_begin()
        await x[right].lock()
        await x[left].lock()
        await x[left].unlock()
        await x[right].unlock()
        await esbmc_mutex.unlock()  # __ESBMC_atomic_end()
        if not count:
            return
        if atomic_count:
            await esbmc_mutex.lock()
        await phil.write(await phil.read() + 1)
        if await phil.read() == n:
            check(False, "phil != N")
        if atomic_count:
            await esbmc_mutex.unlock()

    args = [Shared(f"arg[{i}]", 0) for i in range(n)]
    trd_id: list[Thread] = []
    for i in range(n):
        await args[i].write(i)
        trd_id.append(await spawn(thread1, args[i], name=f"phil{i}"))
    for t in trd_id:
        await t.join()
