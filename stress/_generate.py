"""The swarm-testing scenario generator (Groce et al., ISSTA 2012): each scenario enables
a random subset of operation kinds.

Every choice goes through a :class:`Chooser`: :func:`generate` makes them from seeded random
streams, and ``migfuzz.testing.scenarios()`` from Hypothesis draws, so that a property test
draws from the same space of scenarios a campaign runs and Hypothesis can shrink each choice
(a ``chance`` shrinks toward its ``simple`` outcome: fewer op kinds, threads, migrators,
no kswapd; an integer toward its lower bound: fewer operations).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from target.mm.swap import PAGEVEC_SIZE
from target.mm.world import ANON_VMA_REUSE, IO_DELAY_UNBOUNDED, WorldConfig

from .workload import OPS, Op, ProcessSpec, Scenario, TaskSpec, VmaSpec, validate

USER_OPS = ("write", "read", "fork", "exit", "munmap", "mlock", "munlock", "mprotect",
            "mremap", "pin")
KERNEL_OPS = ("migrate", "move_pages", "swapout", "swapoff")
MREMAP_BASE = 40  # where generated mremaps with MREMAP_FIXED move to (8 pages per process)

T = TypeVar("T")


class Chooser(Protocol):
    """Where the generator's choices come from (random.Random's names, plus ``chance``)."""

    def chance(self, p: float, *, simple: bool = False) -> bool:
        """True with probability ``p``; ``simple`` is the outcome that makes the scenario
        smaller, the one a shrinking chooser moves toward."""
        ...

    def randint(self, a: int, b: int) -> int: ...

    def choice(self, seq: Sequence[T]) -> T: ...

    def randrange(self, n: int) -> int: ...


class SeededChooser(random.Random):
    """A seeded stream: ``chance(p)`` is ``random() < p``, the draws the generator always made,
    so a seed gives the scenario it gave before choosers existed."""

    def chance(self, p: float, *, simple: bool = False) -> bool:
        return self.random() < p


def _user_op(rng: Chooser, kind: str, spec: ProcessSpec, addrs: list[int],
             value: int) -> Op | None:
    """One operation of ``kind`` by ``spec``'s thread on the addresses it may use."""
    pid = spec.pid
    addr = rng.choice(addrs)
    if kind == "write":
        return ("write", pid, addr, value)
    if kind == "read":
        return ("read", pid, addr)
    if kind == "pin":
        return ("pin", pid, addr, value)
    if kind in ("munmap", "mlock", "munlock"):
        # a page range (splitting the vma) or, as the first scenario files did, the vma
        return (kind, pid, addr, rng.randint(1, 2)) if rng.chance(0.7) else (kind, pid, addr)
    if kind == "mprotect":
        return ("mprotect", pid, addr, rng.randint(1, 2), rng.randint(0, 1))
    if kind == "mremap":
        base = spec.vmas[0].start
        new_addr = rng.choice((-1, MREMAP_BASE + base, MREMAP_BASE + base + 2, base))
        return ("mremap", pid, addr, rng.randint(1, 2), rng.randint(1, 3), new_addr)
    return None


THREAD_OPS = ("write", "read", "pin", "exit", "mprotect", "munmap", "mremap", "mlock")


def _sibling_threads(rng: Chooser, enabled: list[str], spec: ProcessSpec,
                     addrs: list[int], main_ops: list[Op], room: int) -> list[TaskSpec]:
    """Sometimes 1-2 more user threads of ``spec``'s process (tasks sharing its mm).

    They lean on one hot address, the one the main thread touches first, so that two faults
    meet on one pte or migration entry, two COW breaks race, and a pin in one thread meets a
    fork or an exit in another. Forks stay with the main thread (only it names children)."""
    if room <= 0 or not rng.chance(0.35):
        return []
    kinds = [k for k in THREAD_OPS if k in enabled] or ["write"]
    touched = [op[2] for op in main_ops if op[0] in ("write", "read", "pin")]
    hot = touched[0] if touched else rng.choice(addrs)
    threads = []
    for k in range(min(room, rng.randint(1, 2))):
        ops: list[Op] = []
        for _ in range(rng.randint(2, 5)):
            kind = rng.choice(kinds)
            if kind == "exit":
                continue  # at the end, below
            addr_pool = [hot] if rng.chance(0.6) else addrs
            op = _user_op(rng, kind, spec, addr_pool, 2000 + 100 * k + len(ops))
            if op is not None:
                ops.append(op)
        if "exit" in kinds and rng.chance(0.4):
            ops.append(("exit", spec.pid))
        if ops:
            threads.append(TaskSpec(f"p{spec.pid}.t{k + 1}", ops))
    return threads


