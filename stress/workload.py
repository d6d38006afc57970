"""Scenarios: a world configuration plus one program of operations per task.

A :class:`Scenario` is plain data (JSON round-trips it), so a finding file can carry the exact
input. Its tasks are the model's CPUs: each runs its program of :data:`OPS` in order, and the
scheduler interleaves them at the model's preemption points.

Processes have one user thread each: operations that load, store, fork, exit, munmap, mlock,
mprotect, mremap or pin for process *p* belong to one task (the generator enforces it,
:func:`validate` checks it), so each process's expected memory contents are never ambiguous.
Kernel-side actors (a migrator calling sys_migrate_pages or move_pages on some pid, kswapd,
swapoff) can run in any task; a scenario may have several migrators.

A process that a fork creates does not exist before that fork, and neither does its thread:
an operation on it sleeps until the fork happens, or until the forking thread has finished
without forking it (then the operation is a no-op). Operations on a process that has exited
are no-ops. Both are decided at run time: they are part of the interleaving.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from target.kernel import HOOKS, READ, WRITE, KernelFinding, WaitBit, preempt, touch, trace
from target.mm import syscalls
from target.mm.fork import PROCESS_TABLE
from target.mm.mprotect import PROT_READ, PROT_WRITE
from target.mm.syscalls import MAIN_THREAD, UserProcess
from target.mm.types import (
    VM_LOCKED,
    VM_MAYWRITE,
    VM_READ,
    VM_WRITE,
    MmStruct,
    PresentPte,
    VmArea,
)
from target.mm.world import W, World

from . import spec as layout_spec
from ._scenario_schema import ARG_RANGE as ARG_RANGE
from ._scenario_schema import LATER_WORLD_OPTIONS as LATER_WORLD_OPTIONS
from ._scenario_schema import MAX_ADDR as MAX_ADDR
from ._scenario_schema import MAX_NAME as MAX_NAME
from ._scenario_schema import MAX_NODES as MAX_NODES
from ._scenario_schema import MAX_OPS as MAX_OPS
from ._scenario_schema import MAX_PAGES_PER_NODE as MAX_PAGES_PER_NODE
from ._scenario_schema import MAX_PID as MAX_PID
from ._scenario_schema import MAX_PROCESSES as MAX_PROCESSES
from ._scenario_schema import MAX_SWAP_SLOTS as MAX_SWAP_SLOTS
from ._scenario_schema import MAX_TASKS as MAX_TASKS
from ._scenario_schema import MAX_TLB_BATCH as MAX_TLB_BATCH
from ._scenario_schema import MAX_VALUE as MAX_VALUE
from ._scenario_schema import MAX_VMAS as MAX_VMAS
from ._scenario_schema import OPS as OPS
from ._scenario_schema import OPTIONAL_ARGS as OPTIONAL_ARGS
from ._scenario_schema import Op as Op
from ._scenario_schema import ProcessSpec as ProcessSpec
from ._scenario_schema import Scenario as Scenario
from ._scenario_schema import ScenarioError as ScenarioError
from ._scenario_schema import TaskSpec as TaskSpec
from ._scenario_schema import VmaSpec as VmaSpec
from ._scenario_schema import expand_loops as expand_loops
from ._scenario_schema import load_scenario_file as load_scenario_file
from ._scenario_schema import schema_error as schema_error
from ._scenario_schema import validate as validate

# -- building and running ----------------------------------------------------------------------


Threads = dict[int, tuple[str, ...]]


def threads_of(sc: Scenario) -> Threads:
    """pid -> the user threads of that process: the tasks with per-process operations on it
    (load, store, fork, exit, ...), in task order. Several tasks on one pid are threads
    sharing its mm (clone(CLONE_VM)); a forked child's threads start at the fork."""
    out: dict[int, list[str]] = {}
    for t in sc.tasks:
        for op in t.ops:
            if OPS[op[0]][1] and t.name not in out.setdefault(op[1], []):
                out[op[1]].append(t.name)
    return {pid: tuple(names) for pid, names in out.items() if names}


IRQ_TASK = "irq"
"""The interrupt actor's task, after the scenario's tasks in a world with asynchronous I/O."""


def execution_task_names(sc: Scenario) -> list[str]:
    """The names of an execution's tasks by tid: the scenario's, then the interrupt actor."""
    return [t.name for t in sc.tasks] + ([IRQ_TASK] if sc.world.swap_io_delay else [])


