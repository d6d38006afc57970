"""mprotect: mm/mprotect.c (2.6.17): split or merge the vmas, then change the ptes.

    sys_mprotect (mmap_sem write)
      mprotect_fixup per vma in [start, end)
        vma_merge, or split_vma at start and end   (vma_adjust: anon_vma->lock)
        vm_flags, vm_page_prot
        change_protection -> change_pte_range      (ptl: present ptes only)

2.6.17 rewrites present ptes only; the CONFIG_MIGRATION branch that downgrades a write
migration entry arrived with 2.6.18's read/write entries, which V2 does not have.
Simplifications: no VM_ACCOUNT accounting, no VM_EXEC, no VM_GROWSDOWN; the VM_MAY* check
is the VM_MAYWRITE one (every model vma may read).
"""

from __future__ import annotations

from target.kernel import kasan_check, lockdep_assert_held

from .mmap import fixup_range, merge_or_split, vma_set_page_prot
from .pgtable import pte_offset_map, pte_read, pte_unmap, ptep_clear_flush, set_pte_at
from .types import PTRS_PER_PTE, VM_MAYWRITE, VM_WRITE, MmStruct, PresentPte, VmArea

EACCES = -13
PROT_READ = 0x1
PROT_WRITE = 0x2


async def change_pte_range(mm: MmStruct, vma: VmArea, start: int, end: int) -> None:
    """``change_pte_range``: every present pte in [start, end) (one page table) rewritten
    with the vma's new protection.

    Context: takes and releases the ptl. "Avoid an SMP race with hardware updated
    dirty/clean bits by wiping the pte and then setting the new pte into place": between
    ``ptep_get_and_clear`` and ``set_pte_at`` the pte is none to an unlocked reader.
    """
    table = mm.pte_table(start, alloc=False)
    if table is None:
        return
    ptep = pte_offset_map(table, start)
    await table.ptl.lock()
    for addr in range(start, end):
        if type(pte_read(table, addr)) is PresentPte:
            # ptep_get_and_clear is atomic: the value it returns has every A/D bit the MMU
            # set up to the clear, which a pte read before it might miss
            oldpte = await ptep_clear_flush(mm, addr, table)
            if type(oldpte) is PresentPte:
                # pte_modify: pfn, dirty and young kept, protection replaced
                ptent = PresentPte(oldpte.pfn, vma.vm_page_prot_write, oldpte.dirty,
                                   oldpte.young)
                await set_pte_at(mm, addr, table, ptent)
    pte_unmap(ptep)
    await table.ptl.unlock()


async def change_protection(vma: VmArea, start: int, end: int) -> None:
    """``change_protection``: change_pte_range one page table at a time.

    Context: mmap_sem held for write; each table's ptl taken in turn.
    """
    addr = start
    while addr < end:
        nxt = min((addr // PTRS_PER_PTE + 1) * PTRS_PER_PTE, end)
        await change_pte_range(vma.vm_mm, vma, addr, nxt)
        addr = nxt


async def mprotect_fixup(vma: VmArea, prev: VmArea | None, start: int, end: int,
                         newflags: int) -> VmArea:
    """``mprotect_fixup``: give [start, end) of ``vma`` the flags ``newflags``; returns the
    vma now covering it (``*pprev``).

    Context: mmap_sem held for write (vm_flags and vm_page_prot are protected by it).
    """
    mm = vma.vm_mm
    lockdep_assert_held(mm.mmap_sem, write=True)
    kasan_check(vma, "mprotect_fixup")
    if newflags == vma.vm_flags:
        return vma
    vma = await merge_or_split(vma, prev, start, end, newflags)
    vma.vm_flags = newflags
    vma_set_page_prot(vma)
    await change_protection(vma, start, end)
    return vma


async def do_mprotect(mm: MmStruct, start: int, length: int, prot: int) -> int:
    """``sys_mprotect`` after the mmap_sem: every vma of [start, start + length), which must
    be mapped without holes. Context: mmap_sem held for write by the caller."""

    def newflags_of(vma: VmArea) -> int:
        if not prot & PROT_WRITE:
            return vma.vm_flags & ~VM_WRITE
        if not vma.vm_flags & VM_MAYWRITE:  # newflags & ~(newflags >> 4): no VM_MAYWRITE
            return EACCES
        return vma.vm_flags | VM_WRITE

    return await fixup_range(mm, start, length, newflags_of, mprotect_fixup)