def generate(seed: int) -> Scenario:
    """A random scenario: swarm-selected op kinds, 1-2 processes (+ forked children), some
    with sibling threads, a migrator, and kswapd when swap-out is enabled (sometimes ending
    in swapoff); some worlds have CONFIG_HIGHPTE, pagevecs, an mmu_gather batch; a third each
    never reuse a freed anon_vma, always do, or choose by seed. Always valid (``validate``
    passes)."""
    return compose(lambda stream: SeededChooser(f"{stream}:{seed}"), f"generated:{seed}")


def compose(stream: Callable[[str], Chooser], name: str) -> Scenario:
    """The scenario :func:`generate` builds, with its choices taken from ``stream(NAME)``
    (one call per stream: scenario, threads, slab, io, lazy, readahead)."""
    rng = stream("scenario")
    # Threads are drawn from their own stream: the single-threaded part of each seed's
    # scenario is what it was before processes had threads.
    trng = stream("threads")
    enabled = [op for op in USER_OPS if rng.chance(0.6)] or ["write"]
    if "write" not in enabled and "read" not in enabled:
        enabled.append("write")
    swap = rng.chance(0.5)
    config_swap = swap or rng.chance(0.7)
    highpte = rng.chance(0.25)
    nproc = rng.randint(1, 2)
    procs = _processes(rng, nproc)
    # The slab's choices come from their own stream, as the threads do: drawing them from rng
    # would change every seed's scenario.
    srng = stream("slab")
    reuse = srng.choice(ANON_VMA_REUSE)
    if reuse != "never":
        # A freed anon_vma can only be handed out again to a vma's first write fault: leave
        # the last process's last vma untouched by the setup so the run may have one.
        last = procs[-1]
        untouched = range(last.vmas[-1].start, last.vmas[-1].end)
        last.prefault = [(a, v) for a, v in last.prefault if a not in untouched]
    tasks = _user_tasks(rng, trng, enabled, procs)
    tasks += _migrators(rng, procs)
    # Swap I/O from its own stream too: synchronous, or completed by the interrupt actor
    # within a few steps, many, or whenever the scheduler gets to it.
    irng = stream("io")
    io_delay = irng.choice((0, 2, 16, IO_DELAY_UNBOUNDED)) if swap else 0
    if swap:
        tasks.append(_kswapd(rng, irng, io_delay))
    # Enough memory that OOM is rare but possible: every process (children included) could
    # COW every page, and migration needs a target page per page.
    mapped = sum(v.end - v.start for p in procs for v in p.vmas)
    # Laziness from its own stream too (issue 14): half the worlds park LRU additions in
    # pagevecs, half gather zapped pages in an mmu_gather; small sizes, so that a batch fills
    # and drains inside a run as well as at lru_add_drain_all and tlb_finish_mmu.
    lrng = stream("lazy")
    pagevec_size = lrng.choice((2, 3, 4, PAGEVEC_SIZE)) if lrng.chance(0.5) else 0
    tlb_batch = lrng.choice((2, 3, 8)) if lrng.chance(0.5) else 0
    # Swap readahead from a stream of its own (so no earlier draw moves): half the worlds
    # with swap read clusters of 2 or 4 slots ahead on a swap-in miss.
    rrng = stream("readahead")
    page_cluster = rrng.choice((1, 2)) if swap and rrng.chance(0.5) else 0
    world = WorldConfig(nodes=2, pages_per_node=rng.randint(2, 3) * mapped + rng.randint(2, 6),
                        swap_slots=rng.randint(3, 6) if config_swap else 0,
                        config_swap=config_swap, config_highpte=highpte,
                        anon_vma_reuse=reuse,
                        slab_seed=srng.randrange(2**31) if reuse == "seeded" else 0,
                        swap_io_delay=io_delay,
                        pagevec_size=pagevec_size, tlb_batch=tlb_batch,
                        page_cluster=page_cluster)
    sc = Scenario(world, procs, tasks, name=name)
    validate(sc)
    return sc


