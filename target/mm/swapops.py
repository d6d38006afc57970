"""Swap and migration entries: include/linux/swapops.h and swap.h after V2 2/5.

V2 has one migration entry type, ``SWP_TYPE_MIGRATION = MAX_SWAPFILES = 31``, whose offset is
the pfn of the page under migration; there is no read/write distinction (that came with the
2.6.18 R/W entries, reference A.3). A restored pte is therefore built from ``vm_page_prot``
and is never writable.
"""

from __future__ import annotations

from target.kernel import BUG_ON

from .types import Page, SwapPte
from .world import W

MAX_SWAPFILES_SHIFT = 5
MAX_SWAPFILES = (1 << MAX_SWAPFILES_SHIFT) - 1  # 31 with CONFIG_MIGRATION
SWP_TYPE_MIGRATION = MAX_SWAPFILES
SWAP_TYPE_DEVICE = 0  # the model's one swap device


def swp_entry(type_: int, offset: int) -> SwapPte:
    return SwapPte(type_, offset)


def make_migration_entry(page: Page) -> SwapPte:
    """``make_migration_entry``: ``BUG_ON(!PageLocked(page))``; entries only for locked pages."""
    BUG_ON(not page.locked.is_set, "migration-entry-on-unlocked-page",
           f"make_migration_entry for unlocked page pfn {page.pfn}", pfn=page.pfn)
    return swp_entry(SWP_TYPE_MIGRATION, page.pfn)


def is_migration_entry(entry: SwapPte) -> bool:
    return entry.type == SWP_TYPE_MIGRATION


def migration_entry_to_page(entry: SwapPte) -> Page:
    """``migration_entry_to_page``: "Any use of migration entries may only occur while the
    corresponding page is locked" (V2 2/5): ``BUG_ON(!PageLocked(p))`` (reference I1)."""
    page = W().mem_map[entry.offset]
    BUG_ON(not page.locked.is_set, "migration-entry-on-unlocked-page",
           f"migration entry for pfn {page.pfn} but the page is not locked", pfn=page.pfn)
    BUG_ON(not is_migration_entry(entry), "bug", "migration_entry_to_page on a swap entry")
    return page
