"""vmas, munmap, exit and the end of an mm: mm/mmap.c and kernel/fork.c's mmput (2.6.17).

    do_munmap (mmap_sem write)          exit_mmap (last mmput, no mmap_sem)
      split_vma at start and end          lru_add_drain, tlb_gather_mmu(mm, 1)
      detach_vmas_to_be_unmapped          unmap_vmas: zap every pte
      unmap_region                        free_pgtables: anon_vma_unlink every vma
        lru_add_drain, tlb_gather_mmu     tlb_finish_mmu: the zapped pages' references
        unmap_vmas                        remove_vma: free every vma
        free_pgtables                   mmput: off the mmlist, mmdrop (free the mm)
        tlb_finish_mmu
      remove_vma

free_pgtables hides the vma from rmap (anon_vma_unlink) *before* freeing the page tables, so
an rmap walker holding anon_vma->lock never reaches a freed table.

vma_adjust changes ``vm_start``/``vm_end``/``vm_pgoff`` under anon_vma->lock: rmap walkers
compute ``vma_address`` from them under that lock. Both halves of a split share the
anon_vma; the new half goes to the *tail* of ``anon_vma->head`` (``__anon_vma_link``), so it
is walked after the vma it came from. Simplifications: no VM_ACCOUNT, mempolicy or file
cases; vm_page_prot is the one ``vm_page_prot_write`` bit. The rss-counter check of 3.4+
(``check_mm``) is run at exit as the rss oracle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from target.kernel import BUG, WRITE, kasan_check, kfree, might_sleep, touch

from .memory import unmap_vmas
from .pgtable import TASK_SIZE
from .rmap import __anon_vma_link, __anon_vma_merge, anon_vma_unlink
from .swap import lru_add_drain
from .tlb import tlb_finish_mmu, tlb_gather_mmu
from .types import PTRS_PER_PTE, VM_SHARED, VM_WRITE, MmStruct, VmArea, list_del, list_empty
from .world import W

ENOMEM = -12
EINVAL = -22
TASK_UNMAPPED_BASE = 32  # where get_unmapped_area starts looking (bottom-up layout)


def find_vma(mm: MmStruct, addr: int) -> VmArea | None:
    """``find_vma``: the first vma with ``addr < vm_end`` (it need not contain ``addr``).

    Context: mmap_sem held (read or write) by the caller.
    """
    for vma in mm.mmap:
        if addr < vma.vm_end:
            return vma
    return None


def find_vma_prev(mm: MmStruct, addr: int) -> tuple[VmArea | None, VmArea | None]:
    """``find_vma_prev``: (find_vma(addr), the vma before it). Context: mmap_sem held."""
    prev = None
    for vma in mm.mmap:
        if addr < vma.vm_end:
            return vma, prev
        prev = vma
    return None, prev


def vma_next(mm: MmStruct, vma: VmArea | None) -> VmArea | None:
    """``vma->vm_next`` (``mm->mmap`` for None): the vma after ``vma`` in address order.

    Context: mmap_sem held.
    """
    if vma is None:
        return mm.mmap[0] if mm.mmap else None
    i = mm.mmap.index(vma)
    return mm.mmap[i + 1] if i + 1 < len(mm.mmap) else None


def vma_set_page_prot(vma: VmArea) -> None:
    """``vma->vm_page_prot = protection_map[flags]``: only shared writable mappings get
    writable ptes; private ones get PAGE_COPY so that a write takes a COW fault.

    Context: mmap_sem held for write (mprotect_fixup).
    """
    vma.vm_page_prot_write = bool(vma.vm_flags & VM_SHARED) and bool(vma.vm_flags & VM_WRITE)


def __insert_vm_struct(mm: MmStruct, vma: VmArea) -> None:
    """``__insert_vm_struct``: into the sorted vma list and, tail, into its anon_vma's list.

    Context: the caller holds ``vma->anon_vma->lock`` when it has one (vma_adjust, vma_link).
    """
    mm.mmap.append(vma)
    mm.mmap.sort(key=lambda v: v.vm_start)
    __anon_vma_link(vma)


async def vma_link(mm: MmStruct, vma: VmArea) -> None:
    """``vma_link``: insert a new vma (mm/mmap.c).

    Context: mmap_sem held for write; takes and releases anon_vma->lock around the list add.
    """
    anon_vma = vma.anon_vma
    if anon_vma is not None:
        await anon_vma.lock.lock()
    __insert_vm_struct(mm, vma)
    if anon_vma is not None:
        await anon_vma.lock.unlock()


async def vma_adjust(vma: VmArea, start: int, end: int, pgoff: int,
                     insert: VmArea | None = None) -> None:
    """``vma_adjust``: move ``vma``'s boundaries; absorb or trim its next; insert a split.

    Context: mmap_sem held for write; takes and releases anon_vma->lock around the field
    updates ("When changing only vma->vm_end, we don't really need anon_vma lock: but is that
    case worth optimizing out?"), which is what keeps rmap walks' vma_address consistent.
    The next vma's anon_vma lock is taken if ``vma`` has none ("Easily overlooked: ...
    make sure the expanding vma has anon_vma set if the shrinking vma had").
    """
    kasan_check(vma, "vma_adjust")
    mm = vma.vm_mm
    next_ = vma_next(mm, vma)
    importer: VmArea | None = None
    anon_vma = None
    adjust_next = 0
    remove_next = 0
    if next_ is not None and insert is None:
        if end >= next_.vm_end:  # vma expands over all of next (mprotect case 1, 6)
            remove_next = 1 + (end > next_.vm_end)
            end = next_.vm_end
            anon_vma = next_.anon_vma
            importer = vma
        elif end > next_.vm_start:  # vma expands over part of next (case 5)
            adjust_next = end - next_.vm_start
            anon_vma = next_.anon_vma
            importer = vma
        elif end < vma.vm_end:  # vma shrinks, next grows down (case 4)
            adjust_next = -(vma.vm_end - end)
            anon_vma = next_.anon_vma
            importer = next_
    if vma.anon_vma is not None:
        anon_vma = vma.anon_vma
    if anon_vma is not None:
        await anon_vma.lock.lock()
        if importer is not None and importer.anon_vma is None:
            importer.anon_vma = anon_vma
            __anon_vma_link(importer)
    vma.vm_start = start
    vma.vm_end = end
    vma.vm_pgoff = pgoff
    if adjust_next and next_ is not None:
        next_.vm_start += adjust_next
        next_.vm_pgoff += adjust_next
    if remove_next and next_ is not None:
        mm.mmap.remove(next_)  # __vma_unlink
        if next_.anon_vma is not None:
            __anon_vma_merge(vma, next_)
    elif insert is not None:
        __insert_vm_struct(mm, insert)
    if anon_vma is not None:
        await anon_vma.lock.unlock()
    if remove_next and next_ is not None:
        vm_area_free(next_)
        following = vma_next(mm, vma)
        if remove_next == 2 and following is not None:  # mprotect case 6: that one goes too
            await vma_adjust(vma, start, following.vm_end, pgoff)


def _mergeable(vma: VmArea, flags: int, anon_vma: object) -> bool:
    """``is_mergeable_vma`` + ``is_mergeable_anon_vma``: same flags, compatible anon_vmas."""
    return (vma.vm_flags == flags
            and (anon_vma is None or vma.anon_vma is None or vma.anon_vma is anon_vma))


async def vma_merge(mm: MmStruct, prev: VmArea | None, addr: int, end: int, flags: int,
                    anon_vma: object, pgoff: int) -> VmArea | None:
    """``vma_merge``: extend ``prev`` and/or the next vma over [addr, end) if they can be
    one mapping (same flags, compatible anon_vma, contiguous pgoff); the merged vma or None.

    Context: mmap_sem held for write. The merged vma keeps *its* place in its anon_vma's
    list: a range merged into a vma walked earlier than its source breaks I11 (mremap).
    """
    pglen = end - addr
    next_ = vma_next(mm, prev)
    area = next_
    if next_ is not None and next_.vm_end == end:  # cases 6, 7, 8
        next_ = vma_next(mm, next_)
    if (prev is not None and prev.vm_end == addr and _mergeable(prev, flags, anon_vma)
            and prev.vm_pgoff + (prev.vm_end - prev.vm_start) == pgoff):
        if (next_ is not None and end == next_.vm_start and _mergeable(next_, flags, anon_vma)
                and next_.vm_pgoff == pgoff + pglen
                and (prev.anon_vma is None or next_.anon_vma is None
                     or prev.anon_vma is next_.anon_vma)):
            await vma_adjust(prev, prev.vm_start, next_.vm_end, prev.vm_pgoff)  # cases 1, 6
        else:
            await vma_adjust(prev, prev.vm_start, end, prev.vm_pgoff)  # cases 2, 5, 7
        return prev
    if (next_ is not None and end == next_.vm_start and _mergeable(next_, flags, anon_vma)
            and next_.vm_pgoff == pgoff + pglen):
        if prev is not None and addr < prev.vm_end:  # case 4
            await vma_adjust(prev, prev.vm_start, addr, prev.vm_pgoff)
        else:  # cases 3, 8
            area = area or next_
            await vma_adjust(area, addr, next_.vm_end, next_.vm_pgoff - pglen)
        return area
    return None


async def merge_or_split(vma: VmArea, prev: VmArea | None, start: int, end: int,
                         newflags: int) -> VmArea:
    """The head both mprotect_fixup and mlock_fixup write out: make [start, end) one vma
    that can take ``newflags``, by vma_merge with a neighbour or else split_vma at both
    ends. Returns that vma. Context: mmap_sem held for write."""
    pgoff = vma.vm_pgoff + (start - vma.vm_start)
    merged = await vma_merge(vma.vm_mm, prev, start, end, newflags, vma.anon_vma, pgoff)
    if merged is not None:
        return merged
    if start != vma.vm_start:
        await split_vma(vma.vm_mm, vma, start, True)
    if end != vma.vm_end:
        await split_vma(vma.vm_mm, vma, end, False)
    return vma


async def fixup_range(
    mm: MmStruct, start: int, length: int, newflags_of: Callable[[VmArea], int],
    fixup: Callable[[VmArea, VmArea | None, int, int, int], Awaitable[VmArea]],
) -> int:
    """The walk do_mlock and sys_mprotect share: ``fixup`` each vma of [start, start +
    length) to ``newflags_of(vma)`` (a negative errno stops the walk); the range must be
    mapped without holes (-ENOMEM). Context: mmap_sem held for write."""
    if length <= 0:
        return EINVAL
    end = start + length
    vma, prev = find_vma_prev(mm, start)
    if vma is None or vma.vm_start > start:
        return ENOMEM
    if start > vma.vm_start:
        prev = vma
    nstart = start
    while True:
        newflags = newflags_of(vma)
        if newflags < 0:
            return newflags
        tmp = min(vma.vm_end, end)
        prev = await fixup(vma, prev, nstart, tmp, newflags)
        nstart = max(tmp, prev.vm_end)  # a merge may have taken prev past tmp
        if nstart >= end:
            return 0
        nxt = vma_next(mm, prev)
        if nxt is None or nxt.vm_start != nstart:
            return ENOMEM
        vma = nxt


async def split_vma(mm: MmStruct, vma: VmArea, addr: int, new_below: bool) -> int:
    """``split_vma``: cut ``vma`` at ``addr``; the new vma is the part below (``new_below``)
    or above ``addr`` and shares the anon_vma (linked at its tail by vma_adjust's insert).

    Context: mmap_sem held for write.
    """
    kasan_check(vma, "split_vma")
    new = vm_area_alloc(mm, vma.vm_start, vma.vm_end, vma.vm_flags)
    new.vm_pgoff = vma.vm_pgoff
    new.vm_page_prot_write = vma.vm_page_prot_write
    new.anon_vma = vma.anon_vma
    if new_below:
        new.vm_end = addr
        await vma_adjust(vma, addr, vma.vm_end, vma.vm_pgoff + (addr - new.vm_start), new)
    else:
        new.vm_start = addr
        new.vm_pgoff += addr - vma.vm_start
        await vma_adjust(vma, vma.vm_start, addr, vma.vm_pgoff, new)
    return 0


async def free_pgtables(mm: MmStruct, vmas: list[VmArea]) -> None:
    """``free_pgtables``: unlink from rmap, then free page tables no other vma covers."""
    for vma in vmas:
        await anon_vma_unlink(vma)
    remaining = [v for v in mm.mmap if v not in vmas]
    for idx in list(mm.pgtables):
        lo, hi = idx * PTRS_PER_PTE, (idx + 1) * PTRS_PER_PTE
        if not any(v.vm_start < hi and lo < v.vm_end for v in remaining):
            kfree(mm.pgtables.pop(idx))


def vm_area_alloc(mm: MmStruct, start: int, end: int, flags: int) -> VmArea:
    """``kmem_cache_alloc(vm_area_cachep)`` and the fields every caller sets; counted live in
    the world's ``vm_area_cachep`` until :func:`vm_area_free`.

    Context: may sleep (SLAB_KERNEL: slab's ``cache_alloc_debugcheck_before`` does
    ``might_sleep_if(flags & __GFP_WAIT)``); no spinlock held."""
    might_sleep("kmem_cache_alloc(vm_area_cachep, SLAB_KERNEL)")
    vma = VmArea(mm, start, end, flags)
    W().vm_area_cachep[id(vma)] = vma
    return vma


def vm_area_free(vma: VmArea) -> None:
    """``kmem_cache_free(vm_area_cachep, vma)``: KASAN poisons it."""
    W().vm_area_cachep.pop(id(vma), None)
    kfree(vma)


def remove_vma(mm: MmStruct, vma: VmArea) -> None:
    mm.mmap.remove(vma)
    vm_area_free(vma)


async def unmap_region(mm: MmStruct, vmas: list[VmArea]) -> None:
    """``unmap_region``: zap the detached vmas' ptes, then hide them from rmap and free the
    page tables nothing else covers (``free_pgtables``).

    Context: mmap_sem held for write; zap takes each ptl, free_pgtables each anon_vma->lock.
    The zapped pages' references go in ``tlb_finish_mmu``, after free_pgtables: a gathered
    page may outlive the anon_vma its ``mapping`` names (A.8).
    """
    await lru_add_drain()
    tlb = tlb_gather_mmu(mm, False)
    await unmap_vmas(tlb, vmas)
    await free_pgtables(mm, vmas)
    await tlb_finish_mmu(tlb)


async def do_munmap(mm: MmStruct, start: int, length: int) -> int:
    """``do_munmap`` of [start, start + length): split the vmas at both ends, detach those
    inside, unmap_region, free them.

    Context: mmap_sem held for write by the caller.
    """
    if start < 0 or length <= 0 or start > TASK_SIZE or length > TASK_SIZE - start:
        return EINVAL
    vma = find_vma(mm, start)
    if vma is None:
        return 0
    end = start + length
    if vma.vm_start >= end:
        return 0
    kasan_check(vma, "do_munmap")
    if start > vma.vm_start:
        await split_vma(mm, vma, start, False)
    last = find_vma(mm, end)
    if last is not None and end > last.vm_start:
        await split_vma(mm, last, end, True)
    # detach_vmas_to_be_unmapped: off the mm's list, so no fault can find them
    doomed = [v for v in mm.mmap if start <= v.vm_start and v.vm_end <= end]
    for v in doomed:
        mm.mmap.remove(v)
    await unmap_region(mm, doomed)
    for v in doomed:  # remove_vma_list
        vm_area_free(v)
    return 0


async def copy_vma(vma: VmArea, addr: int, length: int, pgoff: int) -> tuple[VmArea, VmArea]:
    """``copy_vma`` (mremap): a vma for [addr, addr + length) with ``vma``'s flags and
    anon_vma: merged into a neighbour by vma_merge, else a new vma linked at the *tail* of
    the anon_vma list. Returns (new_vma, the source vma, which the merge may have replaced).

    Context: mmap_sem held for write. A merge keeps the neighbour's place in the anon_vma
    list, which may be *before* the source: then an rmap walk can visit the destination
    before the source while move_ptes moves a pte from one to the other (fixed in 2011 by
    anon_vma_moveto_tail, target.fixes).
    """
    kasan_check(vma, "copy_vma")
    mm = vma.vm_mm
    vma_start = vma.vm_start
    if vma.anon_vma is None:  # "not yet faulted: update new pgoff to match new location"
        pgoff = addr
    _, prev = find_vma_prev(mm, addr)
    new_vma = await vma_merge(mm, prev, addr, addr + length, vma.vm_flags, vma.anon_vma, pgoff)
    if new_vma is not None:
        if new_vma.vm_start <= vma_start < new_vma.vm_end:  # source merged into new_vma
            vma = new_vma
        return new_vma, vma
    new_vma = vm_area_alloc(mm, addr, addr + length, vma.vm_flags)
    new_vma.vm_pgoff = pgoff
    new_vma.vm_page_prot_write = vma.vm_page_prot_write
    new_vma.anon_vma = vma.anon_vma
    await vma_link(mm, new_vma)
    return new_vma, vma


def get_unmapped_area(mm: MmStruct, length: int) -> int:
    """``arch_get_unmapped_area`` (legacy bottom-up layout): the first hole of ``length``
    pages from TASK_UNMAPPED_BASE, or -ENOMEM. Context: mmap_sem held for write."""
    addr = TASK_UNMAPPED_BASE
    for vma in mm.mmap:
        if vma.vm_end <= addr:
            continue
        if addr + length <= vma.vm_start:
            break
        addr = vma.vm_end
    return addr if addr + length <= TASK_SIZE else ENOMEM


def check_mm(mm: MmStruct) -> None:
    """3.4+'s "BUG: Bad rss-counter state" at the end of an mm, as the rss oracle (I5)."""
    if mm.anon_rss or mm.file_rss:
        BUG("rss-mismatch",
            f"Bad rss-counter state mm:{mm.name} anon_rss:{mm.anon_rss} file_rss:{mm.file_rss}",
            mm=mm.name, anon_rss=mm.anon_rss, file_rss=mm.file_rss)


async def exit_mmap(mm: MmStruct) -> None:
    """``exit_mmap``: tear down every mapping. Context: last user gone; no mmap_sem."""
    vmas = list(mm.mmap)
    await lru_add_drain()
    tlb = tlb_gather_mmu(mm, True)
    await unmap_vmas(tlb, vmas)
    await free_pgtables(mm, vmas)
    await tlb_finish_mmu(tlb)
    for vma in vmas:
        remove_vma(mm, vma)
    check_mm(mm)


async def mmput(mm: MmStruct) -> None:
    """``mmput``: drop a user; the last one runs exit_mmap and frees the mm."""
    kasan_check(mm, "mmput")
    touch(mm, WRITE, "mm_users")  # atomic_dec_and_test: no point (touch's docstring)
    mm.mm_users -= 1
    if mm.mm_users > 0:
        return
    await exit_mmap(mm)
    if not list_empty(mm.mmlist):
        w = W()
        await w.mmlist_lock.lock()
        list_del(mm.mmlist)
        await w.mmlist_lock.unlock()
    W().mm_cachep.pop(id(mm), None)
    touch(mm, WRITE, "mm_users")  # the free, read with mm_users by swapoff's mm walks
    kfree(mm)  # mmdrop