def _processes(rng: Chooser, nproc: int) -> list[ProcessSpec]:
    """``nproc`` processes, 8 pages apart: one or two small vmas each, most pages prefaulted."""
    procs: list[ProcessSpec] = []
    for i in range(nproc):
        base = 8 * i
        vmas = [VmaSpec(base, base + rng.randint(1, 3))]
        if rng.chance(0.4):
            vmas.append(VmaSpec(base + 4, base + 4 + rng.randint(1, 2)))
        addrs = [a for v in vmas for a in range(v.start, v.end)]
        prefault = [(a, rng.randint(1, 99)) for a in addrs if rng.chance(0.8)]
        procs.append(ProcessSpec(i + 1, vmas, prefault))
    return procs


def _user_tasks(rng: Chooser, trng: Chooser, enabled: list[str],
                procs: list[ProcessSpec]) -> list[TaskSpec]:
    """Each process's user thread (forked children queued after their parent), with sibling
    threads drawn from ``trng``; at most five tasks."""
    next_pid = 10
    tasks: list[TaskSpec] = []
    queue = list(procs)
    value = 1000
    while queue and len(tasks) < 5:
        spec = queue.pop(0)
        addrs = [a for v in spec.vmas for a in range(v.start, v.end)]
        if "mremap" in enabled:  # where pages may have moved to
            addrs += [MREMAP_BASE + spec.vmas[0].start + k for k in range(3)]
        ops: list[Op] = []
        for _ in range(rng.randint(3, 8)):
            kind = rng.choice(enabled)
            value += 1
            if kind == "fork":
                if next_pid < 13:
                    ops.append(("fork", spec.pid, next_pid))
                    queue.append(ProcessSpec(next_pid, spec.vmas))
                    next_pid += 1
                continue
            op = _user_op(rng, kind, spec, addrs, value)
            if op is not None:
                ops.append(op)
        if "exit" in enabled and rng.chance(0.5):
            ops.append(("exit", spec.pid))
        if ops:
            tasks.append(TaskSpec(f"p{spec.pid}", ops))
            tasks += _sibling_threads(trng, enabled, spec, addrs, ops, 5 - len(tasks))
    return tasks


def _migrators(rng: Chooser, procs: list[ProcessSpec]) -> list[TaskSpec]:
    """One migrator, sometimes two (overlapping migrations of the same processes and pages),
    each mixing whole-process sys_migrate_pages with page-by-page move_pages."""
    tasks: list[TaskSpec] = []
    every = [a for p in procs for v in p.vmas for a in range(v.start, v.end)]
    for m in range(1 if rng.chance(0.7, simple=True) else 2):
        migr: list[Op] = []
        for _ in range(rng.randint(1, 3)):
            src = rng.randint(0, 1)
            pid = rng.choice(procs).pid
            if rng.chance(0.3):
                addr = rng.choice([a for a in every if 8 * (pid - 1) <= a < 8 * pid] or every)
                migr.append(("move_pages", pid, addr, rng.randint(0, 1), rng.randint(0, 1)))
            else:
                migr.append(("migrate", pid, src, 1 - src, rng.randint(0, 1)))
        tasks.append(TaskSpec("migrator" if m == 0 else f"migrator{m + 1}", migr))
    return tasks


def _kswapd(rng: Chooser, irng: Chooser, io_delay: int) -> TaskSpec:
    """kswapd's swap-outs, sometimes a swapoff among them, and more swap-outs when I/O is
    asynchronous (a page takes three calls to reach the disk)."""
    kswapd: list[Op] = [("swapout", rng.randint(0, 1)) for _ in range(rng.randint(1, 4))]
    if rng.chance(0.4):
        kswapd.insert(rng.randint(1, len(kswapd)), ("swapoff",))
    if io_delay:  # a page takes three calls to reach the disk: give I/O a chance
        kswapd += [("swapout", irng.randint(0, 1)) for _ in range(irng.randint(3, 6))]
    return TaskSpec("kswapd", kswapd)


assert set(USER_OPS) | set(KERNEL_OPS) == set(OPS)
