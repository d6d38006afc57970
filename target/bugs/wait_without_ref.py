"""wait-without-ref: migration_entry_wait sleeps on the page without holding a reference.

2018 fix 3c226c637b69 (the same class of bug akpm raised in the V2 review, 2006-04: "What
locking ensures that the state of the page referred to by `entry' is stable?"). Without the
get_page/put_page pair around wait_on_page_locked, nothing stops the migrator from finishing
and freeing the old page while the faulting task sleeps on it:

    faulting task                          migrator
    spin_lock(ptl); sees M(old)
    spin_unlock(ptl)
    wait_on_page_locked(old)   ... sleeps  count == nr_refs: migration succeeds
                                           unlock_page(old); move_to_lru(old): freed
    wakes on a freed (perhaps reused) page

Breaks I3 (never use a page without a reference). Detected as use-after-free of the page.
"""

from __future__ import annotations

from target.mm.filemap import wait_on_page_locked
from target.mm.pgtable import pte_read
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
    # BUG: no get_page_locked(page) before dropping the ptl ...
    await table.ptl.unlock()
    await wait_on_page_locked(page)  # ... so this sleeps on a page we do not hold
    # BUG: (and no put_page(page): there is no reference to drop)


BUG = HistoricalBug(
    name="wait-without-ref",
    year=2018,
    reference="3c226c637b69; akpm's objection in the Swapless V2 review (2006-04-14)",
    breaks="I3: a page is used only with a reference held",
    summary="migration_entry_wait sleeps on the old page without get_page/put_page",
    expected_kinds=("use-after-free",),
    scenario="migrate-vs-fault",
    strategy="pct",  # bench/time_to_bug.md: PCT 2/5 seeds within 400, random 0/5
    overrides={"target.mm.migrate:migration_entry_wait": migration_entry_wait},
    depth=1,
    # Reproduced and measured with every fix, as the gate replays known reproducers: on V2 as
    # posted the file's schedule ran another way under the gate (a drift on every gate run).
    fixes=("all",),
)
