"""munmap, exit and the end of an mm: mm/mmap.c and kernel/fork.c's mmput (2.6.17).

    do_munmap (mmap_sem write)          exit_mmap (last mmput, no mmap_sem)
      unmap_region                        unmap_vmas: zap every pte
        unmap_vmas                        free_pgtables: anon_vma_unlink every vma
        free_pgtables                     remove_vma: free every vma
      remove_vma                        mmput: off the mmlist, mmdrop (free the mm)

free_pgtables hides the vma from rmap (anon_vma_unlink) *before* freeing the page tables, so
an rmap walker holding anon_vma->lock never reaches a freed table. Simplifications: munmap
removes whole vmas only (no split); the rss-counter check of 3.4+ (``check_mm``) is run at
exit as the rss oracle.
"""

from __future__ import annotations

from target.kernel import BUG, kasan_check, kfree

from .memory import unmap_vmas
from .rmap import anon_vma_unlink
from .types import PTRS_PER_PTE, MmStruct, VmArea
from .world import W


async def free_pgtables(mm: MmStruct, vmas: list[VmArea]) -> None:
    """``free_pgtables``: unlink from rmap, then free page tables no other vma covers."""
    for vma in vmas:
        await anon_vma_unlink(vma)
    remaining = [v for v in mm.mmap if v not in vmas]
    for idx in list(mm.pgtables):
        lo, hi = idx * PTRS_PER_PTE, (idx + 1) * PTRS_PER_PTE
        if not any(v.vm_start < hi and lo < v.vm_end for v in remaining):
            kfree(mm.pgtables.pop(idx))


def remove_vma(mm: MmStruct, vma: VmArea) -> None:
    mm.mmap.remove(vma)
    kfree(vma)


async def do_munmap(mm: MmStruct, vma: VmArea) -> None:
    """``do_munmap`` of a whole vma (``unmap_region`` + ``remove_vma``).

    Context: mmap_sem held for write by the caller.
    """
    kasan_check(vma, "do_munmap")
    await unmap_vmas(mm, [vma])
    await free_pgtables(mm, [vma])
    remove_vma(mm, vma)


def check_mm(mm: MmStruct) -> None:
    """3.4+'s "BUG: Bad rss-counter state" at the end of an mm, as the rss oracle (I5)."""
    if mm.anon_rss or mm.file_rss:
        BUG("rss-mismatch",
            f"Bad rss-counter state mm:{mm.name} anon_rss:{mm.anon_rss} file_rss:{mm.file_rss}",
            mm=mm.name, anon_rss=mm.anon_rss, file_rss=mm.file_rss)


async def exit_mmap(mm: MmStruct) -> None:
    """``exit_mmap``: tear down every mapping. Context: last user gone; no mmap_sem."""
    vmas = list(mm.mmap)
    await unmap_vmas(mm, vmas)
    await free_pgtables(mm, vmas)
    for vma in vmas:
        remove_vma(mm, vma)
    check_mm(mm)


async def mmput(mm: MmStruct) -> None:
    """``mmput``: drop a user; the last one runs exit_mmap and frees the mm."""
    kasan_check(mm, "mmput")
    mm.mm_users -= 1
    if mm.mm_users > 0:
        return
    await exit_mmap(mm)
    if mm.on_mmlist:
        w = W()
        await w.mmlist_lock.lock()
        w.mmlist.remove(mm)
        mm.on_mmlist = False
        await w.mmlist_lock.unlock()
    kfree(mm)  # mmdrop
