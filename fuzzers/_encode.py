"""The inverse of the shared decoder (fuzzers/_ops.py): a scenario -> input bytes.

``encode_scenario(sc)`` gives bytes that :func:`fuzzers._ops.decode` maps back to ``sc``, up
to names (the decoder names the scenario ``fuzz`` and its tasks ``p1``, ``p1.t1``,
``migrator``, ``kswapd``...: names are labels, the bytes cannot carry them). That is how a
user's scenario file seeds the fuzz corpus (``migfuzz fuzz --scenario FILE``) and how the
committed seeds that use the extension byte are generated (fuzzers/seeds.py): libFuzzer then
mutates from a scenario someone meant, not from bytes someone typed.

The decoder cannot express every scenario (two nodes, vmas at fixed places, stored values
from a counter, a fixed order of task roles): :class:`NotExpressible` names the first field
it cannot express and why. Whatever it does express round-trips exactly
(tests/test_fuzz_encode.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stress.workload import OPS, Op, ProcessSpec, Scenario, TaskSpec, VmaSpec

from ._ops import MREMAP_TARGETS, USER_KINDS, VMA_KINDS, decode

MIGRATOR_KINDS = ("migrate", "move_pages")
VALUE_BASE = 1000  # the decoder's store counter starts here (stored values are not input)


class NotExpressible(ValueError):
    """The decoder cannot produce this scenario; ``field`` is the first part it cannot."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field scenario.{field}: {reason}")
        self.field = field
        self.reason = reason


def encode_scenario(sc: Scenario, schedule: bytes = b"") -> bytes:
    """Input bytes of the fuzz_scenario / fuzz_sequential targets that decode to ``sc`` (up to
    names), followed by ``schedule`` (one byte per scheduling decision).

    Raises:
        NotExpressible: naming the first field of ``sc`` the decoder cannot produce.
    """
    try:
        data = _Writer(sc, vma_ops=False).encode()
    except NotExpressible:
        # bit 5 of the flags widens the kinds and addresses: the wider writer expresses
        # everything the narrow one does, so its error is the one to report
        data = _Writer(sc, vma_ops=True).encode()
    decoded, _ = decode(data)
    # our invariant, not the user's input: a writer that disagrees with the decoder is a bug
    assert unnamed(decoded) == unnamed(sc), (unnamed(decoded), unnamed(sc))
    return data + schedule


def unnamed(sc: Scenario) -> dict[str, Any]:
    """``sc`` as plain data without its names: what the bytes carry."""
    d = sc.to_json()
    d.pop("name")
    d["tasks"] = [t["ops"] for t in d["tasks"]]
    return d


def _is_user(t: TaskSpec, pid: int | None = None) -> bool:
    """Whether every op of ``t`` is a user-thread op of one process (``pid`` if given)."""
    pids = {op[1] for op in t.ops if OPS[op[0]][1]}
    return (bool(t.ops) and all(OPS[op[0]][1] for op in t.ops) and len(pids) == 1
            and (pid is None or pids == {pid}))


def _is_migrator(t: TaskSpec) -> bool:
    return bool(t.ops) and all(op[0] in MIGRATOR_KINDS for op in t.ops)


