"""nr-refs-constant: migrate_page passes nr_refs = 2 for every page.

V2 5/5 passes ``page_mapping(page) ? 2 : 1``: an anonymous page not in the swap cache has only
the isolation reference left once unmapped. With 2, the expected count of an anon page is one
too many, and a *pinned* page's extra reference (get_user_pages for DMA) is mistaken for the
radix-tree reference it does not have:

    migrator                               device (pinned page)
    count == mapcount + 2: goes ahead
    try_to_unmap; count == 2 == nr_refs
    migrate_page_copy(new, old)
                                           DMA store into old
    remove_migration_ptes(old, new)        the process reads new: the store is lost

(An unpinned anon page can never pass the first check and is never migrated.) Breaks I10.
Detected as a lost write.
"""

from __future__ import annotations

from target.kernel import BUG_ON
from target.mm.filemap import PageWriteback
from target.mm.migrate import (
    migrate_page_copy,
    migrate_page_remove_references,
    remove_migration_ptes,
)
from target.mm.types import Page

from ._catalog import HistoricalBug


async def migrate_page(newpage: Page, page: Page) -> int:
    BUG_ON(PageWriteback(page), "bug", "migrate_page: writeback must be complete")
    rc = await migrate_page_remove_references(newpage, page, 2)  # BUG: not 1 for anon pages
    if rc:
        await remove_migration_ptes(page, page)
        return rc
    migrate_page_copy(newpage, page)
    await remove_migration_ptes(page, newpage)
    return 0


BUG = HistoricalBug(
    name="nr-refs-constant",
    year=2006,
    reference="Swapless V2 5/5: migrate_page_remove_references(newpage, page, "
    "page_mapping(page) ? 2 : 1)",
    breaks="I10: no write may land in the old page after copy_highpage",
    summary="nr_refs is 2 for every page, so a pinned anon page is migrated",
    expected_kinds=("lost-write",),
    scenario="tiny-migrate-pin",
    strategy="pct",  # bench/time_to_bug.md: PCT and random in 1 schedule (median)
    overrides={"target.mm.migrate:migrate_page": migrate_page},
    depth=1,
)
