"""Swap slots and their counts: mm/swapfile.c (2.6.17 with V2 2/5).

``swap_map[offset]`` counts the users of a slot: one for the swap cache, one per swap pte,
under swap_lock. V2 2/5 makes the two entry points that can meet a migration entry treat it
as a no-op: ``swap_duplicate`` returns success, ``free_swap_and_cache`` returns at once. A
migration entry therefore carries no swap count, no page reference and no mapcount.
"""

from __future__ import annotations

from target.kernel import BUG, BUG_ON

from .swap import put_page
from .swapops import SWAP_TYPE_DEVICE, is_migration_entry, swp_entry
from .types import Page, PG_dirty, PG_private, PG_swapcache, SwapPte
from .world import W


async def get_swap_page() -> SwapPte | None:
    """``get_swap_page``: allocate a slot with count 1 (the swap cache's), or None. Nothing
    is allocated from an area without SWP_WRITEOK (swapoff is emptying it)."""
    w = W()
    if not w.swap_map:
        return None
    await w.swap_lock.lock()
    entry = None
    if not w.swap_writeok:
        await w.swap_lock.unlock()
        return None
    for offset in range(1, len(w.swap_map)):
        if w.swap_map[offset] == 0:
            w.swap_map[offset] = 1
            entry = swp_entry(SWAP_TYPE_DEVICE, offset)
            break
    await w.swap_lock.unlock()
    return entry


async def swap_duplicate(entry: SwapPte) -> int:
    """``swap_duplicate``: one more user of the slot; a no-op "success" for migration entries.

    Context: takes swap_lock (under ptl in fork and try_to_unmap_one).
    """
    if is_migration_entry(entry):
        return 1
    w = W()
    await w.swap_lock.lock()
    result = 0
    if 0 < entry.offset < len(w.swap_map) and w.swap_map[entry.offset]:
        w.swap_map[entry.offset] += 1
        result = 1
    await w.swap_lock.unlock()
    return result


async def swap_free(entry: SwapPte) -> None:
    """``swap_free``: drop one user of the slot. Context: takes swap_lock."""
    w = W()
    await w.swap_lock.lock()
    if w.swap_map[entry.offset] <= 0:
        await w.swap_lock.unlock()
        BUG("refcount-underflow", f"swap_free: slot {entry.offset} has no users",
            offset=entry.offset)
    w.swap_map[entry.offset] -= 1
    await w.swap_lock.unlock()


async def page_swapcount(page: Page) -> int:
    """``page_swapcount``: users of the page's slot other than the swap cache itself."""
    w = W()
    await w.swap_lock.lock()
    count = w.swap_map[page.private] - 1
    await w.swap_lock.unlock()
    return count


def vm_swap_full() -> bool:
    """``vm_swap_full`` (include/linux/swap.h): "Swap 50% full? Release swapcache more
    aggressively", ``nr_swap_pages * 2 < total_swap_pages``. An unlocked read of a counter,
    so no scheduling point (the model counts the free slots of its one area).

    Simplification: 2.6.17's ``sys_swapoff`` takes the area's pages out of both counters
    before ``try_to_unuse``, so there this is true while a swapoff runs and any slot is in
    use; the model's counts ignore swapoff (``swap_writeok``)."""
    w = W()
    total = len(w.swap_map) - 1
    free = sum(1 for count in w.swap_map[1:] if count == 0)
    return free * 2 < total


async def valid_swaphandles(entry: SwapPte, page_cluster: int) -> tuple[int, int]:
    """``valid_swaphandles``: the first offset and the number of slots of ``entry``'s aligned
    cluster of ``1 << page_cluster`` that swap-in may read ahead, up to the first free slot
    (slot 0, the swap header, is skipped). Context: takes swap_lock.
    """
    if not page_cluster:  # "no readahead"
        return 0, 0
    w = W()
    i = 1 << page_cluster
    toff = (entry.offset >> page_cluster) << page_cluster
    if not toff:  # "first page is swap header"
        toff, i = 1, i - 1
    first, ret = toff, 0
    await w.swap_lock.lock()
    while i:
        # "Don't read-ahead past the end of the swap area"; "Don't read in free or bad pages"
        if toff >= len(w.swap_map) or not w.swap_map[toff]:
            break
        toff += 1
        ret += 1
        i -= 1
    await w.swap_lock.unlock()
    return first, ret


async def remove_exclusive_swap_page(page: Page) -> int:
    """``remove_exclusive_swap_page``: "Work out if there are any other processes sharing
    this swap cache page. Free it if you can. Return success." The page leaves the swap
    cache (dirty: its data now lives only in memory) when the caller's reference and the
    cache's are its only ones and the slot has no user but the cache.

    Context: page lock held (the callers: swap_writepage, do_swap_page under the ptl, and
    free_swap_cache of the mmu_gather); takes swap_lock (swap_info_get), and tree_lock
    nested in it for the recheck of the count.
    """
    from .swap_state import __delete_from_swap_cache  # local: swap_state imports us

    BUG_ON(page.flags & PG_private, "bug", "remove_exclusive_swap_page: PagePrivate")
    BUG_ON(not page.locked.is_set, "bug", "remove_exclusive_swap_page: page not locked")
    if not page.flags & PG_swapcache or page.writeback.is_set:
        return 0
    if page.count != 2:  # "2: us + cache"
        return 0
    w = W()
    entry = SwapPte(0, page.private)
    retval = 0
    await w.swap_lock.lock()
    if w.swap_map[entry.offset] == 1:  # "Is the only swap cache user the cache itself?"
        space = w.swapper_space
        await space.tree_lock.lock()
        # "Recheck the page count with the swapcache lock held.."
        if page.count == 2 and not page.writeback.is_set:
            __delete_from_swap_cache(page)
            page.flags |= PG_dirty
            retval = 1
        await space.tree_lock.unlock()
    await w.swap_lock.unlock()
    if retval:
        await swap_free(entry)
        await put_page(page)  # the swap cache's reference
    return retval


async def free_swap_and_cache(entry: SwapPte) -> None:
    """``free_swap_and_cache`` (zap of a swap pte): drop the pte's slot count; if only the
    swap cache is left, drop the page from the cache too.

    Context: ptl held, so the page lock is only *tried* (it ranks above ptl); takes swap_lock,
    then tree_lock via delete_from_swap_cache.
    """
    if is_migration_entry(entry):
        return
    # Local imports: rmap and swap_state import this module.
    from .filemap import TestSetPageLocked, unlock_page
    from .rmap import PageSwapCache
    from .swap_state import delete_from_swap_cache, find_get_page

    w = W()
    page = None
    await w.swap_lock.lock()
    w.swap_map[entry.offset] -= 1
    if w.swap_map[entry.offset] == 1:
        page = await find_get_page(entry)
        if page is not None and await TestSetPageLocked(page):
            await put_page(page)
            page = None
    await w.swap_lock.unlock()
    if page is not None:
        one_user = page.count == 2
        # "Only cache user (+us), or swap space full? Free it!"
        if PageSwapCache(page) and not page.writeback.is_set and (one_user or vm_swap_full()):
            await delete_from_swap_cache(page)
            page.flags |= PG_dirty  # SetPageDirty: the data now lives only in the page
        await unlock_page(page)
        await put_page(page)
