"""sync02_bad: SCTBench benchmarks/concurrent-software-benchmarks/sync02_bad.c.

A producer and a consumer of N = 2 items each, on a counter ``num`` that starts at 2 (not
0): the consumer takes the two there, the producer's first item can be made only once num
is 0 and its second never is consumed, so the producer waits on ``empty`` forever: a
deadlock in every order. Signals after the unlock, as in the C. :func:`main_ok` is
sync02_ok.c, the fixed variant (N = 20 items each, num starts at 0; its printf calls
dropped), for the tests.
"""

from __future__ import annotations

from migfuzz.testing import Cond, Mutex, Shared, spawn

N = 2


async def main() -> None:
    await sync02(N, num0=2)


async def main_ok() -> None:
    await sync02(20, num0=0)


async def sync02(n: int, *, num0: int) -> None:
    num = Shared("num", 0)
    m = Mutex("m")
    empty, full = Cond("empty"), Cond("full")

    async def producer() -> None:
        i = 0
        while i < n:
            await m.lock()
            while await num.read() > 0:
                await empty.wait(m)
            await num.write(await num.read() + 1)  # produce
            await m.unlock()
            await full.signal()
            i += 1

    async def consumer() -> None:
        j = 0
        while j < n:
            await m.lock()
            while await num.read() == 0:
                await full.wait(m)
            await num.write(await num.read() - 1)  # consume
            await m.unlock()
            await empty.signal()
            j += 1

    await num.write(num0)
    id1 = await spawn(producer, name="producer")
    id2 = await spawn(consumer, name="consumer")
    await id1.join()
    await id2.join()
