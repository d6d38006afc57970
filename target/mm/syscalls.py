"""Entry points the workload calls: user memory access, fork, exit, munmap, mlock, mprotect,
mremap, pin, migrate, reclaim, swapoff. Each is what a system call or the MMU does, written
against the model.

User memory access is the MMU: it walks the pte without any lock, and if the pte allows the
access, the access happens atomically at that point (hardware sets the accessed and dirty
bits; x86 updates them atomically, so they are never lost to a concurrent
``ptep_get_and_clear``). Otherwise it takes the fault path (``do_page_fault``: mmap_sem read,
find_vma, handle_mm_fault) and retries.

Data integrity (reference I10) is checked here, on reads: each mm keeps, as ghost state, the
value of the last store to each address in the run's step order (target.mm.ghost), updated in
the same step as the page data, by the MMU access and by each DMA burst; fork, mremap and
munmap carry it in the step that moves the pte. A read that returns anything else is a
``lost-write``. A process may have several user threads (tasks sharing its mm, as after
``clone(CLONE_VM)``): racing stores leave whichever ran last, and the ghost says the same, so
the expectation is exact with any number of writers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from target.kernel import BUG, READ, WRITE, preempt, touch, trace

from . import vmscan
from .filemap import lock_page, unlock_page
from .fork import PROCESS_TABLE, Process, do_fork, exit_mm, get_task_mm
from .ghost import ghost_dma, ghost_store, ghost_unmaps, ghost_value
from .memory import VM_FAULT_OOM, get_user_pages, handle_mm_fault
from .mempolicy import MPOL_MF_MOVE, MPOL_MF_MOVE_ALL, do_migrate_pages
from .mlock import do_mlock
from .mmap import EINVAL, ENOMEM, do_munmap, mmput
from .move_pages import PageToNode, sys_move_pages
from .mprotect import do_mprotect
from .mremap import MREMAP_FIXED, MREMAP_MAYMOVE, do_mremap
from .page_io import end_swap_io
from .pgtable import pte_xchg
from .swap import put_page
from .swapoff import sys_swapoff
from .types import VM_WRITE, MmStruct, Page, PG_dirty, PresentPte
from .world import W

MAIN_THREAD = "main"


class UserProcess(Process):
    """A process: its user threads and the pages they have pinned.

    Invariants:
        Each live thread in ``threads`` holds one ``mm_users`` reference (clone(CLONE_VM)
        takes one per thread); the last thread's exit detaches the mm (``mm = None``).
    """

    def __init__(self, pid: int, mm: MmStruct | None,
                 threads: tuple[str, ...] = (MAIN_THREAD,)) -> None:
        super().__init__(pid, mm)
        self.threads: set[str] = set(threads)
        if mm is not None:
            touch(mm, WRITE, "mm_users")
            mm.mm_users += len(self.threads) - 1  # the first thread's reference is mm_init's
        # (thread, address) -> the page that thread's get_user_pages pinned, and how often
        # the user had unmapped or moved the address then (target.mm.ghost.ghost_dma)
        self.pins: dict[tuple[str, int], tuple[Page, int]] = {}

    @property
    def expected(self) -> dict[int, int]:
        """What the user program must read back at each address (the mm's ghost; empty once
        the process has exited)."""
        return self.mm.ghost if self.mm is not None else {}


async def _mmu_access(mm: MmStruct, addr: int, write: bool, value: int
                      ) -> tuple[bool, int, int]:
    """One MMU attempt: (True, value read, value the ghost expects at this step) if the pte
    allowed the access, else (False, 0, 0). The access, the A/D update and the ghost update
    are one step: another CPU sees all of it or none."""
    await preempt(mm, WRITE, addr)  # a read access sets the accessed bit: a pte write too
    table = mm.pte_table(addr, alloc=False)
    if table is None:
        return False, 0, 0
    pte = table.ptes[addr - table.base]
    if type(pte) is not PresentPte or (write and not pte.write):
        return False, 0, 0
    page = W().mem_map[pte.pfn]
    new = PresentPte(pte.pfn, pte.write, pte.dirty or write, True)
    if new != pte:
        pte_xchg(mm, table, addr, new)  # hardware A/D update, atomic with the access
    if write:
        page.data = value
        ghost_store(mm, addr, value)
        trace("store", mm=mm.name, addr=addr, pfn=page.pfn, value=value)
        return True, value, value
    return True, page.data, ghost_value(mm, addr)


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
    """A load or store by a user thread of ``p``; None if the process is gone or SIGSEGV."""
    mm = get_task_mm(p)
    if mm is None:
        return None
    result: int | None = None
    expected = 0
    while True:
        done, got, expected = await _mmu_access(mm, addr, write, value)
        if done:
            result = got
            break
        if not await do_page_fault(mm, addr, write):
            break
    await mmput(mm)
    if result is not None and not write and result != expected:
        BUG("lost-write",
            f"process {p.pid} read {result} at address {addr}, expected {expected}",
            pid=p.pid, addr=addr, read=result, expected=expected)
    return result


async def sys_fork(p: UserProcess, child_pid: int,
                   threads: tuple[str, ...] = (MAIN_THREAD,)) -> UserProcess | None:
    """``fork``: the child is a new process with a copy of the mm (copy_one_pte copies the
    ghost values with the ptes). Only the calling thread is copied; the child's ``threads``
    are that one and the ones it clones (``clone(CLONE_VM)``) at once."""
    child = await do_fork(p, child_pid)
    if child is None:
        return None
    uchild = UserProcess(child_pid, child.mm, threads)
    touch(PROCESS_TABLE, WRITE)
    W().processes[child_pid] = uchild
    return uchild


async def sys_exit(p: UserProcess, thread: str | None = None) -> None:
    """``exit`` of one user thread (None: ``exit_group``, every thread in turn): unpin what
    it still pins, drop its mm reference (``exit_mm``: ``tsk->mm = NULL; mmput(mm)``). The
    last thread's exit detaches the mm from the process, and its mmput tears the mm down
    unless a kernel user (get_task_mm) still holds it."""
    for t in sorted(p.threads) if thread is None else [thread]:
        await _exit_thread(p, t)


async def _exit_thread(p: UserProcess, thread: str) -> None:
    touch(PROCESS_TABLE, READ)
    if thread not in p.threads:
        return
    for key in [k for k in p.pins if k[0] == thread]:
        await unpin(p, key[1], thread)
    touch(PROCESS_TABLE, WRITE)
    p.threads.discard(thread)
    if not p.threads:
        await exit_mm(p)
    elif p.mm is not None:
        await mmput(p.mm)


SpecHook = Callable[[MmStruct], Callable[[int], None]]
"""A harness check of an mm system call (stress/spec.py): called with the mm once mmap_sem is
held for write, it returns the check of the call's return value, run before up_write."""


