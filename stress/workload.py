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

import json
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from target.kernel import HOOKS, KernelFinding, WaitBit, preempt, trace
from target.mm import syscalls
from target.mm.mprotect import PROT_READ, PROT_WRITE
from target.mm.syscalls import UserProcess
from target.mm.types import (
    VM_LOCKED,
    VM_MAYWRITE,
    VM_READ,
    VM_WRITE,
    MmStruct,
    PresentPte,
    VmArea,
)
from target.mm.world import W, World, WorldConfig

Op = tuple[Any, ...]

# name -> (argument names, whether argument 0 is a pid whose user thread the op runs on).
# Arguments named in OPTIONAL_ARGS may be left off the end: munmap/mlock/munlock without a
# length act on the whole vma containing the address (the form of the first scenario files).
OPS: dict[str, tuple[tuple[str, ...], bool]] = {
    "write": (("pid", "addr", "value"), True),
    "read": (("pid", "addr"), True),
    "fork": (("pid", "child"), True),
    "exit": (("pid",), True),
    "munmap": (("pid", "addr", "len"), True),
    "mlock": (("pid", "addr", "len"), True),
    "munlock": (("pid", "addr", "len"), True),
    "mprotect": (("pid", "addr", "len", "writable"), True),
    # new_addr < 0: MREMAP_MAYMOVE alone (in place if possible); else MREMAP_FIXED there
    "mremap": (("pid", "addr", "old_len", "new_len", "new_addr"), True),
    "pin": (("pid", "addr", "value"), True),  # get_user_pages, DMA write, put_page
    "migrate": (("pid", "source", "dest", "move_all"), False),
    "move_pages": (("pid", "addr", "node", "move_all"), False),  # one page, by any task
    "swapout": (("nid",), False),
    "swapoff": ((), False),  # swapoff of the swap area, then swapon again
}
OPTIONAL_ARGS = frozenset({"len"})


class ScenarioError(ValueError):
    """A scenario that is not well formed (bad op, unknown pid, two threads for one pid)."""


@dataclass
class VmaSpec:
    start: int
    end: int
    writable: bool = True


@dataclass
class ProcessSpec:
    pid: int
    vmas: list[VmaSpec]
    prefault: list[tuple[int, int]] = field(default_factory=list)  # (addr, value) stores


@dataclass
class TaskSpec:
    name: str
    ops: list[Op]


