"""Entry points the workload calls: user memory access, fork, exit, munmap, mlock, mprotect,
mremap, pin, migrate, reclaim, swapoff. Each is what a system call or the MMU does, written
against the model.

User memory access is the MMU: it walks the pte without any lock, and if the pte allows the
access, the access happens atomically at that point (hardware sets the accessed and dirty
bits; x86 updates them atomically, so they are never lost to a concurrent
``ptep_get_and_clear``). Otherwise it takes the fault path (``do_page_fault``: mmap_sem read,
find_vma, handle_mm_fault) and retries.

Data integrity (reference I10) is checked here, on reads: each process keeps, as ghost state,
the last value it stored at each address (a forked child starts from its parent's values);
a read that returns anything else is a ``lost-write``. A process's own writes and the DMA
writes through its pins are the only stores, and each process has one user thread, so the
expectation is never ambiguous.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from target.kernel import BUG, preempt, trace

from . import vmscan
from .filemap import lock_page, unlock_page
from .fork import Process, do_fork, exit_mm, get_task_mm
from .memory import VM_FAULT_OOM, get_user_pages, handle_mm_fault
from .mempolicy import MPOL_MF_MOVE, MPOL_MF_MOVE_ALL, do_migrate_pages
from .mlock import do_mlock
from .mmap import EINVAL, ENOMEM, do_munmap, mmput
from .move_pages import PageToNode, sys_move_pages
from .mprotect import do_mprotect
from .mremap import MREMAP_FIXED, MREMAP_MAYMOVE, do_mremap
from .pgtable import _write
from .swap import put_page
from .swapoff import sys_swapoff
from .types import VM_WRITE, MmStruct, Page, PG_dirty, PresentPte
from .world import W


class UserProcess(Process):
    """A process with the ghost state of its user program."""

    def __init__(self, pid: int, mm: MmStruct | None) -> None:
        super().__init__(pid, mm)
        self.expected: dict[int, int] = {}  # ghost: address -> last value this process stored
        self.pins: dict[int, Page] = {}  # address -> page pinned by get_user_pages


async def _mmu_access(mm: MmStruct, addr: int, write: bool, value: int) -> tuple[bool, int]:
    """One MMU attempt: (True, value read) if the pte allowed the access, else (False, 0)."""
    await preempt()
    table = mm.pte_table(addr, alloc=False)
    if table is None:
        return False, 0
    pte = table.ptes[addr - table.base]
    if type(pte) is not PresentPte or (write and not pte.write):
        return False, 0
    page = W().mem_map[pte.pfn]
    new = PresentPte(pte.pfn, pte.write, pte.dirty or write, True)
    if new != pte:
        _write(mm, table, addr, new)  # hardware A/D update, atomic with the access
    if write:
        page.data = value
        trace("store", mm=mm.name, addr=addr, pfn=page.pfn, value=value)
        return True, value
    return True, page.data


async def do_page_fault(mm: MmStruct, addr: int, write: bool) -> bool:
    """``do_page_fault``: mmap_sem read, find_vma, handle_mm_fault.

    False when the access cannot complete: SIGSEGV (no vma, or a store to a read-only vma),
    or VM_FAULT_OOM, where the kernel's OOM killer would end the task; the model abandons the
    access instead, so the store never happened.
    """
    await mm.mmap_sem.down_read()
    vma = mm.find_vma(addr)
    ok = vma is not None and (not write or bool(vma.vm_flags & VM_WRITE))
    if ok:
        assert vma is not None  # harness: mypy narrowing, ok implies a vma
        ok = await handle_mm_fault(mm, vma, addr, write) != VM_FAULT_OOM
    await mm.mmap_sem.up_read()
    return ok


async def user_access(p: UserProcess, addr: int, write: bool, value: int = 0) -> int | None:
    """A load or store by ``p``'s user thread; None if the process is gone or SIGSEGV."""
    mm = get_task_mm(p)
    if mm is None:
        return None
    result: int | None = None
    while True:
        done, got = await _mmu_access(mm, addr, write, value)
        if done:
            result = got
            break
        if not await do_page_fault(mm, addr, write):
            break
    await mmput(mm)
    if result is None:
        return None
    if write:
        p.expected[addr] = value
    elif result != p.expected.get(addr, 0):
        BUG("lost-write",
            f"process {p.pid} read {result} at address {addr}, expected "
            f"{p.expected.get(addr, 0)}", pid=p.pid, addr=addr, read=result,
            expected=p.expected.get(addr, 0))
    return result


