"""missing-get-new: remove_migration_pte maps the new page without get_page(new).

Each restored pte must own a reference on the page it maps (reference A.19 step 5:
``N.count++`` per pte). Without it the new page's count falls short of its mapcount, and the
page is freed while still mapped when the ptes go away.

Breaks I3. Detected as refcount-underflow, bad-page-state, or at quiescence.
"""

from __future__ import annotations

from target.kernel import kasan_check, trace
from target.mm.pgtable import (
    pte_offset_map,
    pte_peek,
    pte_read,
    pte_unmap,
    set_pte_at,
    walk_pte_table,
)
from target.mm.rmap import page_add_anon_rmap
from target.mm.swapops import is_migration_entry, migration_entry_to_page
from target.mm.types import Page, PresentPte, SwapPte, VmArea

from ._catalog import HistoricalBug


async def remove_migration_pte(vma: VmArea, addr: int, old: Page, new: Page) -> None:
    kasan_check(vma, "remove_migration_pte")
    mm = vma.vm_mm
    kasan_check(mm, "remove_migration_pte")
    table = walk_pte_table(mm, addr, "remove_migration_pte")
    if table is None:
        return
    ptep = pte_offset_map(table, addr)
    if type(await pte_peek(table, addr)) is not SwapPte:
        pte_unmap(ptep)
        return
    ptl = table.ptl
    await ptl.lock()
    pte = pte_read(table, addr)
    if type(pte) is SwapPte and is_migration_entry(pte) and migration_entry_to_page(pte) is old:
        mm.anon_rss += 1
        trace("rss", mm=mm.name, anon_rss=mm.anon_rss)  # the timeline's I5 rows
        # BUG: no get_page(new)
        await set_pte_at(mm, addr, table, PresentPte(new.pfn, vma.vm_page_prot_write, False,
                                                     False))  # pte_mkold(mk_pte(new, prot))
        await page_add_anon_rmap(new, vma, addr)
    pte_unmap(pte)  # pte_unmap_unlock(pte, ptl): the value, not ptep (V2's slip)
    await ptl.unlock()


BUG = HistoricalBug(
    name="missing-get-new",
    year=2006,
    reference="Swapless V2 5/5 remove_migration_pte (get_page(new) before set_pte_at)",
    breaks="I3: count covers every pte mapping the page",
    summary="remove_migration_pte maps the new page without a reference",
    expected_kinds=("refcount-underflow", "bad-page-state", "page-leak", "use-after-free"),
    scenario="migrate-vs-fault",
    strategy="random",
    overrides={"target.mm.migrate:remove_migration_pte": remove_migration_pte},
    depth=0,
)
