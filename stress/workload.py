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
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from target.kernel import HOOKS, KernelFinding, WaitBit, preempt, trace
from target.mm import syscalls
from target.mm.mprotect import PROT_READ, PROT_WRITE
from target.mm.swap import PAGEVEC_SIZE
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
from target.mm.world import IO_DELAY_UNBOUNDED, W, World, WorldConfig

from . import spec as layout_spec

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


# -- the schema: exact types and bounds, in one place -------------------------------------------
#
# A scenario arrives from files we did not write (finding files, `minimize` inputs, fuzzers'
# artifacts), so every size it can set is bounded: the model walks ranges of addresses and
# pages, and a world of 1e9 pages or a vma ending at 1e12 hangs or exhausts memory instead of
# failing. The bounds are generous multiples of what the generator, the fuzz decoder and the
# canonical scenarios use (2 nodes of <= 16 pages, <= 4 tasks of <= 12 ops, addresses < 48);
# corpus/README.md lists them. Types are exact (pydantic strict mode): "1", 1.9 and true are
# not pids, and an unknown key is an error, not a typo silently falling back to a default.

MAX_NODES = 8
MAX_PAGES_PER_NODE = 256
MAX_SWAP_SLOTS = 256
MAX_TLB_BATCH = 64  # FREE_PTE_NR is 506; the model's address space has 64 pages
MAX_ADDR = 1024  # pages; 16 x TASK_SIZE, so wild accesses beyond the user space stay expressible
MAX_PID = 1024
MAX_PROCESSES = 32
MAX_VMAS = 32
MAX_TASKS = 8
MAX_OPS = 64  # per task
MAX_VALUE = 2**31 - 1  # a stored value is one machine word of data
MAX_NAME = 64  # characters of a task or scenario name

# Bounds of each op argument, by the argument names of OPS.
ARG_RANGE: dict[str, tuple[int, int]] = {
    "pid": (0, MAX_PID), "child": (0, MAX_PID), "addr": (0, MAX_ADDR),
    "value": (-MAX_VALUE - 1, MAX_VALUE), "len": (1, MAX_ADDR), "writable": (0, 1),
    "old_len": (1, MAX_ADDR), "new_len": (1, MAX_ADDR), "new_addr": (-1, MAX_ADDR),
    "source": (0, MAX_NODES - 1), "dest": (0, MAX_NODES - 1), "move_all": (0, 1),
    "nid": (0, MAX_NODES - 1), "node": (0, MAX_NODES - 1),
}

