"""yield-busy-wait: V2 2/5's do_swap_page, which yields and re-faults on a migration entry.

As posted, V2 2/5 answered a fault on a migration entry with ``yield(); goto out`` and let the
CPU fault again, a busy-wait (akpm: "Please, no yielding. _especially_ no unchangelogged,
uncommented yielding."). Under an unfair scheduler, one that keeps running the faulting task
because nothing blocks it, the migrator never gets to remove the entry:

    faulting task (high priority)          migrator (low priority)
    fault: M(old) -> yield()               lock_page(old); ptes -> M(old)
    fault: M(old) -> yield()               (never scheduled again)
    ...

Breaks progress. Detected as a livelock by PCT (strict priorities), not by a fair random walk.
"""

from __future__ import annotations

from target.kernel import yield_
from target.mm import memory
from target.mm.memory import VM_FAULT_MINOR
from target.mm.swapops import is_migration_entry
from target.mm.types import MmStruct, PageTablePage, SwapPte, VmArea

from ._catalog import HistoricalBug

_faithful_do_swap_page = memory.do_swap_page


async def do_swap_page(
    mm: MmStruct,
    vma: VmArea,
    address: int,
    table: PageTablePage,
    write_access: bool,
    orig_pte: SwapPte,
) -> int:
    if is_migration_entry(orig_pte):
        await yield_()  # BUG (V2 2/5 as posted): busy-wait; the CPU faults again at once
        return VM_FAULT_MINOR
    return await _faithful_do_swap_page(mm, vma, address, table, write_access, orig_pte)


BUG = HistoricalBug(
    name="yield-busy-wait",
    year=2006,
    reference="Swapless V2 2/5 as posted; akpm's review, 2006-04",
    breaks="progress: a fault on a migration entry must sleep until migration ends",
    summary="do_swap_page yields and re-faults instead of migration_entry_wait",
    expected_kinds=("livelock",),
    scenario="migrate-vs-fault",
    strategy="pct",
    overrides={"target.mm.memory:do_swap_page": do_swap_page},
    depth=1,
)
