"""remove-migration-pte-locked: remove_migration_pte peeks at the pte before taking the ptl.

V2's remove_migration_pte (and 2.6.18's, until 2011) tests ``is_swap_pte(*ptep)`` without the
ptl and returns if it sees none. mremap's move_ptes moves a pte without the anon_vma lock:
it clears the old pte and sets the new one under both ptls, and between the two an unlocked
reader sees neither. A migration entry can thus dodge the rmap walk:

    migrator: remove_migration_ptes          mremap: move_ptes (old ptl, new ptl held)
    (anon_vma->lock; vma order: src, dst)
                                             ptep_clear_flush(old): old pte none
    src vma: peek old pte: none -> skip
    dst vma: peek new pte: none -> skip
                                             set_pte_at(new, M(old page))
    unlock_page(old): M(old) left in dst      -> migration-entry-leak (I2), later
                                                 migration_entry_to_page BUG (I1)

"Either mremap's move_ptes() must additionally take anon_vma lock(), or migration's
remove_migration_pte() must stop peeking for is_swap_entry() before it takes pagetable lock.
Consensus chooses the latter" (Hugh Dickins). With the ptl taken first, the walk waits for
move_ptes to finish the table and then finds the entry where it now is. The override is the
function after both this fix and the earlier ``remove-migration-pte-ptep`` one.
"""

from __future__ import annotations

from target.kernel import kasan_check, trace
from target.mm.pgtable import pte_offset_map, pte_read, pte_unmap, set_pte_at, walk_pte_table
from target.mm.rmap import page_add_anon_rmap
from target.mm.swap import get_page
from target.mm.swapops import is_migration_entry, migration_entry_to_page
from target.mm.types import Page, PresentPte, SwapPte, VmArea

from ._fix import UpstreamFix


async def remove_migration_pte(vma: VmArea, addr: int, old: Page, new: Page) -> None:
    kasan_check(vma, "remove_migration_pte")
    mm = vma.vm_mm
    kasan_check(mm, "remove_migration_pte")
    table = walk_pte_table(mm, addr, "remove_migration_pte")
    if table is None:
        return
    ptep = pte_offset_map(table, addr)
    ptl = table.ptl
    await ptl.lock()  # FIX: lock before looking; no unlocked is_swap_pte peek
    pte = pte_read(table, addr)
    if type(pte) is SwapPte and is_migration_entry(pte) and migration_entry_to_page(pte) is old:
        mm.anon_rss += 1
        trace("rss", mm=mm.name, anon_rss=mm.anon_rss)  # the timeline's I5 rows
        await get_page(new)
        await set_pte_at(mm, addr, table, PresentPte(new.pfn, vma.vm_page_prot_write, False,
                                                     False))
        await page_add_anon_rmap(new, vma, addr)
    pte_unmap(ptep)  # remove-migration-pte-ptep
    await ptl.unlock()


FIX = UpstreamFix(
    name="remove-migration-pte-locked",
    title="mm: fix race between mremap and removing migration entry",
    commit="486cf46f3f9b (Hugh Dickins, Cc stable)",
    date="2011-10",
    breaks="I2: every migration entry is found and removed before the old page is unlocked",
    summary="remove_migration_pte's unlocked is_swap_pte peek misses an entry that mremap's "
            "move_ptes is moving",
    finding_kinds=("migration-entry-leak", "migration-entry-on-unlocked-page"),
    scenario="migrate-vs-mremap",
    needs="mremap moving a page of another mm's migration (MOVE_ALL of a forked sibling), "
          "with the walk between move_ptes' clear and set",
    overrides={"target.mm.migrate:remove_migration_pte": remove_migration_pte},
    requires=("remove-migration-pte-ptep",),
)
