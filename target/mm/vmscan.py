"""Reclaim of anonymous pages to swap: mm/vmscan.c shrink_page_list and mm/page_io.c.

One call of :func:`shrink_one` is what kswapd does to one page at the cold end of a zone's
LRU: isolate it, then the 2.6.17 ``shrink_page_list`` steps for an anon page:

    TestSetPageLocked (trylock: keep if busy)   PageWriteback -> keep
    page_referenced (clears young bits)         referenced and mapped -> activate
    add_to_swap (slot + swap cache)             try_to_unmap(page, 0): ptes -> swap entries
    pageout -> swap_writepage (page_io.py)      set writeback, unlock; I/O completes later
    (a later call) remove_mapping               off the swap cache; the page is freed

A page therefore takes three calls to leave memory: one to clear its accessed bits, one to
unmap and write it, one to free it once the write has completed (``end_swap_io`` at the end of
kswapd's step, or the interrupt actor with asynchronous I/O).
Simplifications: one page per call; no swap token.
"""

from __future__ import annotations

from target.kernel import BUG_ON

from .filemap import PageWriteback, TestSetPageLocked, unlock_page
from .mm_inline import del_page_from_lru
from .page_io import swap_writepage
from .rmap import (
    SWAP_AGAIN,
    SWAP_FAIL,
    PageAnon,
    PageSwapCache,
    page_mapped,
    page_mapping,
    page_referenced,
    try_to_unmap,
)
from .swap import __put_page, get_page_locked, lru_add_drain, lru_cache_add, put_page
from .swap_state import add_to_swap
from .swapfile import swap_free
from .types import Page, PG_active, PG_dirty, PG_lru, PG_swapcache, SwapPte
from .world import W

PAGE_KEEP, PAGE_ACTIVATE, PAGE_SUCCESS, PAGE_CLEAN = range(4)


async def pageout(page: Page) -> int:
    """``pageout``: write a dirty, otherwise unused swap cache page (swap_writepage may
    instead take it out of the swap cache: PAGE_SUCCESS either way, the page now dirty or
    under writeback, which shrink_page_list keeps)."""
    if page.count != 2:  # is_page_cache_freeable: our isolation ref + the swap cache's
        return PAGE_KEEP
    if page.flags & PG_dirty:  # clear_page_dirty_for_io
        page.flags &= ~PG_dirty
        await swap_writepage(page)
        return PAGE_SUCCESS
    return PAGE_CLEAN


async def remove_mapping(page: Page) -> bool:
    """``remove_mapping`` for the swap cache: only if we hold the only other reference."""
    BUG_ON(not page.locked.is_set, "bug", "remove_mapping: page not locked")
    space = W().swapper_space
    await space.tree_lock.lock()
    if page.count != 2 or page.flags & PG_dirty or not PageSwapCache(page):
        await space.tree_lock.unlock()
        return False
    entry = SwapPte(0, page.private)
    del space.page_tree[entry.offset]  # __delete_from_swap_cache
    page.flags &= ~PG_swapcache
    page.private = 0
    await space.tree_lock.unlock()
    await swap_free(entry)
    __put_page(page)  # the page cache reference
    return True


async def shrink_page_list(page: Page) -> bool:
    """``shrink_page_list`` for one isolated page. Returns True if the page was freed.

    Context: no locks on entry; the page holds our isolation reference.
    """
    if await TestSetPageLocked(page):
        return False  # keep
    if PageWriteback(page):
        await unlock_page(page)
        return False
    referenced = await page_referenced(page)
    if referenced and page_mapped(page):
        page.flags |= PG_active
        await unlock_page(page)
        return False
    if PageAnon(page) and not PageSwapCache(page):
        if not await add_to_swap(page):
            page.flags |= PG_active
            await unlock_page(page)
            return False
    if page_mapped(page) and page_mapping(page) is not None:
        ret = await try_to_unmap(page, False)
        if ret == SWAP_FAIL:
            page.flags |= PG_active
            await unlock_page(page)
            return False
        if ret == SWAP_AGAIN:
            await unlock_page(page)
            return False
    if page.flags & PG_dirty:
        if referenced:
            await unlock_page(page)
            return False
        res = await pageout(page)
        if res == PAGE_KEEP:
            await unlock_page(page)
            return False
        if res == PAGE_SUCCESS:
            # unlocked by swap_writepage: under writeback (freed by a later call), or out of
            # the swap cache and dirty (remove_exclusive_swap_page), put back as the
            # kernel's PageDirty keeps it
            return False
    if page_mapping(page) is None or not await remove_mapping(page):
        await unlock_page(page)
        return False
    await unlock_page(page)
    return True


async def shrink_one(nid: int) -> bool:
    """Isolate the coldest page of node ``nid``'s LRU and try to reclaim it.

    Context: takes zone->lru_lock to isolate (``isolate_lru_pages``) and to put back.
    Returns True if a page was freed.
    """
    await lru_add_drain()  # shrink_inactive_list: this CPU's pagevecs onto the LRU first
    zone = W().zones[nid]
    await zone.lru_lock.lock()
    lru = zone.inactive_list or zone.active_list
    if not lru:
        await zone.lru_lock.unlock()
        return False
    page = lru[0]
    if page.count == 0:
        # get_page_testone: "It is being freed elsewhere" -- put_page dropped the last
        # reference and waits for this lru_lock to take the page off the list.
        await zone.lru_lock.unlock()
        return False
    get_page_locked(page)
    page.flags &= ~PG_lru
    del_page_from_lru(zone, page)  # deactivate too: shrink_page_list wants inactive pages
    await zone.lru_lock.unlock()
    if await shrink_page_list(page):
        await put_page(page)  # __pagevec_release_nonlru: the last reference
        return True
    active = bool(page.flags & PG_active)
    page.flags &= ~PG_active
    await lru_cache_add(page, active=active)
    await put_page(page)
    return False