async def sys_fork(p: UserProcess, child_pid: int) -> UserProcess | None:
    """``fork``: the child is a new process with a copy of the mm and of the ghost values."""
    expected = dict(p.expected)
    child = await do_fork(p, child_pid)
    if child is None:
        return None
    uchild = UserProcess(child_pid, child.mm)
    uchild.expected = expected
    W().processes[child_pid] = uchild
    return uchild


async def sys_exit(p: UserProcess) -> None:
    """``exit``: unpin what is still pinned, then exit_mm."""
    for addr in list(p.pins):
        await unpin(p, addr)
    await exit_mm(p)


def _forget_unmapped(p: UserProcess, mm: MmStruct) -> None:
    """Ghost: an address no vma covers any more has no expected value (a later mapping there
    starts from zero-filled pages)."""
    for a in [a for a in p.expected if mm.find_vma(a) is None]:
        del p.expected[a]


async def _with_mmap_sem_write(p: UserProcess, body: Callable[[MmStruct], Awaitable[int]],
                               ) -> int | None:
    """Run ``body(mm)`` the way an mm-changing system call does: ``get_task_mm``,
    ``down_write(mmap_sem)``, body, ``up_write``, ``mmput``. None if the process is gone."""
    mm = get_task_mm(p)
    if mm is None:
        return None
    await mm.mmap_sem.down_write()
    ret = await body(mm)
    _forget_unmapped(p, mm)
    await mm.mmap_sem.up_write()
    await mmput(mm)
    return ret


def _range(mm: MmStruct, addr: int, length: int | None) -> tuple[int, int]:
    """[addr, addr + length), or the whole vma containing ``addr`` when no length is given
    (the form the first scenario files used)."""
    if length is not None:
        return addr, length
    vma = mm.find_vma(addr)
    return (vma.vm_start, vma.vm_end - vma.vm_start) if vma is not None else (addr, 0)


async def sys_munmap(p: UserProcess, addr: int, length: int | None = None) -> int | None:
    """``munmap(addr, length)``. Context: mmap_sem write."""

    async def body(mm: MmStruct) -> int:
        start, n = _range(mm, addr, length)
        return await do_munmap(mm, start, n) if n else EINVAL

    return await _with_mmap_sem_write(p, body)


async def sys_mlock(p: UserProcess, addr: int, lock: bool,
                    length: int | None = None) -> int | None:
    """``mlock``/``munlock(addr, length)``. Context: mmap_sem write."""

    async def body(mm: MmStruct) -> int:
        start, n = _range(mm, addr, length)
        return await do_mlock(mm, start, n, lock) if n else ENOMEM

    return await _with_mmap_sem_write(p, body)


async def sys_mprotect(p: UserProcess, addr: int, length: int, prot: int) -> int | None:
    """``mprotect(addr, length, prot)`` with PROT_READ, optionally PROT_WRITE."""

    async def body(mm: MmStruct) -> int:
        return await do_mprotect(mm, addr, length, prot)

    return await _with_mmap_sem_write(p, body)


