"""move-ptes-drop-ptl: mremap's move_ptes lets go of both page table locks between clearing
the old pte and setting the new one.

A mutation of the code's history: 2.6.17 ``move_ptes`` (mm/mremap.c, Hugh Dickins's 2.6.14
rewrite "mm: move_page_tables by extents") holds the old ptl and the new ptl (nested) across
``ptep_clear_flush`` and ``set_pte_at``, as ``move_one_page`` before it held
``mm->page_table_lock`` across the same pair: whatever it had to drop to allocate the new page
table, it dropped *before* looking the old pte up again. No anon_vma lock is taken, so the
ptls are all that keeps an rmap walker from looking at both addresses while the pte is in
flight. Here they are dropped in between, and the in-flight pte is a migration entry:

    migrator (MOVE_ALL of A, shared with B)   B: mremap [0,1) -> [40,41)
    try_to_unmap: B's pte 0 := M(old)
                                              move_ptes: clear pte 0 (M(old)),
                                                ptls dropped
    remove_migration_ptes: B's pte 0: none,
      B's new vma at 40: none
    unlock_page(old)
                                              ptls again: pte 40 := M(old)

The migrator must stop with its entries installed and B with its pte in flight: a deep race
(two preemptions). Breaks I2 (no migration entry once the old page is unlocked). Detected as a
migration-entry leak. Its scenario also shows V2's real flaw remove-migration-pte-locked (the
walker's unlocked peek loses the same pte without any mutation), so the bug is measured and
reproduced with the upstream fixes applied (``fixes``).
"""

from __future__ import annotations

from target.mm.ghost import ghost_move
from target.mm.locking import SINGLE_DEPTH_NESTING
from target.mm.pgtable import (
    KM_PTE1,
    pte_offset_map,
    pte_read,
    pte_unmap,
    ptep_clear_flush,
    set_pte_at,
)
from target.mm.types import VmArea

from ._catalog import HistoricalBug


async def move_ptes(vma: VmArea, old_addr: int, old_end: int, new_vma: VmArea,
                    new_addr: int) -> None:
    mm = vma.vm_mm
    old = mm.pte_table(old_addr, alloc=False)
    if old is None:
        return
    new = mm.pte_alloc(new_addr)
    old_ptep = pte_offset_map(old, old_addr)  # pte_offset_map_lock
    await old.ptl.lock()
    new_ptep = pte_offset_map(new, new_addr, KM_PTE1)  # pte_offset_map_nested
    if new.ptl is not old.ptl:
        await new.ptl.lock(SINGLE_DEPTH_NESTING)
    while old_addr < old_end:
        if pte_read(old, old_addr) is not None:
            pte = await ptep_clear_flush(mm, old_addr, old)
            # BUG: both ptls dropped with the pte in neither place ...
            if new.ptl is not old.ptl:  # BUG
                await new.ptl.unlock()  # BUG
            await old.ptl.unlock()  # BUG
            await old.ptl.lock()  # BUG: ... and taken again before the set
            if new.ptl is not old.ptl:  # BUG
                await new.ptl.lock(SINGLE_DEPTH_NESTING)  # BUG
            ghost_move(mm, old_addr, new_addr)  # the value travels with the pte, this step
            await set_pte_at(mm, new_addr, new, pte)  # move_pte: nothing to do off MIPS
        old_addr += 1
        new_addr += 1
    if new.ptl is not old.ptl:
        await new.ptl.unlock()
    pte_unmap(new_ptep, KM_PTE1)
    pte_unmap(old_ptep)
    await old.ptl.unlock()


BUG = HistoricalBug(
    name="move-ptes-drop-ptl",
    year=2005,
    history="mutation",
    reference="mutation of move_ptes's ptls held across the clear and the set (2.6.17 "
    "mm/mremap.c; Hugh Dickins, 2.6.14, \"mm: move_page_tables by extents\"; before it "
    "move_one_page under mm->page_table_lock)",
    breaks="I2: no migration entry once the old page is unlocked",
    summary="move_ptes drops both ptls between clearing the old pte and setting the new one",
    expected_kinds=("migration-entry-leak", "migration-entry-on-unlocked-page"),
    scenario="migrate-vs-child-mremap",
    strategy="pct",
    overrides={"target.mm.mremap:move_ptes": move_ptes},
    depth=2,
    fixes=("all",),
)
