"""mlock: mm/mlock.c (2.6.17), whole vmas only (no split)."""

from __future__ import annotations

from target.kernel import kasan_check, lockdep_assert_held

from .memory import get_user_pages
from .types import VM_LOCKED, VM_WRITE, MmStruct, VmArea


async def mlock_fixup(mm: MmStruct, vma: VmArea, lock: bool) -> None:
    """``mlock_fixup``: set or clear VM_LOCKED; locking faults every page in.

    Context: mmap_sem held for write (sys_mlock). ``make_pages_present`` faults each page
    with ``write = VM_WRITE`` and no page references, which breaks COW in a writable vma.
    """
    lockdep_assert_held(mm.mmap_sem, write=True)
    kasan_check(vma, "mlock_fixup")
    if not lock:
        vma.vm_flags &= ~VM_LOCKED
        return
    vma.vm_flags |= VM_LOCKED
    write = bool(vma.vm_flags & VM_WRITE)
    for addr in range(vma.vm_start, vma.vm_end):
        await get_user_pages(mm, vma, addr, write, get=False)
