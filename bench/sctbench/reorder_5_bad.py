"""reorder_5_bad: SCTBench benchmarks/concurrent-software-benchmarks/reorder_5_bad.c.

Four setThreads write ``a = 1; b = -1`` unlocked; one checkThread asserts it sees both or
neither (iSet = 4, iCheck = 1, the file's defaults). It fails when a set runs between the
check's reads. The program is :func:`._reorder.reorder`, shared with the other sizes.
"""

from __future__ import annotations

from ._reorder import reorder

I_SET = 4
I_CHECK = 1


async def main() -> None:
    await reorder(I_SET, I_CHECK)
