"""isolate-without-lru-recheck: isolate_lru_page trusts its unlocked PageLRU test and does not
test again under zone->lru_lock.

A mutation of the code's history: 2.6.17 ``isolate_lru_page`` (mm/migrate.c) tests
``PageLRU`` once without the lock, as a cheap filter, and again after ``spin_lock_irq(&zone->
lru_lock)``, because reclaim's ``isolate_lru_pages`` (and another migrator, and
``__page_cache_release``) clear PG_lru and take the page off the list under that lock at any
moment in between. Without the second test:

    migrator (check_pte_range, under the ptl)  kswapd (shrink_one)
    PageLRU(page): set
                                               spin_lock(lru_lock); ClearPageLRU;
                                               del_page_from_lru; spin_unlock
    spin_lock(lru_lock)
    del_page_from_lru_list(page)  <- a page on kswapd's private list, not the LRU

Breaks I3 (a page is isolated at most once: one isolation reference, on one list). Detected as
bad-page-state in del_page_from_lru_list (the list_del that CONFIG_DEBUG_LIST checks).
"""

from __future__ import annotations

from target.kernel import BUG as BUG_
from target.kernel import READ, preempt
from target.mm.migrate import EBUSY, assert_page_pinned_by_ptl
from target.mm.mm_inline import del_page_from_lru_list
from target.mm.swap import get_page_locked
from target.mm.types import Page, PG_lru
from target.mm.world import W

from ._catalog import HistoricalBug


async def isolate_lru_page(page: Page, pagelist: list[Page], *, ref_held: bool = False) -> int:
    if not ref_held:
        assert_page_pinned_by_ptl(page)
    elif page.count <= page.mapcount:
        BUG_("lock-not-held",
            f"isolate_lru_page of pfn {page.pfn}: the caller claims a reference but count "
            f"{page.count} <= mapcount {page.mapcount}", pfn=page.pfn)
    ret = EBUSY
    await preempt(page, READ, "flags")
    if page.flags & PG_lru:
        zone = W().zones[page.nid]
        await zone.lru_lock.lock()
        # BUG: no second PageLRU test now that lru_lock is held
        ret = 0
        get_page_locked(page)
        page.flags &= ~PG_lru
        del_page_from_lru_list(zone, page)
        page.lru = pagelist
        pagelist.append(page)
        await zone.lru_lock.unlock()
    return ret


BUG = HistoricalBug(
    name="isolate-without-lru-recheck",
    year=2006,
    history="mutation",
    reference="mutation of isolate_lru_page's PageLRU test under zone->lru_lock (2.6.17 "
    "mm/migrate.c, from the direct migration series of 2.6.16, Christoph Lameter)",
    breaks="I3: a page is isolated at most once (one isolation reference, on one list)",
    summary="isolate_lru_page does not test PageLRU again under zone->lru_lock",
    expected_kinds=("bad-page-state",),
    scenario="migrate-vs-swap-pin",
    strategy="random",
    overrides={"target.mm.migrate:isolate_lru_page": isolate_lru_page},
    depth=1,
)
