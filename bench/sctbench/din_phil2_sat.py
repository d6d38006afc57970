"""din_phil2_sat: SCTBench benchmarks/concurrent-software-benchmarks/din_phil2_sat.c.

Two philosophers take both forks inside ``__ESBMC_atomic_begin/end`` (common.inc: a lock of
the global ``esbmc_mutex``), then increment ``phil`` unlocked; the one that sees
``phil == N`` fails ``assert(0)``. Reachable in the sequential order too ("sat": the
assertion is a reachability target); a lost update of phil hides it.
"""

from __future__ import annotations

from migfuzz.testing import Mutex, Shared, Thread, check, spawn

N = 2


async def main() -> None:
    esbmc_mutex = Mutex("esbmc_mutex")
    x = [Mutex(f"x[{i}]") for i in range(N)]
    phil = Shared("phil", 0)

    async def thread1(arg: Shared[int]) -> None:
        ident = await arg.read()
        left = ident
        right = (ident + 1) % N
        await esbmc_mutex.lock()  # __ESBMC_atomic_begin()
        await x[right].lock()
        await x[left].lock()
        await x[left].unlock()
        await x[right].unlock()
        await esbmc_mutex.unlock()  # __ESBMC_atomic_end()
        await phil.write(await phil.read() + 1)
        if await phil.read() == N:
            check(False, "phil != N")

    args = [Shared(f"arg[{i}]", 0) for i in range(N)]
    trd_id: list[Thread] = []
    for i in range(N):
        await args[i].write(i)
        trd_id.append(await spawn(thread1, args[i], name=f"phil{i}"))
    for t in trd_id:
        await t.join()
