"""unlink-without-anon-vma-lock: anon_vma_unlink takes the vma off the list, and frees an
emptied anon_vma, without anon_vma->lock.

A mutation of the code's history: ``anon_vma_unlink`` (mm/rmap.c since the anon_vma rmap
of 2.6.7, 2004: Andrea Arcangeli's design, merged through Hugh Dickins's rmap series)
deletes the vma from ``anon_vma->head`` and tests for an empty list under ``anon_vma->lock``.
The lock is what makes an rmap walk that holds it (try_to_unmap_anon, remove_migration_ptes)
see either the whole vma or none of it: exit and munmap free the vma right after
``free_pgtables``. Without it:

    migrator                                child (exit)
    remove_migration_ptes: lock anon_vma;
    takes the list [parent, child]
                                            anon_vma_unlink(child): list_del, no lock
                                            remove_vma: kfree(child vma)
    remove_migration_pte(child vma, ...)    use after free

Breaks I3's rmap half (an rmap walk never meets a freed vma: the walk and the unlink are
serialized by anon_vma->lock). Detected as a use-after-free.
"""

from __future__ import annotations

from target.mm.rmap import anon_vma_free, anon_vma_list_del
from target.mm.types import VmArea

from ._catalog import HistoricalBug


async def anon_vma_unlink(vma: VmArea) -> None:
    anon_vma = vma.anon_vma
    if anon_vma is None:
        return
    # BUG: no spin_lock(&anon_vma->lock)
    anon_vma_list_del(anon_vma, vma)
    empty = not anon_vma.head
    # BUG: (no spin_unlock: it was never taken)
    if empty:
        anon_vma_free(anon_vma)


BUG = HistoricalBug(
    name="unlink-without-anon-vma-lock",
    year=2004,
    history="mutation",
    reference="mutation of anon_vma_unlink's anon_vma->lock (mm/rmap.c, the anon_vma rmap of "
    "2.6.7, 2004: Andrea Arcangeli's design, merged through Hugh Dickins's rmap series)",
    breaks="I3: an rmap walk holding anon_vma->lock never meets a vma being freed",
    summary="anon_vma_unlink unlinks (and frees an empty anon_vma) without anon_vma->lock",
    expected_kinds=("use-after-free", "bug"),
    scenario="migrate-vs-fork-exit",
    strategy="random",
    overrides={"target.mm.rmap:anon_vma_unlink": anon_vma_unlink},
    depth=1,
)