def build_world(sc: Scenario) -> tuple[World, dict[int, UserProcess]]:
    """A fresh world with the scenario's processes, their threads and vmas (no pages yet)."""
    world = World.create(sc.world)
    threads = threads_of(sc)
    procs: dict[int, UserProcess] = {}
    for spec in sc.processes:
        mm = MmStruct(f"mm{spec.pid}")
        world.mm_cachep[id(mm)] = mm
        for v in spec.vmas:
            flags = VM_READ | VM_MAYWRITE | (VM_WRITE if v.writable else 0)
            vma = VmArea(mm, v.start, v.end, flags)  # the mmap() before the run
            world.vm_area_cachep[id(vma)] = vma
            mm.mmap.append(vma)
        mm.mmap.sort(key=lambda vma: vma.vm_start)
        mm.ghost_layout = {a: (v.writable, False) for v in spec.vmas
                           for a in range(v.start, v.end)}
        p = UserProcess(spec.pid, mm, threads.get(spec.pid, (MAIN_THREAD,)))
        procs[spec.pid] = p
        world.processes[spec.pid] = p
    return world, procs


def _length(op: Op) -> int | None:
    """munmap/mlock/munlock's optional length (without: the vma containing the address)."""
    return int(op[3]) if len(op) > 3 else None


def _process(pid: int) -> UserProcess | None:
    p = W().processes.get(pid)
    return p if isinstance(p, UserProcess) else None


Births = dict[int, WaitBit]


class MigrationStats:
    """Pages the run's ``migrate`` operations found on their source node, and moved.

    Counted from the page tables around each operation (not inside the model), so the rate
    is the user's view: an address mapped on the source before sys_migrate_pages and on the
    destination after it. A concurrent fault, munmap or exit of the same process can blur
    one operation's count; the progress oracle is the exact check, this is the trend.
    """

    __slots__ = ("attempted", "move_pages", "moved")

    def __init__(self) -> None:
        self.attempted = 0
        self.moved = 0
        self.move_pages: dict[str, int] = {}  # status -> how often (status_name)


ERRNO_NAMES = {-1: "-EPERM", -2: "-ENOENT", -11: "-EAGAIN", -12: "-ENOMEM", -13: "-EACCES",
               -14: "-EFAULT", -16: "-EBUSY"}


def status_name(status: int) -> str:
    """A move_pages status as the man page names it: the node, or the errno."""
    return f"node {status}" if status >= 0 else ERRNO_NAMES.get(status, str(status))


def _on_node(mm: MmStruct, nid: int) -> set[int]:
    """Addresses of ``mm`` outside mlocked vmas whose present pte maps a page of node ``nid``
    (raw page tables): what the user asks sys_migrate_pages to move."""
    w = W()
    out = set()
    for table in mm.pgtables.values():
        for i, pte in enumerate(table.ptes):
            if type(pte) is PresentPte and w.mem_map[pte.pfn].nid == nid and (
                    w.mem_map[pte.pfn] is not w.zero_page):
                vma = mm.find_vma(table.base + i)
                if vma is not None and not vma.vm_flags & VM_LOCKED:
                    out.add(table.base + i)
    return out


def births_of(sc: Scenario) -> Births:
    """One "not born yet" bit per forked pid, set until the fork (or its thread's end)."""
    births: Births = {}
    for t in sc.tasks:
        for op in t.ops:
            if op[0] == "fork":
                bit = WaitBit(f"pid{op[2]}.unborn")
                bit.test_and_set()
                births[op[2]] = bit
    return births


async def run_op(op: Op, births: Births | None = None,
                 stats: MigrationStats | None = None, thread: str | None = None,
                 threads: Threads | None = None) -> None:
    """Execute one operation as user thread ``thread`` (None: any live thread of the process,
    for callers without tasks); a process that is gone, or a thread that has exited, makes it
    a no-op. ``threads`` gives a forked child its threads (:func:`threads_of`).

    Entering a system call is a scheduling point, so that even an operation that turns out
    to be a no-op takes a step and lets others run.
    """
    await preempt()
    # The step from here to the call's first point reads the process table (the process,
    # its threads, an unborn child's bit): DPOR orders it against fork and exit (touch).
    touch(PROCESS_TABLE, READ)
    if HOOKS.tracer is not None:  # the timeline's operation rows
        trace("op", op=" ".join(str(x) for x in op))
    name = op[0]
    if name == "swapout":
        await syscalls.kswapd_reclaim(op[1])
        return
    if name == "swapoff":
        layout_spec.check_swapoff(await syscalls.swapoff())
        return
    unborn = births.get(op[1]) if births else None
    if unborn is not None and unborn.is_set:
        await unborn.wait_clear()
    p = _process(op[1])
    if p is None:
        return
    if OPS[name][1]:  # a user thread's own operation
        if thread is None:
            thread = min(p.threads, default=MAIN_THREAD)
        if thread not in p.threads:
            return  # this thread has exited
    me = thread or MAIN_THREAD
    if name == "migrate":
        await _migrate(p, op, stats)
    elif name == "move_pages":
        await _move_pages(p, op, stats)
    else:
        await _user_op(p, op, me, births, threads)


