"""The catalog of historical migration bugs, each one small module with its override.

``CATALOG`` maps the ``--bug`` names to :class:`HistoricalBug`; :func:`inject` applies a set
of them for the duration of a ``with`` block; :func:`lookup` turns names into bugs or raises
``UnknownBugError`` naming the valid ones.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import (
    anon_vma_cache_without_rcu,
    find_get_page_after_unlock,
    fork_no_wrprotect,
    get_after_unlock,
    isolate_outside_ptl,
    isolate_without_lru_recheck,
    link_new_vma_at_head,
    migrate_prep_without_drain,
    migrate_without_writeback_wait,
    missing_get_new,
    move_ptes_drop_ptl,
    no_restore_on_failure,
    nr_refs_constant,
    page_lock_under_anon_vma,
    remove_pte_unlocked,
    unlink_without_anon_vma_lock,
    unlock_before_remove,
    wait_unlocked_entry,
    wait_without_ref,
    walk_without_anon_vma_lock,
    yield_busy_wait,
)
from ._catalog import ConflictingOverridesError as ConflictingOverridesError
from ._catalog import HistoricalBug as HistoricalBug
from ._catalog import check_conflicts as check_conflicts
from ._catalog import inject as inject

CATALOG: dict[str, HistoricalBug] = {
    m.BUG.name: m.BUG
    for m in (
        wait_without_ref,
        get_after_unlock,
        unlock_before_remove,
        no_restore_on_failure,
        isolate_outside_ptl,
        nr_refs_constant,
        missing_get_new,
        page_lock_under_anon_vma,
        yield_busy_wait,
        wait_unlocked_entry,
        remove_pte_unlocked,
        fork_no_wrprotect,
        walk_without_anon_vma_lock,
        unlink_without_anon_vma_lock,
        link_new_vma_at_head,
        find_get_page_after_unlock,
        isolate_without_lru_recheck,
        move_ptes_drop_ptl,
        migrate_without_writeback_wait,
        anon_vma_cache_without_rcu,
        migrate_prep_without_drain,
    )
}


class UnknownBugError(ValueError):
    """A ``--bug`` name that is not in the catalog."""


def lookup(names: Iterable[str]) -> list[HistoricalBug]:
    bugs = []
    for name in names:
        bug = CATALOG.get(name)
        if bug is None:
            raise UnknownBugError(
                f"unknown bug {name!r}; known: {', '.join(sorted(CATALOG))}"
            )
        bugs.append(bug)
    return bugs
