"""find-get-page-after-unlock: ``find_get_page`` drops swapper_space's tree_lock before it
takes its reference on the page it found.

A mutation of the code's history: 2.6.17 ``find_get_page`` does ``radix_tree_lookup`` and
``page_cache_get`` under ``mapping->tree_lock``, and every path that takes a page out of the
swap cache (reclaim's ``remove_mapping``, migration's ``migrate_page_remove_references``)
checks the page's count under that same lock: a reference taken under it is seen, one taken
after it is not. The lookup_swap_cache design akpm rejected in the V2 review (2006-04-14,
"we're doing a get_page() on a random page which could be in any state - it could be on the
freelists") is this window; Nick Piggin's lockless pagecache (2.6.27: e286781d5f2e "mm:
speculative page references", a60637c85893 "mm: lockless pagecache") closes it without the
lock by ``page_cache_get_speculative`` (no reference on a count-0 page) and a recheck of the
slot. Here the reference comes after the unlock, with no recheck:

    swap-in (do_swap_page)                   kswapd: reclaim of the page's node
                                             swap-out 2: pte 0 := S, page under writeback
    pte_peek: S
    lookup_swap_cache(S): tree_lock;
      page := slot; tree_lock unlocked
                                             swap-out 3: remove_mapping: count == 2
                                               (isolation + cache): deleted, freed
    get_page(page)  <- on a free page

Both the reader and the remover must be stopped in a window of their own: a deep race (two
preemptions). Breaks I3 (never get_page on a count-0 page). Detected as use-after-free in
get_page. Measured and reproduced with the upstream fixes of V2's flaws applied (``fixes``),
as the gate replays its reproducer: its scenario migrates the page first.
"""

from __future__ import annotations

from target.mm.swap import get_page
from target.mm.types import Page, SwapPte
from target.mm.world import W

from ._catalog import HistoricalBug


async def find_get_page(entry: SwapPte) -> Page | None:
    space = W().swapper_space
    await space.tree_lock.lock()
    page = space.page_tree.get(entry.offset)
    # BUG: the lock that orders this lookup against remove_mapping's count check is dropped ...
    await space.tree_lock.unlock()
    if page is not None:
        await get_page(page)  # BUG: ... before the reference is taken (was get_page_locked)
    # BUG: (tree_lock was dropped here, after the reference)
    return page


BUG = HistoricalBug(
    name="find-get-page-after-unlock",
    year=2006,
    history="mutation",
    reference="mutation of find_get_page's page_cache_get under tree_lock (2.6.17 "
    "mm/filemap.c); akpm in the Swapless V2 review (2006-04-14) on lookup_swap_cache; the "
    "lockless form: Nick Piggin, 2008, e286781d5f2e \"mm: speculative page references\" and "
    "a60637c85893 \"mm: lockless pagecache\"",
    breaks="I3: never get_page on a page that may already be free",
    summary="find_get_page takes its reference after dropping the swap cache's tree_lock",
    expected_kinds=("use-after-free",),
    scenario="swapin-vs-reclaim",
    strategy="pct",
    overrides={"target.mm.swap_state:find_get_page": find_get_page},
    depth=2,
    fixes=("all",),
)
