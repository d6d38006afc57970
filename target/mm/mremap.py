"""mremap: mm/mremap.c (2.6.17): move ptes from one place to another within one mm.

    do_mremap (mmap_sem write)
      MREMAP_FIXED: do_munmap(new_addr, new_len)
      shrink: do_munmap of the tail         grow in place: vma_adjust
      move_vma
        copy_vma                 vma_merge, or a new vma at the tail of the anon_vma list
        move_page_tables -> move_ptes      old ptl, then new ptl nested; NO anon_vma lock
        do_munmap(old_addr, old_len)

move_ptes moves any non-none pte, migration and swap entries included, without the
anon_vma lock: an rmap walk (remove_migration_ptes) stays correct only because it takes each
ptl before it looks and visits the source vma before the destination. V2 breaks the first
(remove_migration_pte peeks without the ptl: fixed 2011), copy_vma's vma_merge the second
(fixed 2011 by anon_vma_moveto_tail). Both are in the model as posted; target.fixes has the
fixes. A page's index does not change: the new vma's pgoff is derived from the old one.

Simplifications: page-table allocation cannot fail, so move_page_tables never moves back;
no VM_ACCOUNT or locked_vm accounting.
"""

from __future__ import annotations

from target.kernel import cond_resched, kasan_check, lockdep_assert_held

from .ghost import ghost_move
from .locking import SINGLE_DEPTH_NESTING
from .mlock import make_pages_present
from .mmap import (
    EINVAL,
    ENOMEM,
    copy_vma,
    do_munmap,
    find_vma,
    get_unmapped_area,
    vma_adjust,
    vma_next,
)
from .pgtable import (
    KM_PTE1,
    TASK_SIZE,
    pte_offset_map,
    pte_read,
    pte_unmap,
    ptep_clear_flush,
    set_pte_at,
)
from .types import PTRS_PER_PTE, VM_LOCKED, MmStruct, VmArea

EFAULT = -14
MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2


async def move_ptes(vma: VmArea, old_addr: int, old_end: int, new_vma: VmArea,
                    new_addr: int) -> None:
    """``move_ptes``: within one old and one new page table, move every non-none pte.

    Context: mmap_sem held for write. Takes the old ptl, then the new ptl nested ("We don't
    have to worry about the ordering of src and dst pte locks because exclusive mmap_sem
    prevents deadlock"). No anon_vma lock: between ``ptep_clear_flush`` of the old pte and
    ``set_pte_at`` of the new one, an unlocked reader sees neither.
    """
    mm = vma.vm_mm
    old = mm.pte_table(old_addr, alloc=False)
    if old is None:
        return
    new = mm.pte_alloc(new_addr)
    old_ptep = pte_offset_map(old, old_addr)  # pte_offset_map_lock
    await old.ptl.lock()
    new_ptep = pte_offset_map(new, new_addr, KM_PTE1)  # pte_offset_map_nested
    if new.ptl is not old.ptl:
        await new.ptl.lock(SINGLE_DEPTH_NESTING)
    while old_addr < old_end:
        if pte_read(old, old_addr) is not None:
            pte = await ptep_clear_flush(mm, old_addr, old)
            ghost_move(mm, old_addr, new_addr)  # the value travels with the pte, this step
            await set_pte_at(mm, new_addr, new, pte)  # move_pte: nothing to do off MIPS
        old_addr += 1
        new_addr += 1
    if new.ptl is not old.ptl:
        await new.ptl.unlock()
    pte_unmap(new_ptep, KM_PTE1)
    pte_unmap(old_ptep)
    await old.ptl.unlock()


async def move_page_tables(vma: VmArea, old_addr: int, new_vma: VmArea, new_addr: int,
                           length: int) -> int:
    """``move_page_tables``: move_ptes in extents that stay within one old and one new page
    table. Returns how much was moved (always ``length`` here).

    Context: mmap_sem held for write; cond_resched between extents.
    """
    old_end = old_addr + length
    while old_addr < old_end:
        await cond_resched()
        extent = min((old_addr // PTRS_PER_PTE + 1) * PTRS_PER_PTE, old_end) - old_addr
        extent = min(extent, (new_addr // PTRS_PER_PTE + 1) * PTRS_PER_PTE - new_addr)
        await move_ptes(vma, old_addr, old_addr + extent, new_vma, new_addr)
        old_addr += extent
        new_addr += extent
    return length


async def move_vma(vma: VmArea, old_addr: int, old_len: int, new_len: int,
                   new_addr: int) -> int:
    """``move_vma``: copy_vma, move the ptes, unmap the old range. Returns ``new_addr``.

    Context: mmap_sem held for write.
    """
    kasan_check(vma, "move_vma")
    mm = vma.vm_mm
    new_pgoff = vma.vm_pgoff + (old_addr - vma.vm_start)
    new_vma, vma = await copy_vma(vma, new_addr, new_len, new_pgoff)
    await move_page_tables(vma, old_addr, new_vma, new_addr, old_len)
    flags = vma.vm_flags
    await do_munmap(mm, old_addr, old_len)
    if flags & VM_LOCKED and new_len > old_len:
        await make_pages_present(mm, new_vma, new_addr + old_len, new_addr + new_len)
    return new_addr


async def do_mremap(mm: MmStruct, addr: int, old_len: int, new_len: int, flags: int,
                    new_addr: int) -> int:
    """``do_mremap``: shrink, grow in place, or move [addr, addr + old_len) to a range of
    ``new_len`` pages (at ``new_addr`` with MREMAP_FIXED). Returns the address or -errno.

    Context: mmap_sem held for write by the caller (sys_mremap).
    """
    lockdep_assert_held(mm.mmap_sem, write=True)
    if flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE) or new_len <= 0 or old_len < 0:
        return EINVAL
    if flags & MREMAP_FIXED:
        if not flags & MREMAP_MAYMOVE:
            return EINVAL
        if new_addr < 0 or new_len > TASK_SIZE or new_addr > TASK_SIZE - new_len:
            return EINVAL
        # "Check if the location we're moving into overlaps the old location at all"
        if new_addr <= addr < new_addr + new_len or addr <= new_addr < addr + old_len:
            return EINVAL
        await do_munmap(mm, new_addr, new_len)
    if old_len >= new_len:  # "Always allow a shrinking remap: that just unmaps"
        if old_len > new_len:
            await do_munmap(mm, addr + new_len, old_len - new_len)
        if not flags & MREMAP_FIXED or new_addr == addr:
            return addr
        old_len = new_len
    vma = find_vma(mm, addr)
    if vma is None or vma.vm_start > addr or old_len > vma.vm_end - addr:
        return EFAULT  # "We can't remap across vm area boundaries"
    if (old_len == vma.vm_end - addr and not (flags & MREMAP_FIXED and addr != new_addr)
            and (old_len != new_len or not flags & MREMAP_MAYMOVE)):
        nxt = vma_next(mm, vma)
        max_addr = nxt.vm_start if nxt is not None else TASK_SIZE
        if max_addr - addr >= new_len:  # "can we just expand the current mapping?"
            await vma_adjust(vma, vma.vm_start, addr + new_len, vma.vm_pgoff)
            if vma.vm_flags & VM_LOCKED:
                await make_pages_present(mm, vma, addr + old_len, addr + new_len)
            return addr
    if not flags & MREMAP_MAYMOVE:
        return ENOMEM
    if not flags & MREMAP_FIXED:
        new_addr = get_unmapped_area(mm, new_len)
        if new_addr < 0:
            return new_addr
    return await move_vma(vma, addr, old_len, new_len, new_addr)