async def _with_mmap_sem_write(p: UserProcess, body: Callable[[MmStruct], Awaitable[int]],
                               spec: SpecHook | None = None) -> int | None:
    """Run ``body(mm)`` the way an mm-changing system call does: ``get_task_mm``,
    ``down_write(mmap_sem)``, body, ``up_write``, ``mmput``. None if the process is gone.
    ``spec`` sees the call from inside the write section: no other thread's mm system call
    can come between what it reads before and after (ours)."""
    mm = get_task_mm(p)
    if mm is None:
        return None
    await mm.mmap_sem.down_write()
    after = spec(mm) if spec is not None else None
    ret = await body(mm)
    if after is not None:
        after(ret)
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


async def sys_munmap(p: UserProcess, addr: int, length: int | None = None,
                     spec: SpecHook | None = None) -> int | None:
    """``munmap(addr, length)``. Context: mmap_sem write."""

    async def body(mm: MmStruct) -> int:
        start, n = _range(mm, addr, length)
        return await do_munmap(mm, start, n) if n else EINVAL

    return await _with_mmap_sem_write(p, body, spec)


async def sys_mlock(p: UserProcess, addr: int, lock: bool,
                    length: int | None = None, spec: SpecHook | None = None) -> int | None:
    """``mlock``/``munlock(addr, length)``. Context: mmap_sem write."""

    async def body(mm: MmStruct) -> int:
        start, n = _range(mm, addr, length)
        return await do_mlock(mm, start, n, lock) if n else ENOMEM

    return await _with_mmap_sem_write(p, body, spec)