async def _user_op(p: UserProcess, op: Op, me: str, births: Births | None,
                   threads: Threads | None) -> None:
    """A user thread's own system call (or access) on its process ``p``, as thread ``me``."""
    name = op[0]
    if name == "write":
        await syscalls.user_access(p, op[2], True, op[3])
    elif name == "read":
        await syscalls.user_access(p, op[2], False)
    elif name == "fork":
        if op[2] not in W().processes:
            await syscalls.sys_fork(p, op[2], (threads or {}).get(op[2], (me,)))
        if births:
            _born(births, op[2])
    elif name == "exit":
        await syscalls.sys_exit(p, me)
    elif name == "munmap":
        await syscalls.sys_munmap(p, op[2], _length(op), layout_spec.syscall_hook(op))
    elif name == "mlock":
        await syscalls.sys_mlock(p, op[2], True, _length(op), layout_spec.syscall_hook(op))
    elif name == "munlock":
        await syscalls.sys_mlock(p, op[2], False, _length(op), layout_spec.syscall_hook(op))
    elif name == "mprotect":
        await syscalls.sys_mprotect(p, op[2], op[3], PROT_READ | (PROT_WRITE if op[4] else 0),
                                    spec=layout_spec.syscall_hook(op))
    elif name == "mremap":
        await syscalls.sys_mremap(p, op[2], op[3], op[4], op[5],
                                  spec=layout_spec.syscall_hook(op))
    elif name == "pin":
        if await syscalls.pin(p, op[2], me, layout_spec.pin_hook(op)):
            await syscalls.dma_write(p, op[2], op[3], thread=me)
            await syscalls.unpin(p, op[2], me)
    else:  # validate() rejects unknown ops before a run
        raise ScenarioError(f"unknown operation {name!r}")


async def _migrate(p: UserProcess, op: Op, stats: MigrationStats | None) -> None:
    """sys_migrate_pages(pid, source, dest, move_all), counting what moved into ``stats``."""
    mm = p.mm
    before = _on_node(mm, op[2]) if stats is not None and mm is not None else set()
    await syscalls.sys_migrate_pages(p, op[2], op[3], bool(op[4]))
    if stats is not None and mm is not None and before and op[2] != op[3]:
        stats.attempted += len(before)
        stats.moved += len(before & _on_node(mm, op[3]))


async def _move_pages(p: UserProcess, op: Op, stats: MigrationStats | None) -> None:
    """move_pages of one page, its status checked against what the page did (the spec)."""
    # The spec reads the pte before and after the call, past a point (touch: DPOR orders
    # those reads; the stats' page-table reads in _migrate change no outcome, so they are
    # not recorded).
    touch(p.mm, READ, op[2])
    identity = layout_spec.mapped_page(p.mm, op[2])
    status = await syscalls.move_pages(p, op[2], op[3], bool(op[4]))
    touch(p.mm, READ, op[2])
    layout_spec.check_move_pages(op, status, identity, layout_spec.mapped_page(p.mm, op[2]))
    if HOOKS.tracer is not None and status is not None:
        # the status array, in the timeline of a finding (repro, the nightly report)
        trace("op", op=f"move_pages status[0] = {status_name(status)}")
    if stats is not None and status is not None:
        key = status_name(status)
        stats.move_pages[key] = stats.move_pages.get(key, 0) + 1


def _born(births: Births, pid: int) -> None:
    bit = births.get(pid)
    if bit is not None and bit.is_set:
        touch(PROCESS_TABLE, WRITE)
        bit.clear()


def program(ops: Sequence[Op], births: Births, stats: MigrationStats | None = None,
            thread: str | None = None, threads: Threads | None = None,
            ) -> Callable[[], Coroutine[Any, Any, None]]:
    """The body of the task that runs ``ops`` as user thread ``thread``."""

    async def body() -> None:
        for op in ops:
            await run_op(op, births, stats, thread, threads)
        # A fork this thread did not get to (its process exited first) never happens.
        for op in ops:
            if op[0] == "fork":
                _born(births, op[2])

    return body


def setup_program(sc: Scenario) -> Callable[[], Coroutine[Any, Any, None]]:
    """The prefault stores, run alone before the concurrent phase."""

    async def body() -> None:
        for spec in sc.processes:
            p = _process(spec.pid)
            assert p is not None
            for addr, value in spec.prefault:
                await syscalls.user_access(p, addr, True, value)

    return body


def readback_program() -> Callable[[], Coroutine[Any, Any, None]]:
    """After the run: every live process reads back every value it expects (I10)."""

    async def body() -> None:
        for pid in sorted(W().processes):
            p = _process(pid)
            if p is None or p.mm is None:
                continue
            for addr in sorted(p.expected):
                got = await syscalls.user_access(p, addr, False)
                # A read of mapped memory only fails for OOM; with a free page on every node
                # there is none, and a read that silently fails would skip the I10 check.
                w = W()
                if got is None and p.mm is not None and all(z.free_list for z in w.zones):
                    raise KernelFinding(
                        "no-progress",
                        f"process {pid} cannot read back address {addr} with free memory "
                        "on every node", {"pid": pid, "addr": addr}, function="readback")

    return body
