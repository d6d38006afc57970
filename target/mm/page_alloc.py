"""The page allocator: mm/page_alloc.c (alloc_pages_node, free_hot_cold_page).

The free path runs the 2.6.17 ``free_pages_check``: a page freed while still mapped, still
attached to a mapping, still on the LRU, locked, in the swap cache or under writeback is a
``bad-page-state`` finding, which is how the kernel catches most refcount bugs in this code.
Allocation takes the lowest free pfn of the node, so runs are deterministic.
"""

from __future__ import annotations

from target.kernel import BUG, WRITE, might_sleep, preempt, trace

from .types import AnonVma, Page, PG_active, PG_lru, PG_private, PG_reserved, PG_swapcache
from .world import W


async def alloc_pages_node(nid: int) -> Page | None:
    """``alloc_pages_node(nid, GFP_HIGHUSER, 0)``: a page with count 1, or None (OOM).

    Context: may sleep in the kernel (direct reclaim); here a scheduling point. No locks:
    ``might_sleep_if(gfp_mask & __GFP_WAIT)`` in __alloc_pages checks it.
    """
    might_sleep("alloc_pages_node(GFP_HIGHUSER)")
    w = W()
    await preempt(w.zones[nid], WRITE, "free_list")
    free = w.zones[nid].free_list
    if not free:
        w.alloc_failures += 1
        return None
    page = min(free, key=lambda p: p.pfn)
    free.remove(page)
    page.lru = None
    page._count = 1
    page.ghost_gen += 1
    page.flags = 0
    page.data = 0  # alloc_zeroed_user_highpage; every user of the model wants zeroed pages
    trace("alloc", pfn=page.pfn, count=1)
    return page


async def alloc_page_vma(nid: int) -> Page | None:
    """``alloc_page_vma``: the model's vmas have no policy; allocate on the faulting node."""
    return await alloc_pages_node(nid)


def free_pages_check(page: Page) -> None:
    """``free_pages_check`` (2.6.17): ``bad_page()`` on any state a free page must not have."""
    bad = []
    if page.mapcount != 0:
        bad.append(f"mapcount={page.mapcount}")
    if page.mapping is not None:
        bad.append(f"mapping={page.mapping!r}")
    if page.flags & (PG_lru | PG_private | PG_active | PG_reserved | PG_swapcache):
        bad.append(f"flags={page!r}")
    if page.locked.is_set:
        bad.append("PG_locked")
    if page.writeback.is_set:
        bad.append("PG_writeback")
    if bad:
        BUG("bad-page-state", f"Bad page state at free: pfn {page.pfn}: {', '.join(bad)}",
            pfn=page.pfn, problems=bad)


def free_hot_cold_page(page: Page) -> None:
    """``free_hot_cold_page``: check the page and put it on its node's free list.

    Context: the caller dropped the last reference; no locks needed beyond the zone's (the
    model frees atomically). An anonymous page still has ``mapping`` pointing at its anon_vma
    (page_remove_rmap leaves it): it is cleared here, before the check, as in 2.6.17.
    """
    if isinstance(page.mapping, AnonVma):
        page.mapping = None
    free_pages_check(page)
    page.flags = 0
    page.data = -1  # poison, so a read of freed memory is visible in data checks
    zone = W().zones[page.nid]
    page.lru = zone.free_list
    zone.free_list.append(page)
    trace("free", pfn=page.pfn)
