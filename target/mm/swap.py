"""Page reference counting and LRU addition: mm/swap.c and include/linux/mm.h (2.6.17).

``get_page``/``put_page`` are atomic operations on ``page->_count``; each is a scheduling
point, because unlocked readers (migrate_pages' ``page_count(page) == 1``, the refcount checks
of migrate_page_remove_references) race with them. There are no pagevecs: lru_cache_add puts
the page on the LRU at once, so the temporary pagevec reference of the kernel never appears
(docs/model.md).
"""

from __future__ import annotations

from target.kernel import BUG, preempt, trace

from .mm_inline import add_page_to_active_list, add_page_to_inactive_list, del_page_from_lru
from .page_alloc import free_hot_cold_page
from .types import Page, PG_active, PG_lru
from .world import W


async def get_page(page: Page) -> None:
    """``get_page``: ``atomic_inc(&page->_count)``. 2.6.17 has no zero check; the model has one.

    Taking a reference on a free page is how the rejected lookup_swap_cache design of the V2
    review goes wrong ("a get_page() on a random page which could be in any state"), so it is
    reported as a use-after-free of the page.
    """
    await preempt()
    if page._count <= 0:
        BUG("use-after-free", f"get_page on free page pfn {page.pfn}", pfn=page.pfn)
    page._count += 1
    trace("get_page", pfn=page.pfn, count=page._count)


def get_page_locked(page: Page) -> None:
    """``get_page`` where the caller already passed a point (under the lock it just took)."""
    if page._count <= 0:
        BUG("use-after-free", f"get_page on free page pfn {page.pfn}", pfn=page.pfn)
    page._count += 1
    trace("get_page", pfn=page.pfn, count=page._count)


async def put_page(page: Page) -> None:
    """``put_page``/``page_cache_release``: drop a reference; the last one frees the page.

    Context: any; the final put takes zone->lru_lock if the page is still on the LRU
    (``__page_cache_release``), which is allowed under ptl (rmap.c order).
    """
    await preempt()
    if page._count <= 0:
        BUG("refcount-underflow", f"put_page on page pfn {page.pfn} with count {page._count}",
            pfn=page.pfn, count=page._count)
    page._count -= 1
    trace("put_page", pfn=page.pfn, count=page._count)
    if page._count == 0:
        await __page_cache_release(page)


def __put_page(page: Page) -> None:
    """``__put_page``: drop a reference the caller knows is not the last (radix-tree ref)."""
    if page._count <= 1:
        BUG("refcount-underflow", f"__put_page would free page pfn {page.pfn}",
            pfn=page.pfn, count=page._count)
    page._count -= 1
    trace("put_page", pfn=page.pfn, count=page._count)


async def __page_cache_release(page: Page) -> None:
    """``__page_cache_release``: take the page off the LRU, then free it."""
    if page.flags & PG_lru:
        zone = W().zones[page.nid]
        await zone.lru_lock.lock()
        if page.flags & PG_lru:
            page.flags &= ~PG_lru
            del_page_from_lru(zone, page)
        await zone.lru_lock.unlock()
    free_hot_cold_page(page)


async def lru_cache_add(page: Page, active: bool = False) -> None:
    """``lru_cache_add``/``lru_cache_add_active`` with the pagevec drained at once.

    Context: takes and releases zone->lru_lock.
    """
    zone = W().zones[page.nid]
    await zone.lru_lock.lock()
    if page.flags & PG_lru:
        BUG("bug", f"lru_cache_add of page pfn {page.pfn} already on the LRU", pfn=page.pfn)
    page.flags |= PG_lru
    if active:
        page.flags |= PG_active
        add_page_to_active_list(zone, page)
    else:
        add_page_to_inactive_list(zone, page)
    await zone.lru_lock.unlock()


async def lru_cache_add_active(page: Page) -> None:
    await lru_cache_add(page, active=True)
