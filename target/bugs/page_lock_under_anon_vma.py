"""page-lock-under-anon-vma: a fault waits for migration by taking the page lock while it
holds anon_vma->lock.

A mutation of the anon_vma-lock design of migration_entry_wait from the V2 review (Lameter,
2006-04-14): stabilise the entry under anon_vma->lock, then "wait" with lock_page instead of
get_page + wait_on_page_locked. mm/rmap.c orders PG_locked above anon_vma->lock, and the
migrator takes them in that order:

    migrator                               faulting task
    lock_page(old)                         spin_lock(&anon_vma->lock)
    try_to_unmap: spin_lock(&anon_vma->lock)   lock_page(old)      // wait forever

lockdep reports the inversion at the fault's first lock_page, whatever the schedule, without
the deadlock having to happen. Breaks I8.
"""

from __future__ import annotations

from target.mm.filemap import lock_page, unlock_page
from target.mm.pgtable import pte_read
from target.mm.swapops import is_migration_entry, migration_entry_to_page
from target.mm.types import AnonVma, MmStruct, PageTablePage, SwapPte

from ._catalog import HistoricalBug


async def migration_entry_wait(mm: MmStruct, table: PageTablePage, address: int) -> None:
    await table.ptl.lock()
    pte = pte_read(table, address)
    if type(pte) is not SwapPte or not is_migration_entry(pte):
        await table.ptl.unlock()
        return
    page = migration_entry_to_page(pte)
    # The whole tail is the review's variant, not the faithful get_page_locked/wait form.
    anon_vma = page.mapping  # BUG: wait by way of the anon_vma ...
    await table.ptl.unlock()
    if not isinstance(anon_vma, AnonVma):  # BUG
        return  # BUG
    await anon_vma.lock.lock()  # BUG
    await lock_page(page)  # BUG: page lock under anon_vma->lock
    await unlock_page(page)  # BUG
    await anon_vma.lock.unlock()  # BUG


BUG = HistoricalBug(
    name="page-lock-under-anon-vma",
    year=2006,
    reference="Swapless V2 review: anon_vma-lock variant of migration_entry_wait, "
    "<Pine.LNX.4.64.0604141417170.22852@...>; mm/rmap.c lock ordering",
    breaks="I8: PG_locked ranks above anon_vma->lock",
    summary="migration_entry_wait takes the page lock while holding anon_vma->lock",
    expected_kinds=("lock-order-inversion",),
    scenario="migrate-vs-fault",
    strategy="random",
    overrides={"target.mm.migrate:migration_entry_wait": migration_entry_wait},
    depth=1,
)
