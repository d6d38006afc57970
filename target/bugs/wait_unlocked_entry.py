"""wait-unlocked-entry: migration_entry_wait trusts a migration entry read without the ptl.

A mutation of the code's history, not a posted patch: the V2 review settled on reading the
entry *under* the page-table lock (reference A.6; 2.6.18 ``migration_entry_wait``:
``ptep = pte_offset_map_lock(...); pte = *ptep; ... get_page(page);``), because only while
the ptl is held and the entry is in place does the migrator's isolation reference keep the
old page alive. This version reads the pte first and takes the lock after, so the entry it
acts on may already be gone:

    faulting task                          migrator
    pte = *ptep: sees M(old)
                                           remove_migration_ptes: pte := P(new)
                                           unlock_page(old); putback: old freed
    spin_lock(ptl)
    get_page(old)                          (a free page)

Breaks I3 (never get_page on a page that may already be free). Detected first by the
kernel's own check in ``migration_entry_to_page`` (2.6.18: ``BUG_ON(!PageLocked(p))``, the
entry's page is no longer locked by a migration), else as use-after-free.
"""

from __future__ import annotations

from target.mm.filemap import wait_on_page_locked
from target.mm.pgtable import pte_peek
from target.mm.swap import get_page_locked, put_page
from target.mm.swapops import is_migration_entry, migration_entry_to_page
from target.mm.types import MmStruct, PageTablePage, SwapPte

from ._catalog import HistoricalBug


async def migration_entry_wait(mm: MmStruct, table: PageTablePage, address: int) -> None:
    pte = await pte_peek(table, address)  # BUG: the entry is read before the ptl is taken ...
    await table.ptl.lock()
    # BUG: ... and not read again under it
    if type(pte) is not SwapPte or not is_migration_entry(pte):
        await table.ptl.unlock()
        return
    page = migration_entry_to_page(pte)
    get_page_locked(page)
    await table.ptl.unlock()
    await wait_on_page_locked(page)
    await put_page(page)


BUG = HistoricalBug(
    name="wait-unlocked-entry",
    year=2006,
    history="mutation",
    reference="mutation of 2.6.18 migration_entry_wait (pte read under pte_offset_map_lock); "
    "the V2 review's locking question, akpm 2006-04-14",
    breaks="I3: never get_page on a page that may already be free",
    summary="migration_entry_wait acts on an entry read before taking the ptl",
    expected_kinds=("migration-entry-on-unlocked-page", "use-after-free", "refcount-underflow",
                    "bad-page-state"),
    scenario="migrate-vs-fault",
    strategy="pct",
    overrides={"target.mm.migrate:migration_entry_wait": migration_entry_wait},
    depth=1,
    # Reproduced and measured with every fix, as the gate replays known reproducers: on V2 as
    # posted the file's schedule ran another way under the gate (a drift on every gate run).
    fixes=("all",),
)