@dataclass
class Scenario:
    """World + initial processes + one op program per task."""

    world: WorldConfig
    processes: list[ProcessSpec]
    tasks: list[TaskSpec]
    name: str = "generated"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = [{"name": t.name, "ops": [list(op) for op in t.ops]} for t in self.tasks]
        d["processes"] = [
            {"pid": p.pid, "vmas": [asdict(v) for v in p.vmas],
             "prefault": [list(x) for x in p.prefault]} for p in self.processes
        ]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Scenario:
        try:
            sc = cls(
                world=WorldConfig(**d["world"]),
                processes=[
                    ProcessSpec(
                        int(p["pid"]),
                        [VmaSpec(int(v["start"]), int(v["end"]), bool(v.get("writable", True)))
                         for v in p["vmas"]],
                        [(int(a), int(v)) for a, v in p.get("prefault", [])],
                    )
                    for p in d["processes"]
                ],
                tasks=[TaskSpec(str(t["name"]), [tuple(op) for op in t["ops"]])
                       for t in d["tasks"]],
                name=str(d.get("name", "generated")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ScenarioError(f"malformed scenario: {exc!r}") from None
        validate(sc)
        return sc

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    def size(self) -> tuple[int, int]:
        """(tasks, operations): what minimisation shrinks."""
        return len(self.tasks), sum(len(t.ops) for t in self.tasks)


def validate(sc: Scenario) -> None:
    """Reject malformed scenarios with a message naming the problem."""
    if not sc.tasks:
        raise ScenarioError("scenario has no tasks")
    if sc.world.nodes < 1 or sc.world.pages_per_node < 1:
        raise ScenarioError("world needs at least one node with one page")
    pids = {p.pid for p in sc.processes}
    owner: dict[int, str] = {}
    for t in sc.tasks:
        for op in t.ops:
            if not op or op[0] not in OPS:
                raise ScenarioError(f"task {t.name}: unknown operation {op!r}; "
                                    f"known: {', '.join(OPS)}")
            args, per_process = OPS[op[0]]
            required = len([a for a in args if a not in OPTIONAL_ARGS])
            if not required + 1 <= len(op) <= len(args) + 1:
                raise ScenarioError(f"task {t.name}: {op[0]} takes {', '.join(args)}: {op!r}")
            if not all(isinstance(a, int) for a in op[1:]):
                raise ScenarioError(f"task {t.name}: arguments must be integers: {op!r}")
            if op[0] == "fork":
                if op[2] in pids:
                    raise ScenarioError(f"task {t.name}: pid {op[2]} exists or is forked twice")
                pids.add(op[2])
            if per_process:
                prev = owner.setdefault(op[1], t.name)
                if prev != t.name:
                    raise ScenarioError(
                        f"process {op[1]} has operations in two tasks ({prev}, {t.name}); "
                        "each process has one user thread")
            if op[0] in ("migrate",) and not (0 <= op[2] < sc.world.nodes
                                              and 0 <= op[3] < sc.world.nodes):
                raise ScenarioError(f"task {t.name}: no such node in {op!r}")
            if op[0] == "move_pages" and not 0 <= op[3] < sc.world.nodes:
                raise ScenarioError(f"task {t.name}: no such node in {op!r}")
            if op[0] == "swapout" and not 0 <= op[1] < sc.world.nodes:
                raise ScenarioError(f"task {t.name}: no such node in {op!r}")
    for t in sc.tasks:
        for op in t.ops:
            if OPS[op[0]][1] or op[0] in ("migrate", "move_pages"):
                if op[1] not in pids:
                    raise ScenarioError(f"task {t.name}: no process {op[1]} in {op!r}")


# -- building and running ----------------------------------------------------------------------


def build_world(sc: Scenario) -> tuple[World, dict[int, UserProcess]]:
    """A fresh world with the scenario's processes and vmas (no pages yet)."""
    world = World.create(sc.world)
    procs: dict[int, UserProcess] = {}
    for spec in sc.processes:
        mm = MmStruct(f"mm{spec.pid}")
        for v in spec.vmas:
            flags = VM_READ | VM_MAYWRITE | (VM_WRITE if v.writable else 0)
            mm.mmap.append(VmArea(mm, v.start, v.end, flags))
        mm.mmap.sort(key=lambda vma: vma.vm_start)
        p = UserProcess(spec.pid, mm)
        procs[spec.pid] = p
        world.processes[spec.pid] = p
    return world, procs


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

    __slots__ = ("attempted", "moved")

    def __init__(self) -> None:
        self.attempted = 0
        self.moved = 0


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
                 stats: MigrationStats | None = None) -> None:
    """Execute one operation; a process that is gone makes it a no-op.

    Entering a system call is a scheduling point, so that even an operation that turns out
    to be a no-op takes a step and lets others run.
    """
    await preempt()
    if HOOKS.tracer is not None:  # the timeline's operation rows
        trace("op", op=" ".join(str(x) for x in op))
    name = op[0]
    if name == "swapout":
        await syscalls.kswapd_reclaim(op[1])
        return
    if name == "swapoff":
        await syscalls.swapoff()
        return
    unborn = births.get(op[1]) if births else None
    if unborn is not None and unborn.is_set:
        await unborn.wait_clear()
    p = _process(op[1])
    if p is None:
        return
    if name == "write":
        await syscalls.user_access(p, op[2], True, op[3])
    elif name == "read":
        await syscalls.user_access(p, op[2], False)
    elif name == "fork":
        if op[2] not in W().processes:
            await syscalls.sys_fork(p, op[2])
        if births:
            _born(births, op[2])
    elif name == "exit":
        await syscalls.sys_exit(p)
    elif name == "munmap":
        await syscalls.sys_munmap(p, op[2], *op[3:])
    elif name == "mlock":
        await syscalls.sys_mlock(p, op[2], True, *op[3:])
    elif name == "munlock":
        await syscalls.sys_mlock(p, op[2], False, *op[3:])
    elif name == "mprotect":
        await syscalls.sys_mprotect(p, op[2], op[3], PROT_READ | (PROT_WRITE if op[4] else 0))
    elif name == "mremap":
        await syscalls.sys_mremap(p, op[2], op[3], op[4], op[5])
    elif name == "pin":
        if await syscalls.pin(p, op[2]):
            await syscalls.dma_write(p, op[2], op[3])
            await syscalls.unpin(p, op[2])
    elif name == "migrate":
        mm = p.mm
        before = _on_node(mm, op[2]) if stats is not None and mm is not None else set()
        await syscalls.sys_migrate_pages(p, op[2], op[3], bool(op[4]))
        if stats is not None and mm is not None and before and op[2] != op[3]:
            stats.attempted += len(before)
            stats.moved += len(before & _on_node(mm, op[3]))
    elif name == "move_pages":
        await syscalls.move_pages(p, op[2], op[3], bool(op[4]))
    else:  # validate() rejects unknown ops before a run
        raise ScenarioError(f"unknown operation {name!r}")


def _born(births: Births, pid: int) -> None:
    bit = births.get(pid)
    if bit is not None and bit.is_set:
        bit.clear()


def program(ops: Sequence[Op], births: Births, stats: MigrationStats | None = None
            ) -> Callable[[], Coroutine[Any, Any, None]]:
    async def body() -> None:
        for op in ops:
            await run_op(op, births, stats)
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
