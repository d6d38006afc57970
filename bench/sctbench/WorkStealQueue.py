"""WorkStealQueue: SCTBench benchmarks/chess/WorkStealQueue.cpp (with WorkStealQueue.h).

CHESS's work-stealing queue, built without ``USE_NON_BLOCKING_SYNC``: its SpinLock is a
pthread mutex. main (the queue's bound thread) pushes 4 items two at a time, popping one
after each pair, then pops twice; one stealer tries 2 Steals; each item taken runs
``Operation`` (``field++``) and main finally asserts every ``field == 1``. The file's
``BUG3`` in Push lets it fill the slot a concurrent Steal is about to read: an item is
then taken twice and another never. Queue, driver and mapping: :mod:`._work_steal_queue`.
"""

from __future__ import annotations

from migfuzz.testing import Mutex

from ._work_steal_queue import driver


class MutexSpinLock:
    """``SpinLock`` without USE_NON_BLOCKING_SYNC: ``pthread_mutex_lock``/``unlock``."""

    def __init__(self) -> None:
        self.cs = Mutex("cs")

    async def acquire(self) -> None:
        await self.cs.lock()

    async def release(self) -> None:
        await self.cs.unlock()


async def main() -> None:
    await driver(MutexSpinLock())


async def main_fixed() -> None:
    """The fixed variant, for the tests: Push with the header's "Correct" bound, not BUG3."""
    await driver(MutexSpinLock(), bug3=False)
