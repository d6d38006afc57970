"""The one decoder from fuzzer bytes to (scenario, schedule), shared by every fuzz target.

Total: every byte string decodes to a valid scenario and a schedule; nothing is ever rejected
for being malformed (a short input reads as zeros). Friendly to libFuzzer's mutations: the
scenario is read from the front of the input in small fixed-width fields, so a one-byte
mutation changes one choice, and the schedule is the tail, one byte per scheduling decision
(``stress.schedulers.ByteScheduler``), so appending or flipping bytes there explores
interleavings of the same scenario.

Layout (byte fields, each read as ``byte % n`` for a choice among n):

    0      flags: bit 0 CONFIG_SWAP, bit 1 second process, bit 2 kswapd task,
           bits 3-4 extra free pages per node (x4), bit 5 vma operations (mprotect, mremap
           and page ranges for munmap/mlock/munlock), bit 6 CONFIG_HIGHPTE, bit 7 kswapd
           ends with swapoff
    then per process (1 or 2):
           vma length (1-4 pages), second vma length (0-2), prefault mask (bit i: page i)
    then per process, the user thread: op count (0-6), then per op: kind, address, and for
           fork the child takes the next pid (10, 11, 12); with bit 5 the kinds include
           mprotect (length, writable), mremap (old length, new length, target) and ranged
           munmap/mlock/munlock (length), each extra field one byte
    then migrator: op count (1-3), per op: pid choice, direction, MOVE_ALL bit (and, with
           extension bit 1, a kind byte: 0 mod 3 makes it a move_pages of an address byte)
    then, if bit 7 of the first process's prefault mask is set, one extension byte:
           bit 0 a second migrator (its ops as the first's), bit 1 move_pages among the
           migrators' ops (the first migrator's ops are then read again after this byte),
           bits 2-3 / 4-5 sibling user threads (0-2) of process 1 / 2, each an op count
           (1-4) and ops as a user thread's (no forks), then those threads; bit 6 LRU
           pagevecs of 3 pages, bit 7 an mmu_gather of 2 pages (a lazy world, issue 14)
    then kswapd (if enabled): op count (1-3), per op: node
    rest   the schedule

Forked children get a user thread of their own whose ops are drawn the same way, after their
parent's. Inputs with bits 5-7 clear decode exactly as before those bits existed, and inputs
whose first prefault mask has bit 7 clear exactly as before the extension byte existed (a
mask bit beyond the process's at most six pages was unused). Stored
values are drawn from a counter, not the input, so that a lost write is always a visible
change of value.
"""

from __future__ import annotations

from stress.workload import Op, ProcessSpec, Scenario, TaskSpec, VmaSpec
from target.mm.world import WorldConfig

USER_KINDS = ("write", "read", "write", "read", "fork", "exit", "munmap", "mlock", "munlock",
              "pin")
VMA_KINDS = ("mprotect", "mremap", "munmap-range", "mlock-range", "munlock-range")
MREMAP_TARGETS = (-1, 40, 42, 0)  # MREMAP_MAYMOVE alone, or MREMAP_FIXED there (+ base)


