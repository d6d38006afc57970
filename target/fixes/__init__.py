"""The upstream fixes of the real flaws of Swapless V2 as posted, one small module each.

The default model is V2 as posted, flaws included; ``--fix NAME`` (repeatable) or
``--fixes all`` applies fixes the way ``--bug`` injects catalog bugs. ``FIXES`` maps names to
:class:`UpstreamFix`; :func:`lookup` expands ``all`` and requirements and raises
``UnknownFixError`` naming the valid ones; :func:`without` gives "every fix but this flaw's".
"""

from __future__ import annotations

from collections.abc import Iterable

from . import (
    copy_one_pte_mmlist,
    copy_vma_rmap_order,
    fork_early_cow_pinned,
    remove_migration_pte_locked,
    remove_migration_pte_ptep,
    remove_migration_ptes_efault,
)
from ._fix import UpstreamFix as UpstreamFix
from ._fix import closure
from ._fix import without as _without

FIXES: dict[str, UpstreamFix] = {
    m.FIX.name: m.FIX
    for m in (
        remove_migration_ptes_efault,
        remove_migration_pte_ptep,
        copy_one_pte_mmlist,
        remove_migration_pte_locked,
        copy_vma_rmap_order,
        fork_early_cow_pinned,
    )
}


class UnknownFixError(ValueError):
    """A ``--fix`` name that is not known."""


def expand(names: Iterable[str]) -> list[str]:
    """Validate names (``all`` is every fix) and close them under ``requires``."""
    chosen: set[str] = set()
    for name in names:
        if name == "all":
            chosen.update(FIXES)
        elif name in FIXES:
            chosen.add(name)
        else:
            raise UnknownFixError(
                f"unknown fix {name!r}; known: all, {', '.join(sorted(FIXES))}")
    return closure(chosen, FIXES)


def lookup(names: Iterable[str]) -> list[UpstreamFix]:
    """The fixes to apply for ``names``, requirements first."""
    return [FIXES[n] for n in expand(names)]


def without(name: str) -> list[str]:
    """Every fix except ``name``'s and those built on it."""
    return _without(name, FIXES)