_NAME = Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=r"^[ -~]+$")]
"""A printable-ASCII name: it is shown in tables and timelines, never used in a path."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _World(_Strict):
    nodes: Annotated[int, Field(ge=1, le=MAX_NODES)] = 2
    pages_per_node: Annotated[int, Field(ge=1, le=MAX_PAGES_PER_NODE)] = 12
    swap_slots: Annotated[int, Field(ge=0, le=MAX_SWAP_SLOTS)] = 8
    config_swap: bool = True
    config_highpte: bool = False
    anon_vma_reuse: Literal["never", "lifo", "seeded"] = "never"
    slab_seed: Annotated[int, Field(ge=0, le=MAX_VALUE)] = 0
    swap_io_delay: Annotated[int, Field(ge=0, le=IO_DELAY_UNBOUNDED)] = 0
    # Laziness (issue 14); absent in older files: 0, the prompt world they were found in.
    pagevec_size: Annotated[int, Field(ge=0, le=PAGEVEC_SIZE)] = 0
    tlb_batch: Annotated[int, Field(ge=0, le=MAX_TLB_BATCH)] = 0


LATER_WORLD_OPTIONS: dict[str, object] = {"anon_vma_reuse": "never", "slab_seed": 0,
                                          "swap_io_delay": 0, "pagevec_size": 0,
                                          "tlb_batch": 0}
"""World options with their default, which a scenario file written before them lacks."""


class _Vma(_Strict):
    start: Annotated[int, Field(ge=0, le=MAX_ADDR)]
    end: Annotated[int, Field(ge=1, le=MAX_ADDR)]
    writable: bool = True

    @field_validator("end")
    @classmethod
    def _nonempty(cls, end: int, info: Any) -> int:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError(f"a vma must end after its start ({start})")
        return end


class _Process(_Strict):
    pid: Annotated[int, Field(ge=0, le=MAX_PID)]
    vmas: Annotated[list[_Vma], Field(max_length=MAX_VMAS)]
    # [addr, value] pairs (JSON has no tuples)
    prefault: Annotated[list[Annotated[list[int], Field(min_length=2, max_length=2)]],
                        Field(max_length=MAX_ADDR)] = []

    @field_validator("prefault")
    @classmethod
    def _stores(cls, prefault: list[list[int]]) -> list[list[int]]:
        for i, (addr, value) in enumerate(prefault):
            for name, v in (("addr", addr), ("value", value)):
                lo, hi = ARG_RANGE[name]
                if not lo <= v <= hi:
                    raise ValueError(f"store {i}: {name} = {v} is outside [{lo}, {hi}]")
        return prefault


class _Task(_Strict):
    name: _NAME
    # Checked by _op_problem: an op is a name and integers, each within its argument's range.
    ops: Annotated[list[list[Any]], Field(max_length=MAX_OPS)]

    @field_validator("ops")
    @classmethod
    def _ops(cls, ops: list[list[Any]]) -> list[list[Any]]:
        for i, op in enumerate(ops):
            problem = _op_problem(op)
            if problem:
                raise ValueError(f"op {i} {op!r}: {problem}")
        return ops


class _Scenario(_Strict):
    world: _World
    processes: Annotated[list[_Process], Field(max_length=MAX_PROCESSES)]
    tasks: Annotated[list[_Task], Field(min_length=1, max_length=MAX_TASKS)]
    name: _NAME = "generated"


def _op_problem(op: Sequence[Any]) -> str:
    """Why ``op`` is not an operation of :data:`OPS` within the bounds ("" if it is)."""
    if not op or not isinstance(op[0], str) or op[0] not in OPS:
        return f"unknown operation; known: {', '.join(OPS)}"
    args, _ = OPS[op[0]]
    required = len([a for a in args if a not in OPTIONAL_ARGS])
    if not required + 1 <= len(op) <= len(args) + 1:
        return f"{op[0]} takes {', '.join(args) or 'no arguments'}"
    for name, v in zip(args, op[1:], strict=False):
        if not isinstance(v, int) or isinstance(v, bool):
            return f"argument {name} must be an integer"
        lo, hi = ARG_RANGE[name]
        if not lo <= v <= hi:
            return f"argument {name} = {v} is outside [{lo}, {hi}]"
    return ""


def schema_error(exc: ValidationError, prefix: str = "") -> str:
    """One line naming the first bad field of ``exc``: ``tasks[1].ops: ...``."""
    err = exc.errors(include_url=False)[0]
    where = prefix
    for part in err["loc"]:
        if isinstance(part, int) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,40}", part):
            where += f"[{part!r}]" if len(repr(part)) <= 40 else f"[{repr(part)[:37]}...]"
        else:  # a key the file gave can be anything: only a plain name is shown bare
            where += f".{part}" if where else part
    msg = "missing" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
    got = repr(err.get("input"))
    got = got if len(got) <= 40 else got[:37] + "..."
    return f"field {where or '(top level)'}: {msg}" + (
        "" if err["type"] in ("missing", "value_error") else f" (got {got})")


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
        # World options added after finding files existed are written only when they differ
        # from their default: an older file, written again, stays byte-for-byte what it was
        # (its digest covers the scenario).
        for key, default in LATER_WORLD_OPTIONS.items():
            if d["world"][key] == default:
                del d["world"][key]
        d["tasks"] = [{"name": t.name, "ops": [list(op) for op in t.ops]} for t in self.tasks]
        d["processes"] = [
            {"pid": p.pid, "vmas": [asdict(v) for v in p.vmas],
             "prefault": [list(x) for x in p.prefault]} for p in self.processes
        ]
        return d

    @classmethod
    def from_json(cls, d: Any, where: str = "scenario") -> Scenario:
        """Check ``d`` against the schema (types, bounds) and then :func:`validate`'s rules;
        :class:`ScenarioError` names the first bad field."""
        try:
            m = _Scenario.model_validate(d)
        except ValidationError as exc:
            raise ScenarioError(schema_error(exc, where)) from None
        sc = cls(
            world=WorldConfig(**m.world.model_dump()),
            processes=[ProcessSpec(p.pid, [VmaSpec(v.start, v.end, v.writable) for v in p.vmas],
                                   [(a, v) for a, v in p.prefault]) for p in m.processes],
            tasks=[TaskSpec(t.name, [tuple(op) for op in t.ops]) for t in m.tasks],
            name=m.name,
        )
        _validate_rules(sc)
        return sc

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    def size(self) -> tuple[int, int]:
        """(tasks, operations): what minimisation shrinks."""
        return len(self.tasks), sum(len(t.ops) for t in self.tasks)


def expand_loops(ops: Any, where: str) -> Any:
    """A scenario file's op list with its loops unrolled: ``{"repeat": N, "ops": [...]}``
    stands for its ops N times over (nested loops allowed), so a reader can spin on a page
    while another thread migrates it. Anything else is passed through for the schema to
    judge; the unrolled program is what runs and what a finding file records."""
    if not isinstance(ops, list):
        return ops
    out: list[Any] = []
    for i, op in enumerate(ops):
        if isinstance(op, dict):
            n, body = op.get("repeat"), op.get("ops")
            if set(op) != {"repeat", "ops"} or type(n) is not int or not 1 <= n <= MAX_OPS:
                raise ScenarioError(
                    f"field {where}.ops[{i}]: a loop is {{\"repeat\": N, \"ops\": [...]}} "
                    f"with 1 <= N <= {MAX_OPS}")
            inner = expand_loops(body, f"{where}.ops[{i}]")
            if not isinstance(inner, list):
                raise ScenarioError(f"field {where}.ops[{i}].ops: a list of operations")
            out += inner * n
            if len(out) > MAX_OPS:
                raise ScenarioError(f"field {where}.ops: more than {MAX_OPS} operations "
                                    "once its loops are unrolled")
        else:
            out.append(op)
    return out


def load_scenario_file(path: str) -> Scenario:
    """A user's scenario file (JSON, the finding files' ``scenario`` form plus loops).

    Raises:
        ScenarioError: naming the file and the first bad field, or why it cannot be read.
    """
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ScenarioError(f"{path}: not a readable JSON scenario file: "
                            f"{type(exc).__name__}: {exc}"[:300]) from None
    if isinstance(d, dict) and isinstance(d.get("tasks"), list):
        d = dict(d, tasks=[
            dict(t, ops=expand_loops(t.get("ops"), f"{path}: field scenario.tasks[{i}]"))
            if isinstance(t, dict) else t for i, t in enumerate(d["tasks"])])
    try:
        return Scenario.from_json(d, f"{path}: scenario")
    except ScenarioError as exc:
        msg = str(exc)
        raise ScenarioError(msg if msg.startswith(path) else f"{path}: {msg}") from None


def validate(sc: Scenario) -> None:
    """Reject malformed scenarios with a message naming the problem: the schema's types and
    bounds (the same check as a file gets), then the rules between fields."""
    try:
        _Scenario.model_validate(sc.to_json())
    except ValidationError as exc:
        raise ScenarioError(schema_error(exc, "scenario")) from None
    _validate_rules(sc)


def _validate_rules(sc: Scenario) -> None:
    """What the schema cannot say field by field: pids, threads, nodes of this world."""
    pids: set[int] = set()
    for p in sc.processes:
        if p.pid in pids:
            raise ScenarioError(f"field scenario.processes: pid {p.pid} appears twice")
        pids.add(p.pid)
    names: set[str] = set()
    for i, t in enumerate(sc.tasks):
        where = f"field scenario.tasks[{i}] ({t.name})"
        # A task is a thread of every process it operates on: its name is the thread's.
        if t.name in names:
            raise ScenarioError(f"{where}: two tasks are named {t.name!r}")
        names.add(t.name)
        for op in t.ops:
            if op[0] == "fork":
                if op[2] in pids:
                    raise ScenarioError(f"{where}: pid {op[2]} exists or is forked twice")
                pids.add(op[2])
            if op[0] in ("migrate",) and not (0 <= op[2] < sc.world.nodes
                                              and 0 <= op[3] < sc.world.nodes):
                raise ScenarioError(f"{where}: no such node in {op!r}")
            if op[0] == "move_pages" and not 0 <= op[3] < sc.world.nodes:
                raise ScenarioError(f"{where}: no such node in {op!r}")
            if op[0] == "swapout" and not 0 <= op[1] < sc.world.nodes:
                raise ScenarioError(f"{where}: no such node in {op!r}")
    for i, t in enumerate(sc.tasks):
        for op in t.ops:
            if OPS[op[0]][1] or op[0] in ("migrate", "move_pages"):
                if op[1] not in pids:
                    raise ScenarioError(f"field scenario.tasks[{i}] ({t.name}): no process "
                                        f"{op[1]} in {op!r}")


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
    elif name == "migrate":
        mm = p.mm
        before = _on_node(mm, op[2]) if stats is not None and mm is not None else set()
        await syscalls.sys_migrate_pages(p, op[2], op[3], bool(op[4]))
        if stats is not None and mm is not None and before and op[2] != op[3]:
            stats.attempted += len(before)
            stats.moved += len(before & _on_node(mm, op[3]))
    elif name == "move_pages":
        identity = layout_spec.mapped_page(p.mm, op[2])
        status = await syscalls.move_pages(p, op[2], op[3], bool(op[4]))
        layout_spec.check_move_pages(op, status, identity, layout_spec.mapped_page(p.mm, op[2]))
        if HOOKS.tracer is not None and status is not None:
            # the status array, in the timeline of a finding (repro, the nightly report)
            trace("op", op=f"move_pages status[0] = {status_name(status)}")
        if stats is not None and status is not None:
            key = status_name(status)
            stats.move_pages[key] = stats.move_pages.get(key, 0) + 1
    else:  # validate() rejects unknown ops before a run
        raise ScenarioError(f"unknown operation {name!r}")


def _born(births: Births, pid: int) -> None:
    bit = births.get(pid)
    if bit is not None and bit.is_set:
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
