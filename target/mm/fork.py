"""Processes and fork: kernel/fork.c (dup_mmap, get_task_mm) and kernel/exit.c (exit_mm).

A :class:`Process` stands for a task_struct with its mm. Model tasks act as threads of a
process: each operation takes a user reference on the mm (``get_task_mm``) and drops it with
``mmput`` when done, as a thread of the process would keep the mm alive, so an ``exit`` racing
with an operation leaves exit_mmap to whoever drops the last user.
"""

from __future__ import annotations

from target.kernel import READ, WRITE, kasan_check, might_sleep, touch

from .ghost import ghost_fork_layout
from .locking import SINGLE_DEPTH_NESTING
from .memory import copy_page_range
from .mmap import mmput, vm_area_alloc
from .rmap import anon_vma_link
from .types import VM_LOCKED, MmStruct
from .world import W


class _ProcessTable:
    """What :func:`~target.kernel.touch` names for the process table (the world's
    ``processes``, each process's threads and ``task->mm``): one object for every machine,
    so that touching it needs no world (a Process may be read outside an execution)."""

    name = "process table"

    def __repr__(self) -> str:
        return "<process table>"


PROCESS_TABLE = _ProcessTable()


class Process:
    """A task_struct reduced to pid and mm. ``mm is None`` once it has exited.

    ``task->mm`` is read on entering a system call and cleared by exit_mm with no point
    between (the kernel's ``current->mm`` needs none: only the task itself clears it); a
    thread of the same process reads it from another task, so each access is a
    :func:`touch` of the process table, which DPOR orders.
    """

    def __init__(self, pid: int, mm: MmStruct | None) -> None:
        self.pid = pid
        self._mm = mm

    @property
    def mm(self) -> MmStruct | None:
        touch(PROCESS_TABLE, READ)
        return self._mm

    @mm.setter
    def mm(self, mm: MmStruct | None) -> None:
        touch(PROCESS_TABLE, WRITE)
        self._mm = mm

    def __repr__(self) -> str:
        return f"<process {self.pid}>"


def get_task_mm(p: Process) -> MmStruct | None:
    """``get_task_mm``: the mm with a user reference taken, or None if the task exited."""
    mm = p.mm
    if mm is None:
        return None
    kasan_check(mm, "get_task_mm")
    touch(mm, WRITE, "mm_users")  # atomic_inc: no point (touch's docstring)
    mm.mm_users += 1
    return mm


async def exit_mm(p: Process) -> None:
    """``exit_mm``: detach the mm from the task, then drop the task's own user reference."""
    mm = p.mm
    if mm is None:
        return
    p.mm = None
    await mmput(mm)


async def dup_mmap(mm: MmStruct, oldmm: MmStruct) -> int:
    """``dup_mmap``: copy every vma; link the child's vma into the anon_vma (tail) *before*
    copying its ptes.

    Context: takes oldmm->mmap_sem and mm->mmap_sem for write (the child's nested).
    Returns 0, or copy_page_range's error: the vmas copied so far stay in ``mm`` for the
    caller's mmput to tear down (``goto out``).
    """
    await oldmm.mmap_sem.down_write()
    await mm.mmap_sem.down_write(SINGLE_DEPTH_NESTING)
    for mpnt in list(oldmm.mmap):
        kasan_check(mpnt, "dup_mmap")
        tmp = vm_area_alloc(mm, mpnt.vm_start, mpnt.vm_end, mpnt.vm_flags & ~VM_LOCKED)
        tmp.vm_pgoff = mpnt.vm_pgoff
        tmp.vm_page_prot_write = mpnt.vm_page_prot_write
        tmp.anon_vma = mpnt.anon_vma
        await anon_vma_link(tmp)
        mm.mmap.append(tmp)
        retval = await copy_page_range(mm, oldmm, mpnt)
        if retval:
            break
    else:
        retval = 0
        ghost_fork_layout(oldmm, mm)  # ours: stress/spec.py checks the child's syscalls
    await mm.mmap_sem.up_write()
    await oldmm.mmap_sem.up_write()
    return retval


def allocate_mm(name: str) -> MmStruct:
    """``allocate_mm()`` (kernel/fork.c): ``kmem_cache_alloc(mm_cachep)``, counted live in the
    world's ``mm_cachep`` until mmput frees it. Context: may sleep (SLAB_KERNEL)."""
    might_sleep("kmem_cache_alloc(mm_cachep, SLAB_KERNEL)")
    mm = MmStruct(name)
    W().mm_cachep[id(mm)] = mm
    return mm


async def do_fork(parent: Process, child_pid: int) -> Process | None:
    """``do_fork`` reduced to the mm copy: a child process with a copy of the parent's mm."""
    oldmm = get_task_mm(parent)
    if oldmm is None:
        return None
    mm = allocate_mm(f"mm{child_pid}")
    err = await dup_mmap(mm, oldmm)
    await mmput(oldmm)
    if err:  # dup_mm's free_pt: the half-built child goes as an exiting mm does
        await mmput(mm)
        return None
    child = Process(child_pid, mm)
    touch(PROCESS_TABLE, WRITE)
    W().processes[child_pid] = child
    return child
