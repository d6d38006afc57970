"""unlock-before-remove: the old page is unlocked while migration entries still point at it.

The writepage problem of 2006-04 (V2 thread; fixed in 2.6.18's writeout() by calling
remove_migration_ptes(page, page) *before* ->writepage, which unlocks the page): "Any use of
migration entries may only occur while the corresponding page is locked". Here the success
path drops the old page's lock before replacing the entries, as a ->writepage would:

    migrator                               faulting task
    migrate_page_copy(new, old)
    unlock_page(old)        <- entries M(old) still installed
                                           sees M(old): migration_entry_to_page BUG_ON
    remove_migration_ptes(old, new)

Breaks I2. Detected at the unlock (migration-entry-leak) or by a fault on the entry
(migration-entry-on-unlocked-page).
"""

from __future__ import annotations

from target.kernel import BUG_ON
from target.mm.filemap import PageWriteback, lock_page, unlock_page
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
        await remove_migration_ptes(page, page)
        return rc
    migrate_page_copy(newpage, page)
    await unlock_page(page)  # BUG: as ->writepage does, with the entries still pointing here
    await remove_migration_ptes(page, newpage)
    await lock_page(page)  # BUG: (taken again: migrate_pages unlocks it)
    return 0


BUG = HistoricalBug(
    name="unlock-before-remove",
    year=2006,
    reference="Swapless V2 thread, 2006-04 (writepage unlocks the page); fixed by writeout() "
    "calling remove_migration_ptes before ->writepage in 2.6.18",
    breaks="I2: no migration entry once the old page is unlocked",
    summary="the old page is unlocked before remove_migration_ptes",
    expected_kinds=("migration-entry-leak", "migration-entry-on-unlocked-page"),
    scenario="migrate-vs-fault",
    strategy="random",
    overrides={"target.mm.migrate:migrate_page": migrate_page},
    depth=0,
)
