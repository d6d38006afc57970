"""remove-pte-unlocked: remove_migration_pte acts on its unlocked peek of the pte.

A mutation of the code's history: V2 5/5's ``remove_migration_pte`` peeks at the pte without
the lock (``if (!is_swap_pte(pte)) return;``) and then, under the ptl, checks again that it
is still a migration entry for the old page (``if (!is_migration_entry(entry) ||
migration_entry_to_page(entry) != old) goto out;``, reference A.15). This version drops the
locked recheck, so any swap pte at the address, or a pte that changed after the peek, is
overwritten with a pte mapping the new page:

    remove_migration_ptes (anon_vma walk)   another task
    peek: a swap pte at addr
                                            the pte changes (fault, zap, swap-in)
    spin_lock(ptl); set_pte_at(P(new))      the entry or page it held is lost

Breaks I2/I3: a pte is replaced only if it is the migration entry being removed. Detected as
a page leak, an rss or mapcount mismatch, a lost write or a swap-count BUG.
"""

from __future__ import annotations

from target.kernel import kasan_check, trace
from target.mm.pgtable import pte_offset_map, pte_peek, pte_unmap, set_pte_at, walk_pte_table
from target.mm.rmap import page_add_anon_rmap
from target.mm.swap import get_page
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
    # BUG: no pte_read under the ptl, and no check that it is still M(old)
    if True:  # BUG: the unlocked peek is trusted
        mm.anon_rss += 1
        trace("rss", mm=mm.name, anon_rss=mm.anon_rss)  # the timeline's I5 rows
        await get_page(new)
        await set_pte_at(mm, addr, table, PresentPte(new.pfn, vma.vm_page_prot_write, False,
                                                     False))  # pte_mkold(mk_pte(new, prot))
        await page_add_anon_rmap(new, vma, addr)
    pte_unmap(ptep)  # BUG: (no pte value was read under the ptl to pass, as V2 does)
    await ptl.unlock()


BUG = HistoricalBug(
    name="remove-pte-unlocked",
    year=2006,
    history="mutation",
    reference="mutation of Swapless V2 5/5 remove_migration_pte (the locked recheck of the "
    "migration entry after the unlocked is_swap_pte peek)",
    breaks="I2: a pte is replaced only if it still holds the migration entry being removed",
    summary="remove_migration_pte overwrites whatever swap pte its unlocked peek saw",
    expected_kinds=("rss-mismatch", "page-leak", "mapcount-mismatch", "bad-page-state",
                    "use-after-free", "refcount-underflow", "migration-entry-leak",
                    "lost-write", "bug"),
    scenario="migrate-vs-swap-pin",
    strategy="random",
    overrides={"target.mm.migrate:remove_migration_pte": remove_migration_pte},
    depth=0,
)