async def sys_mremap(p: UserProcess, addr: int, old_len: int, new_len: int,
                     new_addr: int) -> int | None:
    """``mremap(addr, old_len, new_len, MREMAP_MAYMOVE [| MREMAP_FIXED, new_addr])``:
    ``new_addr < 0`` lets the kernel choose (in place if it can, else get_unmapped_area).

    Ghost: the expected values travel with the pages they were stored in.
    """
    flags = MREMAP_MAYMOVE | (MREMAP_FIXED if new_addr >= 0 else 0)
    carried = {a: p.expected[a] for a in range(addr, addr + max(old_len, 0)) if a in p.expected}

    async def body(mm: MmStruct) -> int:
        ret = await do_mremap(mm, addr, old_len, new_len, flags, new_addr)
        if ret >= 0 and ret != addr:  # moved: the old range is unmapped by now
            for a in range(ret, ret + new_len):
                p.expected.pop(a, None)
            for k in range(min(old_len, new_len)):
                if addr + k in carried:
                    p.expected[ret + k] = carried[addr + k]
        return ret

    return await _with_mmap_sem_write(p, body)


async def pin(p: UserProcess, addr: int) -> bool:
    """``get_user_pages(write=1)`` of one page, as a driver pins a DMA buffer."""
    if addr in p.pins:
        return False
    mm = get_task_mm(p)
    if mm is None:
        return False
    await mm.mmap_sem.down_read()
    vma = mm.find_vma(addr)
    page = None
    if vma is not None and vma.vm_flags & VM_WRITE:
        page = await get_user_pages(mm, vma, addr, True)
    await mm.mmap_sem.up_read()
    await mmput(mm)
    if page is None:
        return False
    p.pins[addr] = page
    return True


async def dma_write(p: UserProcess, addr: int, value: int, bursts: int = 3) -> bool:
    """The device writes into the pinned page: no pte, no lock, no fault.

    A DMA transfer is not one store: the device writes ``bursts`` times (``value``,
    ``value + 1``, ...), each a scheduling point, and the last one is what the buffer holds.
    Any burst that lands in a page the process no longer maps is lost to it.
    """
    page = p.pins.get(addr)
    if page is None:
        return False
    for i in range(bursts):
        await preempt()
        page.data = value + i
        p.expected[addr] = value + i
        trace("dma", pid=p.pid, addr=addr, pfn=page.pfn, value=value + i)
    return True


async def set_page_dirty_lock(page: Page) -> None:
    """``set_page_dirty_lock``: lock_page, set_page_dirty, unlock_page (mm/page-writeback.c).

    Context: may sleep; the caller holds a reference (its pin).
    """
    await lock_page(page)
    page.flags |= PG_dirty
    await unlock_page(page)


async def unpin(p: UserProcess, addr: int) -> bool:
    """``set_page_dirty_lock`` + ``put_page``: the end of the DMA."""
    page = p.pins.pop(addr, None)
    if page is None:
        return False
    await set_page_dirty_lock(page)
    await put_page(page)
    return True


async def sys_migrate_pages(p: UserProcess, source: int, dest: int, move_all: bool) -> int:
    """``sys_migrate_pages(pid, {source}, {dest})``: MPOL_MF_MOVE_ALL with CAP_SYS_NICE."""
    mm = get_task_mm(p)
    if mm is None:
        return -3  # -ESRCH
    err = await do_migrate_pages(mm, source, dest, MPOL_MF_MOVE_ALL if move_all else MPOL_MF_MOVE)
    await mmput(mm)
    return err


async def move_pages(p: UserProcess, addr: int, node: int, move_all: bool) -> int | None:
    """``move_pages(pid, 1, {addr}, {node}, status, MPOL_MF_MOVE[_ALL])``: the status of
    the one page (its node, or -errno), None if the process is gone."""
    mm = get_task_mm(p)
    if mm is None:
        return None
    pm = [PageToNode(addr, node)]
    await sys_move_pages(mm, pm, move_all)
    await mmput(mm)
    return pm[0].status


async def swapoff() -> int:
    """``swapoff`` of the swap area, then ``swapon`` of it again (target.mm.swapoff)."""
    return await sys_swapoff()


async def kswapd_reclaim(nid: int) -> bool:
    """kswapd reclaims one page of node ``nid``; its swap write completes after a point."""
    freed = await vmscan.shrink_one(nid)
    await preempt()
    vmscan.end_swap_io()
    return freed
