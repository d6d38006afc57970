"""link-new-vma-at-head: a vma made by a split or by mremap's copy_vma goes to the *head* of
the anon_vma list, before the vma it came from.

A mutation of the code's history: ``__anon_vma_link`` is ``list_add_tail`` (2.6.17
mm/rmap.c), and mremap's ``move_ptes`` relies on it: it moves ptes, migration entries
included, without anon_vma->lock, and an rmap walk stays correct only because it visits the
source vma before the destination. Andrea Arcangeli, 2011, "mremap: enforce rmap src/dst
vma ordering in case of vma_merge() succeeding in copy_vma()" (948f017b093a) restored that
order for the merge case (target.fixes: copy-vma-rmap-order); Michel Lespinasse, 2012, "mm
anon rmap: remove anon_vma_moveto_tail" replaced the ordering with anon_vma locking in
move_ptes. Here the order is broken for every new vma:

    migrator (A's pages, shared with B)      B: mremap [0,4) -> [40,44)
    try_to_unmap: B's pte 0 := M(old)
                                             copy_vma: new vma linked at the head
    remove_migration_ptes: visits the new
    vma first (nothing there yet)
                                             move_ptes: M(old) moves to 40
    visits the source vma (nothing left)
    unlock_page(old)                         B's pte 40 still points at old

Breaks I11 (an rmap walk visits a pte's source vma before its destination) and so I2 (no
migration entry once the old page is unlocked). Detected as a migration-entry leak. The
canonical scenario also shows V2's real flaws, so the bug is measured and reproduced with
their upstream fixes applied (``fixes``).
"""

from __future__ import annotations

from target.kernel import lockdep_assert_held
from target.mm.types import VmArea

from ._catalog import HistoricalBug


def __anon_vma_link(vma: VmArea) -> None:
    anon_vma = vma.anon_vma
    if anon_vma is not None:
        lockdep_assert_held(anon_vma.lock)
        anon_vma.head.insert(0, vma)  # BUG: list_add, not list_add_tail


BUG = HistoricalBug(
    name="link-new-vma-at-head",
    year=2011,
    history="mutation",
    reference="mutation of __anon_vma_link's list_add_tail (2.6.17 mm/rmap.c); the order "
    "mremap relies on: Andrea Arcangeli, 2011, 948f017b093a \"mremap: enforce rmap src/dst "
    "vma ordering in case of vma_merge() succeeding in copy_vma()\"",
    breaks="I11: an rmap walk visits a moved pte's source vma before its destination",
    summary="a split or mremapped vma is linked at the head of the anon_vma list",
    expected_kinds=("migration-entry-leak", "migration-entry-on-unlocked-page"),
    scenario="migrate-vs-mremap",
    strategy="pct",
    overrides={"target.mm.rmap:__anon_vma_link": __anon_vma_link},
    depth=2,
    fixes=("all",),
)
