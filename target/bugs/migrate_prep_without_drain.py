"""migrate-prep-without-drain: ``migrate_prep`` does not drain the CPUs' LRU pagevecs.

A mutation of the code's history. Lameter's swap migration (2.6.15) drained in
``isolate_lru_page`` itself: a page not yet on the LRU "is still waiting for a cpu to drain
it from one of the lru lists?", so it ran ``schedule_on_each_cpu(lru_add_drain_per_cpu)``
and tried again. Nick Piggin's "mm: migration page refcounting fix" (2006-01, reference B1)
moved the isolation under the ptl of a pte mapping the page, where nothing may sleep, and
the drain out of it, into ``migrate_prep``: "Clear the LRU lists so pages can be isolated"
(``lru_add_drain_all``, every CPU, before mmap_sem and the page-table walk; V2 keeps exactly
that, reference A.10). This bug is ``migrate_prep`` without that line:

    user (CPU 0)                        migrator (CPU 1)
    write 0: do_anonymous_page:
      lru_cache_add(P): P in CPU 0's
      pagevec (count 2, !PageLRU)
                                        sys_migrate_pages: migrate_prep: (no drain)
                                          check_pte_range: P not on the LRU: skipped
                                        -> P stays on the source node, forever: nothing
                                           but a later lru_cache_add fills CPU 0's pagevec

No invariant of a single state breaks; the migration just never moves a page that only its
pte (and a pagevec) holds. The progress oracle's quiescent migration shows it
(``no-progress``): it counts a page in a pagevec as movable because migrate_prep must drain
it. Needs the pagevec window: with ``pagevec_size`` 0 or 1 (the prompt world)
``lru_cache_add`` puts the page on the LRU at once and ``lru_add_drain_all`` has nothing to
do, so the override is the faithful function in effect.
"""

from __future__ import annotations

from ._catalog import HistoricalBug


async def migrate_prep() -> int:
    # BUG: no lru_add_drain_all(): pages still in a CPU's pagevec cannot be isolated
    return 0


BUG = HistoricalBug(
    name="migrate-prep-without-drain",
    year=2006,
    history="mutation",
    reference="mutation of migrate_prep's lru_add_drain_all (the drain Nick Piggin's \"mm: "
    "migration page refcounting fix\", 2006-01, moved out of isolate_lru_page, where "
    "Lameter's 2.6.15 swap migration ran schedule_on_each_cpu(lru_add_drain_per_cpu))",
    breaks="progress: a page held only by its ptes and a CPU's pagevec is never migrated",
    summary="migrate_prep without lru_add_drain_all: pages in a CPU's pagevec never migrate",
    expected_kinds=("no-progress",),
    scenario="migrate-vs-pagevec",
    strategy="random",
    overrides={"target.mm.migrate:migrate_prep": migrate_prep},
    depth=0,
)