async def sys_mprotect(p: UserProcess, addr: int, length: int, prot: int,
                       spec: SpecHook | None = None) -> int | None:
    """``mprotect(addr, length, prot)`` with PROT_READ, optionally PROT_WRITE."""

    async def body(mm: MmStruct) -> int:
        return await do_mprotect(mm, addr, length, prot)

    return await _with_mmap_sem_write(p, body, spec)


async def sys_mremap(p: UserProcess, addr: int, old_len: int, new_len: int,
                     new_addr: int, spec: SpecHook | None = None) -> int | None:
    """``mremap(addr, old_len, new_len, MREMAP_MAYMOVE [| MREMAP_FIXED, new_addr])``:
    ``new_addr < 0`` lets the kernel choose (in place if it can, else get_unmapped_area).

    Ghost: the expected values travel with the ptes (move_ptes, target.mm.ghost).
    """
    flags = MREMAP_MAYMOVE | (MREMAP_FIXED if new_addr >= 0 else 0)

    async def body(mm: MmStruct) -> int:
        return await do_mremap(mm, addr, old_len, new_len, flags, new_addr)

    return await _with_mmap_sem_write(p, body, spec)


async def pin(p: UserProcess, addr: int, thread: str = MAIN_THREAD,
              spec: Callable[[MmStruct, Page | None], None] | None = None) -> bool:
    """``get_user_pages(write=1)`` of one page by ``thread``, as a driver pins a DMA buffer.
    ``spec`` (ours) sees the result under mmap_sem, where no munmap can change the answer."""
    if (thread, addr) in p.pins:
        return False
    mm = get_task_mm(p)
    if mm is None:
        return False
    await mm.mmap_sem.down_read()
    vma = mm.find_vma(addr)
    page = None
    if vma is not None and vma.vm_flags & VM_WRITE:
        page = await get_user_pages(mm, vma, addr, True)
    # Read under mmap_sem, which the user's munmap and mremap need for write: a later one
    # moves the buffer away from ``addr`` (target.mm.ghost.ghost_dma).
    unmaps = ghost_unmaps(mm, addr)
    if spec is not None:
        spec(mm, page)
    await mm.mmap_sem.up_read()
    await mmput(mm)
    if page is None:
        return False
    p.pins[thread, addr] = page, unmaps
    return True


async def dma_write(p: UserProcess, addr: int, value: int, bursts: int = 3,
                    thread: str = MAIN_THREAD) -> bool:
    """The device writes into the page ``thread`` pinned: no pte, no lock, no fault.

    A DMA transfer is not one store: the device writes ``bursts`` times (``value``,
    ``value + 1``, ...), each a scheduling point, and the last one is what the buffer holds.
    The user program expects each burst from its step on where it maps the page, and at
    ``addr`` unless it unmapped or moved it meanwhile (target.mm.ghost.ghost_dma).
    """
    pinned = p.pins.get((thread, addr))
    if pinned is None:
        return False
    page, unmaps = pinned
    for i in range(bursts):
        await preempt(page, WRITE, "data")
        page.data = value + i
        if p.mm is not None:
            ghost_dma(p.mm, addr, unmaps, page.pfn, value + i)
        trace("dma", pid=p.pid, addr=addr, pfn=page.pfn, value=value + i)
    return True


async def set_page_dirty_lock(page: Page) -> None:
    """``set_page_dirty_lock``: lock_page, set_page_dirty, unlock_page (mm/page-writeback.c).

    Context: may sleep; the caller holds a reference (its pin).
    """
    await lock_page(page)
    page.flags |= PG_dirty
    await unlock_page(page)


async def unpin(p: UserProcess, addr: int, thread: str = MAIN_THREAD) -> bool:
    """``set_page_dirty_lock`` + ``put_page``: the end of ``thread``'s DMA."""
    pinned = p.pins.pop((thread, addr), None)
    if pinned is None:
        return False
    page = pinned[0]
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
    await preempt(W(), WRITE, "pending_writeback")
    end_swap_io()  # synchronous I/O; the interrupt actor completes asynchronous I/O
    return freed
