"""Page-table accessors: set_pte_at, ptep_clear_flush, ptep_clear_flush_young, pte peeks.

Every pte write is a scheduling point and requires the ptl (checked): unlocked readers
(handle_pte_fault, page_check_address, remove_migration_pte's peek) may run between any two
writes, which is how the window between ``ptep_clear_flush`` and ``set_pte_at(migration entry)``
in try_to_unmap_one becomes visible to a fault (reference A.6).

This is also where ghost state for the oracles is kept: each page's count of present ptes
(compared with its mapcount, I4) and of migration entries (checked at unlock_page, I2).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from target.kernel import (
    BUG,
    HOOKS,
    READ,
    WRITE,
    KernelFinding,
    current,
    lockdep_assert_held,
    preempt,
    trace,
)

from .swapops import SWP_TYPE_MIGRATION
from .types import MmStruct, PageTablePage, PresentPte, Pte, SwapPte
from .world import W

TASK_SIZE = 64  # the user address space, in pages: [0, TASK_SIZE)
EFAULT = -14  # page_address_in_vma's "not in this vma": (unsigned long)-EFAULT, 0xfffffff2

KM_PTE0 = 0  # km_type slots of kmap_atomic: one per nesting level of pte mappings
KM_PTE1 = 1


@dataclass(frozen=True, slots=True)
class PtePointer:
    """A ``pte_t *`` from ``pte_offset_map``: which table, which address."""

    table: PageTablePage
    addr: int


def pgd_offset_check(mm: MmStruct, addr: int, who: str) -> None:
    """The walk ``pgd_offset(mm, addr)`` ... ``pte_offset_map`` starts at a *user* address.

    Not a check the 2006 kernel had (ours, like a KASAN report): a walk of a user mm at an
    address outside [0, TASK_SIZE) reads kernel page tables as if they were the process's.
    V2's remove_migration_pte does exactly that with an unchecked ``-EFAULT``.
    """
    if not 0 <= addr < TASK_SIZE:
        shown = f"{addr} ({addr & 0xFFFFFFFF:#x})" if addr < 0 else str(addr)
        raise KernelFinding(
            "wild-access",
            f"{who}: page-table walk of {mm.name} at {shown}, outside the user address space",
            {"mm": mm.name, "addr": addr, "check": "migfuzz (the 2006 kernel had no such check)"},
            function=who)


def walk_pte_table(mm: MmStruct, addr: int, who: str) -> PageTablePage | None:
    """``pgd_offset``/``pud_offset``/``pmd_offset`` + present checks: the table or None."""
    pgd_offset_check(mm, addr, who)
    return mm.pte_table(addr, alloc=False)


def pte_offset_map(table: PageTablePage, addr: int, km: int = KM_PTE0) -> PtePointer:
    """``pte_offset_map`` (``_nested`` with ``km=KM_PTE1``): kmap_atomic of the table under
    CONFIG_HIGHPTE, a plain pointer otherwise."""
    ptr = PtePointer(table, addr)
    if W().config.config_highpte:
        # Who mapped it names the finding if it is never unmapped: the leak is that
        # function's, wherever the CPU's next kmap_atomic trips over it.
        _kmap_atomic(ptr, km, sys._getframe(1).f_code.co_name)
    return ptr


def pte_unmap(ptr: object, km: int = KM_PTE0) -> None:
    """``pte_unmap``: kunmap_atomic under CONFIG_HIGHPTE; an empty macro otherwise, so a
    wrong argument is invisible there, as in the kernel."""
    if W().config.config_highpte:
        _kunmap_atomic(ptr, km)


def _kmap_atomic(ptr: PtePointer, km: int, mapper: str) -> None:
    """i386 ``kmap_atomic`` with CONFIG_DEBUG_HIGHMEM: ``if (!pte_none(*(kmap_pte-idx)))
    BUG();`` -- the per-CPU slot must be free. The model's tasks are its CPUs."""
    slots = W().kmap_slots
    key = (current().tid, km)
    held = slots.get(key)
    if held is not None:
        stale, who = held
        raise KernelFinding(
            "kmap-misuse",
            f"kmap_atomic: KM_PTE{km} of cpu {key[0]} still maps {stale.table!r} at "
            f"{stale.addr}, mapped by {who} and never kunmapped (CONFIG_DEBUG_HIGHMEM)",
            {"cpu": key[0], "km": km, "stale": repr(stale.table), "stale_addr": stale.addr,
             "mapped_by": who, "next_mapper": mapper},
            function=who)
    slots[key] = (ptr, mapper)