class _Writer:
    """Writes the bytes field by field in the decoder's order, checking each value."""

    def __init__(self, sc: Scenario, *, vma_ops: bool) -> None:
        self.sc = sc
        self.vma_ops = vma_ops
        self.out = bytearray()
        self.counter = VALUE_BASE
        self.pos = 0  # next scenario task to place

    def byte(self, value: int) -> None:
        assert 0 <= value < 256
        self.out.append(value)

    def encode(self) -> bytes:
        sc, w = self.sc, self.sc.world
        if w.nodes != 2:
            raise NotExpressible("world.nodes", f"the fuzz decoder makes 2 nodes, not {w.nodes}")
        if w.swap_slots != (4 if w.config_swap else 0):
            raise NotExpressible("world.swap_slots", "the fuzz decoder makes 4 slots with "
                                 "CONFIG_SWAP, 0 without")
        if [p.pid for p in sc.processes] not in ([1], [1, 2]):
            raise NotExpressible("processes", "the fuzz decoder makes process 1, or 1 and 2 "
                                 "(forked children take pids 10, 11, 12)")
        mapped = sum(v.end - v.start for p in sc.processes for v in p.vmas)
        extra, rem = divmod(w.pages_per_node - 2 * mapped - 2, 4)
        if rem or not 0 <= extra <= 3:
            raise NotExpressible("world.pages_per_node", f"the fuzz decoder makes 2 x mapped "
                                 f"pages + 2 + 4k (k 0..3) = {2 * mapped + 2}, "
                                 f"{2 * mapped + 6}, {2 * mapped + 10} or {2 * mapped + 14}")
        for option, default in (("anon_vma_reuse", "never"), ("slab_seed", 0),
                                ("swap_io_delay", 0), ("page_cluster", 0)):
            if getattr(w, option) != default:
                raise NotExpressible(f"world.{option}", f"the fuzz decoder makes only "
                                     f"{default!r} (the swarm generator draws the others)")
        if w.pagevec_size not in (0, 3):
            raise NotExpressible("world.pagevec_size", "the fuzz decoder makes 0 or 3")
        if w.tlb_batch not in (0, 2):
            raise NotExpressible("world.tlb_batch", "the fuzz decoder makes 0 or 2")
        lazy = (w.pagevec_size == 3) << 6 | (w.tlb_batch == 2) << 7
        tasks = sc.tasks
        kswapd = bool(tasks) and all(op[0] in ("swapout", "swapoff") for op in tasks[-1].ops)
        swapoff = kswapd and tasks[-1].ops[-1] == ("swapoff",)
        if kswapd and not w.config_swap:
            raise NotExpressible(f"tasks[{len(tasks) - 1}]", "the fuzz decoder makes kswapd "
                                 "only with CONFIG_SWAP")
        self.byte(w.config_swap | (len(sc.processes) == 2) << 1 | kswapd << 2 | extra << 3
                  | self.vma_ops << 5 | w.config_highpte << 6 | swapoff << 7)
        # the extension byte: move_pages, a second migrator, or threads after the migrator
        first = next((k for k, t in enumerate(tasks) if _is_migrator(t)), len(tasks))
        extended = bool(lazy) or any(op[0] == "move_pages" for t in tasks for op in t.ops) or any(
            _is_migrator(t) or _is_user(t) for t in tasks[first + 1:])
        for i, p in enumerate(sc.processes):
            self.process(i, p, extended and i == 0)

        self.user_threads()
        if self.pos >= len(tasks) or not _is_migrator(tasks[self.pos]):
            raise NotExpressible(f"tasks[{self.pos}]", "the fuzz decoder makes user threads "
                                 "(p1, p2, forked children), then a migrator (migrate / "
                                 "move_pages, 1-3 ops), sibling threads, a second migrator, "
                                 "kswapd, in that order")
        migrator = self.pos
        self.pos += 1
        with_move_pages = any(op[0] == "move_pages" for t in tasks if _is_migrator(t)
                              for op in t.ops)
        siblings = self.sibling_counts()
        second = self.pos + sum(siblings)
        has_second = second < len(tasks) and _is_migrator(tasks[second])
        ext = has_second | with_move_pages << 1 | siblings[0] << 2 | siblings[1] << 4 | lazy
        if extended and with_move_pages:
            self.byte(0)  # the first reading of the migrator (count 1, op 0), read again
            self.byte(0)
            self.byte(0)
            self.byte(0)
            self.byte(ext)
            self.migrator(migrator, True)
        else:
            self.migrator(migrator, False)
            if extended:
                self.byte(ext)
        for i, n in enumerate(siblings):
            for _ in range(n):
                self.user_ops(self.pos, 4, 1, sc.processes[i].pid, sc.processes[i].vmas)
                self.pos += 1
        if has_second:
            self.migrator(self.pos, with_move_pages)
            self.pos += 1
        if kswapd and self.pos == len(tasks) - 1:
            self.kswapd(self.pos, swapoff)
            self.pos += 1
        if self.pos < len(tasks):
            raise NotExpressible(f"tasks[{self.pos}]", "the fuzz decoder makes user threads, "
                                 "a migrator, sibling threads (at most 2 per process, no "
                                 "fork), a second migrator and kswapd, in that order")
        return bytes(self.out)

    def process(self, i: int, p: ProcessSpec, extended: bool) -> None:
        base = 8 * i
        where = f"processes[{i}].vmas"
        v = p.vmas
        if not v or v[0].start != base or not 1 <= v[0].end - base <= 4:
            raise NotExpressible(where, f"the fuzz decoder's first vma of process {p.pid} "
                                 f"starts at {base} and is 1-4 pages long")
        if len(v) > 2 or (len(v) == 2 and (v[1].start != base + 4
                                            or not 1 <= v[1].end - v[1].start <= 2)):
            raise NotExpressible(where, f"the fuzz decoder's second vma of process {p.pid} "
                                 f"starts at {base + 4} and is 1-2 pages long")
        if not all(x.writable for x in v):
            raise NotExpressible(where, "the fuzz decoder's vmas are writable")
        self.byte(v[0].end - base - 1)
        self.byte(v[1].end - v[1].start if len(v) == 2 else 0)
        addrs = [a for x in v for a in range(x.start, x.end)]
        mask = 0
        for a, value in p.prefault:
            if a not in addrs or value != 10 + a:
                raise NotExpressible(f"processes[{i}].prefault", "the fuzz decoder prefaults "
                                     "mapped addresses a with the value 10 + a")
            mask |= 1 << addrs.index(a)
        if sorted(p.prefault) != list(p.prefault):
            raise NotExpressible(f"processes[{i}].prefault", "the fuzz decoder prefaults in "
                                 "address order")
        self.byte(mask | extended << 7)

    def user_threads(self) -> None:
        """The decoder's queue: processes 1 (and 2), then forked children, one thread each
        (0-6 ops), until five tasks."""
        tasks = self.sc.tasks
        queue: list[tuple[int, list[VmaSpec]]] = [(p.pid, p.vmas) for p in self.sc.processes]
        next_pid = 10
        made = 0
        while queue and made < 5:
            pid, vmas = queue.pop(0)
            if self.pos < len(tasks) and _is_user(tasks[self.pos], pid):
                first = next_pid
                for op in tasks[self.pos].ops:
                    if op[0] == "fork":
                        if op[2] != next_pid or next_pid > 12:
                            raise NotExpressible(
                                f"tasks[{self.pos}].ops", "the fuzz decoder's forks make "
                                f"pids 10, 11, 12 in order (here {next_pid} next)")
                        queue.append((next_pid, vmas))
                        next_pid += 1
                self.user_ops(self.pos, 6, 0, pid, vmas, next_pid=first)
                self.pos += 1
                made += 1
            else:
                self.byte(0)  # no ops: the decoder makes no task for this process

    def user_ops(self, ti: int, most: int, least: int, pid: int, vmas: list[VmaSpec], *,
                 next_pid: int | None = None) -> None:
        """One thread's ops; ``next_pid`` (the main thread of a process, which may fork):
        the pid its first fork takes."""
        ops = self.sc.tasks[ti].ops
        count_at = len(self.out)
        self.byte(0)  # the op count, known at the end
        kinds: tuple[str, ...] = USER_KINDS + VMA_KINDS if self.vma_ops else USER_KINDS
        if next_pid is None:
            kinds = tuple(k for k in kinds if k != "fork")
        addrs = [a for v in vmas for a in range(v.start, v.end)]
        if self.vma_ops:
            addrs += [40 + vmas[0].start + k for k in range(3)]
        n = 0
        for j, op in enumerate(ops):
            if next_pid is not None and op[0] == "fork":
                next_pid += 1
            elif (next_pid is not None and next_pid > 12 and op[0] in ("write", "pin")
                  and op[3] > self.counter + 1):
                # the decoder drops a fork once pids 10-12 are taken, but counts its value:
                # a value ahead of the counter is such dropped forks before this op
                for _ in range(op[3] - self.counter - 1):
                    self.counter += 1
                    self.byte(kinds.index("fork"))
                    self.byte(0)
                    n += 1
            self.user_op(f"tasks[{ti}].ops[{j}]", op, kinds, addrs, vmas[0].start)
            n += 1
        if not least <= n <= most:
            raise NotExpressible(f"tasks[{ti}].ops", f"the fuzz decoder gives this thread "
                                 f"{least}-{most} operations, not {n}")
        self.out[count_at] = n - least

    def user_op(self, where: str, op: Op, kinds: Sequence[str], addrs: list[int],
                start: int) -> None:
        self.counter += 1
        kind = op[0]
        if kind in ("munmap", "mlock", "munlock") and len(op) == 4:
            kind += "-range"
        if kind not in kinds:
            raise NotExpressible(where, f"the fuzz decoder cannot make {op[0]!r} here "
                                 f"(it makes {', '.join(dict.fromkeys(kinds))})")
        self.byte(kinds.index(kind))
        addr = op[2] if len(op) > 2 and kind != "fork" else addrs[0]
        if addr not in addrs:
            raise NotExpressible(where, f"the fuzz decoder's addresses here are "
                                 f"{', '.join(map(str, addrs))}")
        self.byte(addrs.index(addr))
        if kind in ("write", "pin") and op[3] != self.counter:
            raise NotExpressible(where, f"the fuzz decoder stores {VALUE_BASE} + the number "
                                 f"of the user op (here {self.counter}), not {op[3]}")
        if kind == "mprotect":
            self.small(where, op[3] - 1, 2, "mprotect's length is 1-2 pages")
            self.small(where, op[4], 2, "writable is 0 or 1")
        elif kind == "mremap":
            target = -1 if op[5] == -1 else op[5] - start  # read before the lengths
            if op[5] < -1 or target not in MREMAP_TARGETS or (op[5] >= 0 and target < 0):
                raise NotExpressible(where, f"the fuzz decoder's mremap targets are -1 "
                                     f"(MREMAP_MAYMOVE), {start + 40}, {start + 42}, {start}")
            self.byte(MREMAP_TARGETS.index(target))
            self.small(where, op[3] - 1, 2, "mremap's old length is 1-2 pages")
            self.small(where, op[4] - 1, 3, "mremap's new length is 1-3 pages")
        elif kind.endswith("-range"):
            self.small(where, op[3] - 1, 2, "the length is 1-2 pages")

    def small(self, where: str, value: int, n: int, what: str) -> None:
        if not 0 <= value < n:
            raise NotExpressible(where, f"the fuzz decoder's {what}")
        self.byte(value)

    def sibling_counts(self) -> list[int]:
        """How many sibling threads (user tasks after the migrator) each process has."""
        counts = [0, 0]
        pos = self.pos
        for i, p in enumerate(self.sc.processes):
            while pos < len(self.sc.tasks) and _is_user(self.sc.tasks[pos], p.pid):
                if counts[i] == 2:
                    raise NotExpressible(f"tasks[{pos}]", "the fuzz decoder makes at most 2 "
                                         "sibling threads per process")
                counts[i] += 1
                pos += 1
        return counts

    def migrator(self, ti: int, with_move_pages: bool) -> None:
        ops = self.sc.tasks[ti].ops
        pids = [p.pid for p in self.sc.processes]
        if not 1 <= len(ops) <= 3:
            raise NotExpressible(f"tasks[{ti}].ops", "the fuzz decoder gives a migrator 1-3 "
                                 f"operations, not {len(ops)}")
        self.byte(len(ops) - 1)
        for j, op in enumerate(ops):
            where = f"tasks[{ti}].ops[{j}]"
            if op[1] not in pids:
                raise NotExpressible(where, "the fuzz decoder migrates process 1 or 2")
            p = self.sc.processes[pids.index(op[1])]
            self.byte(pids.index(op[1]))
            if op[0] == "migrate":
                if op[3] != 1 - op[2]:
                    raise NotExpressible(where, "the fuzz decoder migrates node 0 -> 1 or "
                                         "1 -> 0")
                self.byte(op[2])
                self.byte(op[4])
                if with_move_pages:
                    self.byte(1)  # a kind byte not 0 mod 3: migrate
            else:
                self.byte(1 - op[3])
                self.byte(op[4])
                self.byte(0)  # 0 mod 3: move_pages
                addrs = [a for v in p.vmas for a in range(v.start, v.end)]
                if op[2] not in addrs:
                    raise NotExpressible(where, "the fuzz decoder moves a mapped address of "
                                         f"process {op[1]}: {', '.join(map(str, addrs))}")
                self.byte(addrs.index(op[2]))

    def kswapd(self, ti: int, swapoff: bool) -> None:
        ops = self.sc.tasks[ti].ops
        outs = ops[:-1] if swapoff else ops
        if not 1 <= len(outs) <= 3 or any(op[0] != "swapout" for op in outs):
            raise NotExpressible(f"tasks[{ti}].ops", "the fuzz decoder's kswapd swaps out "
                                 "1-3 times, then may swapoff once")
        self.byte(len(outs) - 1)
        for op in outs:
            self.byte(op[1])
