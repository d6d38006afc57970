"""InterlockedWorkStealQueue: SCTBench benchmarks/chess/InterlockedWorkStealQueue.cpp.

WorkStealQueue's program (:mod:`.WorkStealQueue`, the same driver and ``BUG3`` queue of
WorkStealQueue.h) built with ``USE_NON_BLOCKING_SYNC``: the SpinLock is a test-and-set lock,
``lock.exchange(1)`` (the CHESS original's InterlockedExchangePointer) retried until it
returns 0, with ``sleep(0)`` between tries (``maxRetriesBeforeSleep`` is 0), and released
by a plain store of 0 to the atomic. ``sleep(0)`` is :func:`migfuzz.testing.yield_`, which
gives way as SCTBench's schedulers make a sleep/yield do (its docstring says how).
"""

from __future__ import annotations

from migfuzz.testing import Shared, yield_

from ._work_steal_queue import driver


class InterlockedSpinLock:
    """``SpinLock`` with USE_NON_BLOCKING_SYNC: 1 locked, 0 free."""

    def __init__(self) -> None:
        self.lock: Shared[int] = Shared("lock", 0)

    async def acquire(self) -> None:
        while True:
            old = await self.lock.exchange(1)
            if old == 0:
                break  # this thread moved the lock from free to locked
            await yield_()  # ++retries >= maxRetriesBeforeSleep (0): sleep(0)

    async def release(self) -> None:
        await self.lock.write(0)


async def main() -> None:
    await driver(InterlockedSpinLock())


async def main_fixed() -> None:
    """The fixed variant, for the tests: Push with the header's "Correct" bound, not BUG3."""
    await driver(InterlockedSpinLock(), bug3=False)
