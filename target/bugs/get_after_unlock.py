"""get-after-unlock: migration_entry_wait drops the ptl before get_page.

The lookup_swap_cache design of the V2 review (Lameter, 2006-04-14), rejected by akpm: "we're
doing a get_page() on a random page which could be in any state - it could be on the
freelists". The entry is only guaranteed to name a live page while the ptl is held:

    faulting task                          migrator
    spin_lock(ptl); sees M(old)
    spin_unlock(ptl)
                                           migration completes; old page freed
    get_page(old)  <- on a free page

Breaks I3 (never get_page on a count-0 page). Detected as use-after-free in get_page.
"""

from __future__ import annotations

from target.mm.filemap import wait_on_page_locked
from target.mm.pgtable import pte_read
from target.mm.swap import get_page, put_page
from target.mm.swapops import is_migration_entry, migration_entry_to_page
from target.mm.types import MmStruct, PageTablePage, SwapPte

from ._catalog import HistoricalBug


async def migration_entry_wait(mm: MmStruct, table: PageTablePage, address: int) -> None:
    await table.ptl.lock()
    pte = pte_read(table, address)
    if type(pte) is not SwapPte or not is_migration_entry(pte):
        await table.ptl.unlock()
        return
    page = migration_entry_to_page(pte)
    # BUG: the reference is taken after the entry stopped protecting it
    await table.ptl.unlock()
    await get_page(page)  # BUG: (was get_page_locked before the unlock)
    await wait_on_page_locked(page)
    await put_page(page)


BUG = HistoricalBug(
    name="get-after-unlock",
    year=2006,
    reference="Swapless V2 review: lookup_swap_cache variant, "
    "<Pine.LNX.4.64.0604141025310.18575@...> and akpm's reply",
    breaks="I3: never get_page on a page that may already be free",
    summary="migration_entry_wait takes its page reference after dropping the ptl",
    expected_kinds=("use-after-free",),
    scenario="migrate-vs-fault",
    strategy="pct",  # bench/time_to_bug.md: PCT 2/5 seeds within 400, random 0/5
    overrides={"target.mm.migrate:migration_entry_wait": migration_entry_wait},
    depth=2,
)
