"""Swap slots and their counts: mm/swapfile.c (2.6.17 with V2 2/5).

``swap_map[offset]`` counts the users of a slot: one for the swap cache, one per swap pte,
under swap_lock. V2 2/5 makes the two entry points that can meet a migration entry treat it
as a no-op: ``swap_duplicate`` returns success, ``free_swap_and_cache`` returns at once. A
migration entry therefore carries no swap count, no page reference and no mapcount.
"""

from __future__ import annotations

from target.kernel import BUG

from .swapops import SWAP_TYPE_DEVICE, is_migration_entry, swp_entry
from .types import Page, PG_dirty, SwapPte
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
    from .swap import put_page
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
        if PageSwapCache(page) and not page.writeback.is_set and one_user:
            await delete_from_swap_cache(page)
            page.flags |= PG_dirty  # SetPageDirty: the data now lives only in the page
        await unlock_page(page)
        await put_page(page)
