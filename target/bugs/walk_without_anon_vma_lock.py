"""walk-without-anon-vma-lock: remove_migration_ptes walks the anon_vma list unlocked.

A mutation of the code's history: ``remove_migration_ptes`` holds ``anon_vma->lock`` across
its walk of ``anon_vma->head`` (V2 5/5 and 2.6.18, reference A.15), which is what orders it
against fork's ``anon_vma_link`` (a child vma is linked at the tail, under the lock, before
``copy_page_range`` copies the parent's migration entries into it) and against exit's
``anon_vma_unlink``. The same class of race reached mainline later, when migration walked
anon_vmas it could not pin (Mel Gorman, 2010, "mm,migration: Prevent rmap_walk_anon from
seeing partially initialised VMA"). Without the lock the walk works on a list taken before
the fork:

    migrator                               parent (fork)
    remove_migration_ptes: walks [parent]
                                           anon_vma_link(child); copy_page_range:
                                           child pte := M(old)
    restores the parent's pte only
    unlock_page(old)                       the child's entry still points at old

Breaks I2 (no migration entry once the old page is unlocked). Detected as a migration-entry
leak, or a use-after-free of a vma unlinked by an exit during the walk.
"""

from __future__ import annotations

from target.mm.migrate import remove_migration_pte
from target.mm.rmap import page_address_in_vma
from target.mm.types import AnonVma, Page

from ._catalog import HistoricalBug


async def remove_migration_ptes(old: Page, new: Page) -> None:
    anon_vma = new.mapping
    if not isinstance(anon_vma, AnonVma):  # !mapping || !(mapping & PAGE_MAPPING_ANON)
        return
    # BUG: no spin_lock(&anon_vma->lock) around the walk
    for vma in list(anon_vma.head):
        await remove_migration_pte(vma, page_address_in_vma(new, vma), old, new)
    # BUG: (and no unlock)


BUG = HistoricalBug(
    name="walk-without-anon-vma-lock",
    year=2006,
    history="mutation",
    reference="mutation of Swapless V2 5/5 remove_migration_ptes (anon_vma->lock across the "
    "walk); the mainline analogue: Mel Gorman 2010, rmap_walk_anon and partially "
    "initialised VMAs",
    breaks="I2: no migration entry once the old page is unlocked",
    summary="remove_migration_ptes walks anon_vma->head without anon_vma->lock",
    expected_kinds=("migration-entry-leak", "migration-entry-on-unlocked-page",
                    "use-after-free"),
    scenario="migrate-vs-fork-exit",
    strategy="random",
    overrides={"target.mm.migrate:remove_migration_ptes": remove_migration_ptes},
    depth=1,
    # Reproduced and measured with every fix, as the gate replays known reproducers: on V2 as
    # posted the file's schedule ran another way under the gate (a drift on every gate run).
    fixes=("all",),
)