def _kunmap_atomic(ptr: object, km: int) -> None:
    """i386 ``kunmap_atomic`` with CONFIG_DEBUG_HIGHMEM.

    An argument below FIXADDR_START is taken for a lowmem address and returns early (the
    "FIXME" branch), leaving the slot mapped: a pte *value* passed for the pointer lands
    there. A fixmap address of another slot is ``BUG()``.
    """
    slots = W().kmap_slots
    key = (current().tid, km)
    if not isinstance(ptr, PtePointer):
        return  # vaddr < FIXADDR_START: not a kmap address, nothing is unmapped
    held = slots.get(key)
    if held is None or held[0].table is not ptr.table:
        BUG("kmap-misuse",
            f"kunmap_atomic: {ptr.table!r} is not what KM_PTE{km} of cpu {key[0]} maps",
            cpu=key[0], km=km)
    del slots[key]


def _ghost(pte: Pte, delta: int) -> None:
    if type(pte) is PresentPte:
        W().mem_map[pte.pfn].ghost_ptes += delta
    elif type(pte) is SwapPte and pte.type == SWP_TYPE_MIGRATION:
        W().mem_map[pte.offset].ghost_migration_ptes += delta


def pte_xchg(mm: MmStruct, table: PageTablePage, addr: int, new: Pte) -> Pte:
    """Store ``new`` in the pte at ``addr`` in one step and return what it held (x86's
    ``xchg`` of a pte): every pte write of the model passes here, the accessors above and the
    hardware's accessed/dirty update of a user access alike, so the ghost counts and the
    trace see every change.

    Context: the caller makes the store legal (ptl held, or the hardware's atomic update)."""
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
    await preempt(mm, WRITE, addr)
    lockdep_assert_held(table.ptl)
    pte_xchg(mm, table, addr, pte)


async def ptep_clear_flush(mm: MmStruct, addr: int, table: PageTablePage) -> Pte:
    """``ptep_clear_flush``/``ptep_get_and_clear``: pte := none, return the old value."""
    await preempt(mm, WRITE, addr)
    lockdep_assert_held(table.ptl)
    return pte_xchg(mm, table, addr, None)


async def ptep_clear_flush_young(mm: MmStruct, addr: int, table: PageTablePage) -> bool:
    """``ptep_clear_flush_young``: clear the accessed bit, return whether it was set."""
    await preempt(mm, WRITE, addr)
    lockdep_assert_held(table.ptl)
    pte = table.ptes[addr - table.base]
    if type(pte) is PresentPte and pte.young:
        pte_xchg(mm, table, addr, PresentPte(pte.pfn, pte.write, pte.dirty, False))
        return True
    return False


async def ptep_set_wrprotect(mm: MmStruct, addr: int, table: PageTablePage) -> PresentPte:
    """``ptep_set_wrprotect``: clear the write bit atomically (x86 ``clear_bit``), return
    the pte as it is now.

    Context: ptl of ``table`` held. The ptl keeps software writers out but not another CPU's
    MMU: a sibling thread's store can set the dirty bit of a writable pte at any moment, so
    the read and the write are one step. A read before the point and a ``set_pte_at`` of a
    value built from it would drop that dirty bit (and copy_one_pte would give the child a
    pte older than the page).
    """
    await preempt(mm, WRITE, addr)
    lockdep_assert_held(table.ptl)
    pte = table.ptes[addr - table.base]
    if type(pte) is not PresentPte:  # the caller saw it present under this ptl
        BUG("bug", f"ptep_set_wrprotect: pte at {addr} is {pte}, changed under the ptl",
            addr=addr)
    if pte.write:
        pte = PresentPte(pte.pfn, False, pte.dirty, pte.young)
        pte_xchg(mm, table, addr, pte)
    return pte


def pte_read(table: PageTablePage, addr: int) -> Pte:
    """``*ptep`` under the ptl (no point: the lock already serialises writers)."""
    return table.ptes[addr - table.base]


async def pte_peek(table: PageTablePage, addr: int) -> Pte:
    """An unlocked ``*ptep`` read (the racy peeks of reference A.20): a scheduling point."""
    await preempt(table.mm, READ, addr)
    pte = table.ptes[addr - table.base]
    if HOOKS.tracer is not None:  # an unlocked read: the timeline shows it (no str() else)
        trace("peek", mm=table.mm_name, addr=addr, pte=str(pte))
    return pte
