"""Scenarios as data: the operations (:data:`OPS`), the bounds of every field, the pydantic
models that check a scenario file before anything runs it (a bad file is one clear line,
:func:`schema_error`), the :class:`Scenario` dataclasses, loading and validation.
:mod:`stress.workload`, which builds worlds and runs programs from them, is its public face."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from target.mm.swap import PAGEVEC_SIZE
from target.mm.world import IO_DELAY_UNBOUNDED, MAX_PAGE_CLUSTER, WorldConfig

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
    page_cluster: Annotated[int, Field(ge=0, le=MAX_PAGE_CLUSTER)] = 0


LATER_WORLD_OPTIONS: dict[str, object] = {"anon_vma_reuse": "never", "slab_seed": 0,
                                          "swap_io_delay": 0, "pagevec_size": 0,
                                          "tlb_batch": 0, "page_cluster": 0}
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
