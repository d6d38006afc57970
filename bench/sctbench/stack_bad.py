"""stack_bad: SCTBench benchmarks/concurrent-software-benchmarks/stack_bad.c.

t1 pushes SIZE values, t2 pops SIZE times once ``flag`` is set; each under m. When t2's
iterations outrun t1's pushes, a pop finds the stack empty and ``assert(pop(arr) !=
UNDERFLOW)`` fails.
"""

from __future__ import annotations

from migfuzz.testing import Mutex, Shared, Thread, check, spawn

SIZE = 10
OVERFLOW = -1
UNDERFLOW = -2


async def main() -> None:
    top = Shared("top", 0)
    arr = [Shared(f"arr[{i}]", 0) for i in range(SIZE)]
    m = Mutex("m")
    flag = Shared("flag", False)

    async def inc_top() -> None:
        await top.write(await top.read() + 1)

    async def dec_top() -> None:
        await top.write(await top.read() - 1)

    async def get_top() -> int:
        return await top.read()

    async def push(stack: list[Shared[int]], x: int) -> int:
        if await top.read() == SIZE:
            return OVERFLOW
        await stack[await get_top()].write(x)
        await inc_top()
        return 0

    async def pop(stack: list[Shared[int]]) -> int:
        if await get_top() == 0:
            return UNDERFLOW
        await dec_top()
        return await stack[await get_top()].read()

    async def t1() -> None:
        for i in range(SIZE):
            await m.lock()
            check(await push(arr, i) != OVERFLOW, "push(arr, i) != OVERFLOW")
            await flag.write(True)
            await m.unlock()

    async def t2() -> None:
        for _ in range(SIZE):
            await m.lock()
            if await flag.read():
                check(await pop(arr) != UNDERFLOW, "pop(arr) != UNDERFLOW")  # BAD
            await m.unlock()

    id1: Thread = await spawn(t1, name="t1")
    id2: Thread = await spawn(t2, name="t2")
    await id1.join()
    await id2.join()
