"""mlock: mm/mlock.c (2.6.17): split or merge the vmas of a range, set or clear VM_LOCKED.

    do_mlock (mmap_sem write)
      mlock_fixup per vma in [start, end)
        vma_merge, or split_vma at start and end
        vm_flags; make_pages_present when locking
"""

from __future__ import annotations

from target.kernel import kasan_check, lockdep_assert_held

from .memory import get_user_pages
from .mmap import fixup_range, merge_or_split
from .types import VM_LOCKED, VM_WRITE, MmStruct, VmArea


async def make_pages_present(mm: MmStruct, vma: VmArea, start: int, end: int) -> None:
    """``make_pages_present``: fault every page of [start, end) in, writing if the vma is
    writable, without keeping references (``get_user_pages(..., NULL, NULL)``); which breaks
    COW in a writable private vma.

    Context: mmap_sem held (write from mlock and mremap); may sleep (faults).
    """
    write = bool(vma.vm_flags & VM_WRITE)
    for addr in range(start, end):
        await get_user_pages(mm, vma, addr, write, get=False)


async def mlock_fixup(vma: VmArea, prev: VmArea | None, start: int, end: int,
                      newflags: int) -> VmArea:
    """``mlock_fixup``: give [start, end) of ``vma`` the flags ``newflags`` (VM_LOCKED set or
    cleared); returns the vma now covering it (``*prev``).

    Context: mmap_sem held for write (sys_mlock).
    """
    mm = vma.vm_mm
    lockdep_assert_held(mm.mmap_sem, write=True)
    kasan_check(vma, "mlock_fixup")
    if newflags == vma.vm_flags:
        return vma
    vma = await merge_or_split(vma, prev, start, end, newflags)
    vma.vm_flags = newflags
    if newflags & VM_LOCKED:
        await make_pages_present(mm, vma, start, end)
    return vma


async def do_mlock(mm: MmStruct, start: int, length: int, on: bool) -> int:
    """``do_mlock``: every vma of [start, start + length), which must be mapped without
    holes. Context: mmap_sem held for write by the caller (sys_mlock / sys_munlock)."""

    def newflags_of(vma: VmArea) -> int:
        return (vma.vm_flags | VM_LOCKED) if on else (vma.vm_flags & ~VM_LOCKED)

    return await fixup_range(mm, start, length, newflags_of, mlock_fixup)
