"""isolate-outside-ptl: check_pte_range isolates pages after dropping the pte lock.

"mm: migration page refcounting fix" (Nick Piggin, 2006-01): isolate_lru_page must run under
the ptl of a pte that maps the page, or the page may be freed in between; isolate_lru_page
would then take a reference on a page whose last put is in flight:

    migrator                               other tasks
    spin_lock(ptl); page = pte's page
    spin_unlock(ptl)
                                           parent writes: COW copy, old page's pte gone
                                           child exits: last put_page(old) -> count 0,
                                             waits for lru_lock to unlink it
    isolate_lru_page(old): PageLRU, get_page on count 0

Breaks I3. Detected at every such call by isolate_lru_page's precondition check (the caller
holds the ptl of a pte mapping the page: lock-not-held), and, when the race above happens
too, as use-after-free (get_page on a free page).
"""

from __future__ import annotations

from target.mm.mempolicy import MPOL_MF_INVERT, MPOL_MF_MOVE, MPOL_MF_MOVE_ALL, migrate_page_add
from target.mm.pgtable import pte_read
from target.mm.types import Page, PG_reserved, PresentPte, VmArea
from target.mm.world import W

from ._catalog import HistoricalBug


async def check_pte_range(
    vma: VmArea, start: int, end: int, nodes: set[int], flags: int, pagelist: list[Page]
) -> None:
    mm = vma.vm_mm
    table = mm.pte_table(start, alloc=False)
    if table is None:
        return
    found: list[Page] = []  # BUG: the scan collects the pages under the ptl ...
    await table.ptl.lock()
    for addr in range(start, end):
        pte = pte_read(table, addr)
        if type(pte) is not PresentPte:
            continue
        page = W().mem_map[pte.pfn]
        if page.flags & PG_reserved:
            continue
        if (page.nid in nodes) == bool(flags & MPOL_MF_INVERT):
            continue
        found.append(page)  # BUG: ...
    await table.ptl.unlock()  # BUG: ... and isolates them after dropping it:
    for page in found:  # BUG: nothing keeps these pages alive any more
        if flags & (MPOL_MF_MOVE | MPOL_MF_MOVE_ALL):
            await migrate_page_add(page, pagelist, flags)
        else:
            break
    # BUG: (the ptl was dropped above, before the isolation)


BUG = HistoricalBug(
    name="isolate-outside-ptl",
    year=2006,
    reference='"mm: migration page refcounting fix", Nick Piggin, 2006-01',
    breaks="I3: never get_page on a page that may already be free",
    summary="check_pte_range isolates pages after dropping the ptl",
    expected_kinds=("lock-not-held", "use-after-free", "bad-page-state", "refcount-underflow"),
    scenario="migrate-vs-cow-exit",
    strategy="random",
    overrides={"target.mm.mempolicy:check_pte_range": check_pte_range},
    depth=0,
    model_check="target.mm.migrate:assert_page_pinned_by_ptl",
    depth_without_check=None,  # not found by DFS up to bound 3 (capped: 50,000 per bound)
)
