"""reorder_10_bad: SCTBench benchmarks/concurrent-software-benchmarks/reorder_10_bad.c.

Nine setThreads write ``a = 1; b = -1`` unlocked; one checkThread asserts it sees both or
neither (iSet = 9, iCheck = 1, the file's defaults). It fails when a set runs between the
check's reads. The program is :func:`._reorder.reorder`, shared with the other sizes.
"""

from __future__ import annotations

from ._reorder import reorder

I_SET = 9
I_CHECK = 1


async def main() -> None:
    await reorder(I_SET, I_CHECK)
