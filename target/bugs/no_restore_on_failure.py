"""no-restore-on-failure: migrate_page does not restore the old page into the entries when
migrate_page_remove_references fails.

V2 5/5 adds ``remove_migration_ptes(page, page)`` on the failure path; without it, every pte
already turned into a migration entry stays one after the page is unlocked:

    migrator                               faulting task
    try_to_unmap: ptes -> M(old)
                                           migration_entry_wait: get_page(old), sleeps
    count != nr_refs -> -EAGAIN
    (no remove_migration_ptes)
    unlock_page(old)                       wakes, refaults: M(old) on an unlocked page

Breaks I2. Detected at the unlock (migration-entry-leak).
"""

from __future__ import annotations

from target.kernel import BUG_ON
from target.mm.filemap import PageWriteback
from target.mm.migrate import (
    migrate_page_copy,
    migrate_page_remove_references,
    remove_migration_ptes,
)
from target.mm.rmap import page_mapping
from target.mm.types import Page

from ._catalog import HistoricalBug


async def migrate_page(newpage: Page, page: Page) -> int:
    BUG_ON(PageWriteback(page), "bug", "migrate_page: writeback must be complete")
    rc = await migrate_page_remove_references(
        newpage, page, 2 if page_mapping(page) is not None else 1
    )
    if rc:
        # BUG: no remove_migration_ptes(page, page): the entries installed by try_to_unmap
        # are left behind
        return rc
    migrate_page_copy(newpage, page)
    await remove_migration_ptes(page, newpage)
    return 0


BUG = HistoricalBug(
    name="no-restore-on-failure",
    year=2006,
    reference="Swapless V2 5/5 (the failure path's remove_migration_ptes(page, page))",
    breaks="I2: no migration entry once the old page is unlocked",
    summary="migrate_page skips remove_migration_ptes(page, page) on failure",
    expected_kinds=("migration-entry-leak", "migration-entry-on-unlocked-page"),
    scenario="migrate-vs-fault",
    strategy="random",
    overrides={"target.mm.migrate:migrate_page": migrate_page},
    depth=1,
)