class _Reader:
    """Bytes from the front; zeros past the end (that is what makes decoding total)."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        pos = self.pos
        self.pos = pos + 1
        return self.data[pos] if pos < len(self.data) else 0

    def choice(self, n: int) -> int:
        return self.byte() % n

    def rest(self) -> bytes:
        return self.data[self.pos:]


def decode_scenario(r: _Reader) -> Scenario:
    flags = r.byte()
    config_swap = bool(flags & 1)
    nproc = 2 if flags & 2 else 1
    procs: list[ProcessSpec] = []
    for i in range(nproc):
        base = 8 * i
        vmas = [VmaSpec(base, base + 1 + r.choice(4))]
        second = r.choice(3)
        if second:
            vmas.append(VmaSpec(base + 4, base + 4 + second))
        mask = r.byte()
        if i == 0:
            extended = bool(mask & 128)
        addrs = [a for v in vmas for a in range(v.start, v.end)]
        prefault = [(a, 10 + a) for j, a in enumerate(addrs) if mask & (1 << j)]
        procs.append(ProcessSpec(i + 1, vmas, prefault))

    kinds = USER_KINDS + VMA_KINDS if flags & 32 else USER_KINDS
    tasks: list[TaskSpec] = []
    next_pid = 10
    counter = [1000]  # stored values: a counter, not the input
    queue = [(p.pid, p.vmas) for p in procs]
    while queue and len(tasks) < 5:
        pid, vmas = queue.pop(0)
        ops: list[Op] = []
        for _ in range(r.choice(7)):
            op = _user_op(r, kinds, pid, vmas, flags, counter)
            if op[0] == "fork":
                if next_pid > 12:
                    continue
                op = ("fork", pid, next_pid)
                queue.append((next_pid, vmas))
                next_pid += 1
            ops.append(op)
        if ops:
            tasks.append(TaskSpec(f"p{pid}", ops))

    ext = 0
    migr = _migrator(r, procs, False)
    if extended:
        ext = r.byte()
        if ext & 2:  # the first migrator's ops, read again with their kind bytes
            migr = _migrator(r, procs, True)
    tasks.append(TaskSpec("migrator", migr))
    if ext:
        no_fork = tuple(k for k in kinds if k != "fork")
        # at most MAX_TASKS (8) tasks: keep room for migrator2 and kswapd
        room = 8 - len(tasks) - (ext & 1) - (1 if flags & 4 and config_swap else 0)
        for i, p in enumerate(procs):
            for t in range(((ext >> (2 + 2 * i)) & 3) % 3):
                thread_ops = [_user_op(r, no_fork, p.pid, p.vmas, flags, counter)
                              for _ in range(1 + r.choice(4))]
                if room > 0:
                    room -= 1
                    tasks.append(TaskSpec(f"p{p.pid}.t{t + 1}", thread_ops))
        if ext & 1:
            tasks.append(TaskSpec("migrator2", _migrator(r, procs, bool(ext & 2))))
    if flags & 4 and config_swap:
        kswapd: list[Op] = [("swapout", r.choice(2)) for _ in range(1 + r.choice(3))]
        if flags & 128:
            kswapd.append(("swapoff",))
        tasks.append(TaskSpec("kswapd", kswapd))
    mapped = sum(v.end - v.start for p in procs for v in p.vmas)
    world = WorldConfig(nodes=2, pages_per_node=2 * mapped + 2 + 4 * ((flags >> 3) & 3),
                        swap_slots=4 if config_swap else 0, config_swap=config_swap,
                        config_highpte=bool(flags & 64),
                        # the extended byte's last two bits: a lazy world (issue 14)
                        pagevec_size=3 if ext & 64 else 0, tlb_batch=2 if ext & 128 else 0)
    return Scenario(world, procs, tasks, name="fuzz")


def _user_op(r: _Reader, kinds: tuple[str, ...], pid: int, vmas: list[VmaSpec], flags: int,
             counter: list[int]) -> Op:
    """One user thread's operation: kind, address, and the kind's extra fields. A fork comes
    back as ("fork", pid, 0): the caller names the child (or drops it)."""
    addrs = [a for v in vmas for a in range(v.start, v.end)]
    if flags & 32:  # where mremap may have moved pages to
        addrs += [40 + vmas[0].start + k for k in range(3)]
    kind = kinds[r.choice(len(kinds))]
    addr = addrs[r.choice(len(addrs))]
    counter[0] += 1
    value = counter[0]
    if kind in ("write", "pin"):
        return (kind, pid, addr, value)
    if kind == "fork":
        return ("fork", pid, 0)
    if kind == "exit":
        return ("exit", pid)
    if kind == "mprotect":
        return ("mprotect", pid, addr, 1 + r.choice(2), r.choice(2))
    if kind == "mremap":
        target = MREMAP_TARGETS[r.choice(len(MREMAP_TARGETS))]
        new_addr = target + vmas[0].start if target >= 0 else -1
        return ("mremap", pid, addr, 1 + r.choice(2), 1 + r.choice(3), new_addr)
    if kind.endswith("-range"):
        return (kind.removesuffix("-range"), pid, addr, 1 + r.choice(2))
    return (kind, pid, addr)


def _migrator(r: _Reader, procs: list[ProcessSpec], with_move_pages: bool) -> list[Op]:
    """A migrator's ops: sys_migrate_pages of a process, or (``with_move_pages``, a kind byte
    of 0 mod 3) move_pages of one of its addresses."""
    ops: list[Op] = []
    for _ in range(1 + r.choice(3)):
        p = procs[r.choice(len(procs))]
        src = r.choice(2)
        move_all = r.choice(2)
        if with_move_pages and r.choice(3) == 0:
            addrs = [a for v in p.vmas for a in range(v.start, v.end)]
            ops.append(("move_pages", p.pid, addrs[r.choice(len(addrs))], 1 - src, move_all))
        else:
            ops.append(("migrate", p.pid, src, 1 - src, move_all))
    return ops


def decode(data: bytes) -> tuple[Scenario, bytes]:
    """Bytes -> (scenario, schedule bytes). Total."""
    r = _Reader(data)
    scenario = decode_scenario(r)
    return scenario, r.rest()
