"""The swap cache: mm/swap_state.c (2.6.17). swapper_space's radix tree under tree_lock.

A page in the swap cache holds one reference for the cache (and the slot holds one count for
it); ``page->private`` is its swap entry's offset. The page is locked across a read as in the
kernel, and unlocked when the read completes (page_io.py: at once, or in the irq actor).
"""

from __future__ import annotations

from target.kernel import BUG_ON

from .page_alloc import alloc_page_vma
from .page_io import swap_readpage
from .swap import get_page_locked, lru_cache_add_active, put_page
from .swapfile import get_swap_page, swap_duplicate, swap_free
from .types import Page, PG_dirty, PG_private, PG_swapcache, PG_uptodate, SwapPte
from .world import W


async def find_get_page(entry: SwapPte) -> Page | None:
    """``find_get_page(&swapper_space, entry.val)``: lookup and get_page under tree_lock."""
    space = W().swapper_space
    await space.tree_lock.lock()
    page = space.page_tree.get(entry.offset)
    if page is not None:
        get_page_locked(page)
    await space.tree_lock.unlock()
    return page


async def lookup_swap_cache(entry: SwapPte) -> Page | None:
    return await find_get_page(entry)


async def __add_to_swap_cache(page: Page, entry: SwapPte) -> int:
    """Insert into the radix tree; 0, or -EEXIST if the slot already has a page."""
    BUG_ON(page.flags & PG_private, "bug", "__add_to_swap_cache: PagePrivate")
    space = W().swapper_space
    await space.tree_lock.lock()
    if entry.offset in space.page_tree:
        await space.tree_lock.unlock()
        return -17
    space.page_tree[entry.offset] = page
    get_page_locked(page)
    page.flags |= PG_swapcache
    page.private = entry.offset
    await space.tree_lock.unlock()
    return 0


async def add_to_swap(page: Page) -> bool:
    """``add_to_swap``: give a locked anon page a swap slot and put it in the swap cache.

    Context: page lock held; takes swap_lock and tree_lock in turn (not nested).
    """
    BUG_ON(not page.locked.is_set, "bug", "add_to_swap: page not locked")
    while True:
        entry = await get_swap_page()
        if entry is None:
            return False
        err = await __add_to_swap_cache(page, entry)
        if err == 0:
            page.flags |= PG_uptodate | PG_dirty
            return True
        await swap_free(entry)
        if err != -17:
            return False


async def add_to_swap_cache(page: Page, entry: SwapPte) -> int:
    """``add_to_swap_cache`` (swap-in): count the cache's use of the slot, lock, insert."""
    if not await swap_duplicate(entry):
        return -2  # -ENOENT: the slot was freed under us
    page.locked.test_and_set()  # SetPageLocked on a page nobody else can see yet
    err = await __add_to_swap_cache(page, entry)
    if err:
        page.locked.clear()
        await swap_free(entry)
    return err


async def delete_from_swap_cache(page: Page) -> None:
    """``delete_from_swap_cache``: radix delete, swap_free, drop the cache's reference.

    Context: page lock held; takes tree_lock, then swap_lock.
    """
    BUG_ON(not page.locked.is_set, "bug", "__delete_from_swap_cache: page not locked")
    BUG_ON(not (page.flags & PG_swapcache), "bug", "__delete_from_swap_cache: not swapcache")
    BUG_ON(page.writeback.is_set, "bug", "__delete_from_swap_cache: under writeback")
    entry = SwapPte(0, page.private)
    space = W().swapper_space
    await space.tree_lock.lock()
    __delete_from_swap_cache(page)
    await space.tree_lock.unlock()
    await swap_free(entry)
    await put_page(page)


def __delete_from_swap_cache(page: Page) -> None:
    """``__delete_from_swap_cache``: the radix delete; the slot's count and the cache's
    reference are the caller's to drop. Context: tree_lock held (delete_from_swap_cache,
    remove_exclusive_swap_page)."""
    del W().swapper_space.page_tree[page.private]
    page.flags &= ~PG_swapcache
    page.private = 0


async def read_swap_cache_async(entry: SwapPte, nid: int) -> Page | None:
    """``read_swap_cache_async``: the swap cache page for ``entry``, with a reference.

    Context: may sleep (allocation). Loops on the -EEXIST race with another swap-in.
    """
    new_page: Page | None = None
    found: Page | None = None
    while True:
        found = await find_get_page(entry)
        if found is not None:
            break
        if new_page is None:
            new_page = await alloc_page_vma(nid)
            if new_page is None:
                break
        err = await add_to_swap_cache(new_page, entry)
        if err == 0:
            await lru_cache_add_active(new_page)
            swap_readpage(new_page, entry)
            return new_page
        if err == -2:
            break
    if new_page is not None:
        await put_page(new_page)
    return found
