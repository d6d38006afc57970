"""Page-table accessors: set_pte_at, ptep_clear_flush, ptep_clear_flush_young, pte peeks.

Every pte write is a scheduling point and requires the ptl (checked): unlocked readers
(handle_pte_fault, page_check_address, remove_migration_pte's peek) may run between any two
writes, which is how the window between ``ptep_clear_flush`` and ``set_pte_at(migration entry)``
in try_to_unmap_one becomes visible to a fault (reference A.6).

This is also where ghost state for the oracles is kept: each page's count of present ptes
(compared with its mapcount, I4) and of migration entries (checked at unlock_page, I2).
"""

from __future__ import annotations

from target.kernel import HOOKS, lockdep_assert_held, preempt, trace

from .swapops import SWP_TYPE_MIGRATION
from .types import MmStruct, PageTablePage, PresentPte, Pte, SwapPte
from .world import W


def _ghost(pte: Pte, delta: int) -> None:
    if type(pte) is PresentPte:
        W().mem_map[pte.pfn].ghost_ptes += delta
    elif type(pte) is SwapPte and pte.type == SWP_TYPE_MIGRATION:
        W().mem_map[pte.offset].ghost_migration_ptes += delta


def _write(mm: MmStruct, table: PageTablePage, addr: int, new: Pte) -> Pte:
    i = addr - table.base
    old = table.ptes[i]
    _ghost(old, -1)
    _ghost(new, +1)
    table.ptes[i] = new
    if HOOKS.tracer is not None:  # every pte write passes here: no str() when not tracing
        trace("pte", mm=mm.name, addr=addr, old=str(old), new=str(new))
    return old


async def set_pte_at(mm: MmStruct, addr: int, table: PageTablePage, pte: Pte) -> None:
    """``set_pte_at``. Context: ptl of ``table`` held."""
    await preempt()
    lockdep_assert_held(table.ptl)
    _write(mm, table, addr, pte)


async def ptep_clear_flush(mm: MmStruct, addr: int, table: PageTablePage) -> Pte:
    """``ptep_clear_flush``/``ptep_get_and_clear``: pte := none, return the old value."""
    await preempt()
    lockdep_assert_held(table.ptl)
    return _write(mm, table, addr, None)


async def ptep_clear_flush_young(mm: MmStruct, addr: int, table: PageTablePage) -> bool:
    """``ptep_clear_flush_young``: clear the accessed bit, return whether it was set."""
    await preempt()
    lockdep_assert_held(table.ptl)
    pte = table.ptes[addr - table.base]
    if type(pte) is PresentPte and pte.young:
        _write(mm, table, addr, PresentPte(pte.pfn, pte.write, pte.dirty, False))
        return True
    return False


def pte_read(table: PageTablePage, addr: int) -> Pte:
    """``*ptep`` under the ptl (no point: the lock already serialises writers)."""
    return table.ptes[addr - table.base]


async def pte_peek(table: PageTablePage, addr: int) -> Pte:
    """An unlocked ``*ptep`` read (the racy peeks of reference A.20): a scheduling point."""
    await preempt()
    return table.ptes[addr - table.base]
