"""circular_buffer_bad: SCTBench benchmarks/concurrent-software-benchmarks/circular_buffer_bad.c.

t1 inserts i when ``send`` is set, t2 removes one element when ``receive`` is set and asserts
it equals its own loop index i: when t2 runs an iteration with nothing to receive, the
indices drift apart and the assertion fails (N = 7, BUFFER_MAX = 10).
"""

from __future__ import annotations

from migfuzz.testing import Mutex, Shared, Thread, check, spawn

BUFFER_MAX = 10
N = 7
ERROR = -1


async def main() -> None:
    buffer = [Shared(f"buffer[{i}]", 0) for i in range(BUFFER_MAX)]
    first, nxt, buffer_size = Shared("first", 0), Shared("next", 0), Shared("buffer_size", 0)
    send, receive = Shared("send", False), Shared("receive", False)
    m = Mutex("m")

    async def init_log(maximum: int) -> None:
        await buffer_size.write(maximum)
        await nxt.write(0)  # first = next = 0: next is assigned first
        await first.write(0)

    async def remove_log_element() -> int:
        check(await first.read() >= 0, "first >= 0")  # unsigned in C: always true
        if await nxt.read() > 0 and await first.read() < await buffer_size.read():
            await first.write(await first.read() + 1)
            return await buffer[await first.read() - 1].read()
        return ERROR

    async def insert_log_element(b: int) -> int:
        if await nxt.read() < await buffer_size.read() and await buffer_size.read() > 0:
            await buffer[await nxt.read()].write(b)
            await nxt.write((await nxt.read() + 1) % await buffer_size.read())
            check(await nxt.read() < await buffer_size.read(), "next < buffer_size")
        else:
            return ERROR
        return b

    async def t1() -> None:
        for i in range(N):
            await m.lock()
            if await send.read():
                await insert_log_element(i)
                await send.write(False)
                await receive.write(True)
            await m.unlock()

    async def t2() -> None:
        for i in range(N):
            await m.lock()
            if await receive.read():
                check(await remove_log_element() == i, "removeLogElement() == i")  # BAD
                await receive.write(False)
                await send.write(True)
            await m.unlock()

    await init_log(10)
    await send.write(True)
    await receive.write(False)
    id1: Thread = await spawn(t1, name="t1")
    id2: Thread = await spawn(t2, name="t2")
    await id1.join()
    await id2.join()
