"""Named canonical scenarios and the swarm-testing scenario generator.

Canonical scenarios are small, hand-written races that each exercise one path of the seed
patch against one other path; the gate explores the tiny ones exhaustively. The generator makes
random scenarios with *swarm testing* (Groce et al., "Swarm Testing", ISSTA 2012): each
scenario enables a random subset of operation kinds, so that rare combinations (say, migrate +
mlock without any swap-out noise) get whole runs to themselves instead of being diluted.

Addresses are virtual page numbers; with PTRS_PER_PTE = 4, addresses 0-3 share one page table
(one ptl), 4-7 the next, and so on.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from target.mm.world import WorldConfig

from .workload import OPS, Op, ProcessSpec, Scenario, ScenarioError, TaskSpec, VmaSpec, validate


def _one_process(pages: int = 2, prefault: bool = True) -> list[ProcessSpec]:
    return [ProcessSpec(1, [VmaSpec(0, pages)],
                        [(a, 10 + a) for a in range(pages)] if prefault else [])]


def migrate_vs_fault() -> Scenario:
    """The seed patch's main race: loads and stores to pages while they are being migrated.

        user: stores and loads to pages 0 and 1, eight accesses
        migrator: migrate node 0 -> 1, 1 -> 0, 0 -> 1

    An access meets present ptes, migration entries (migration_entry_wait, whose reference
    makes migrate_page_remove_references return -EAGAIN) or the new page's read-only pte
    (V2 restores ptes without the write bit, so the store takes a do_wp_page fault).
    """
    return Scenario(
        WorldConfig(pages_per_node=6, swap_slots=4),
        _one_process(2),
        [
            TaskSpec("user", [("write", 1, 0, 100), ("write", 1, 1, 101), ("read", 1, 0),
                              ("write", 1, 0, 102), ("read", 1, 1), ("write", 1, 1, 103),
                              ("read", 1, 0), ("read", 1, 1)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 0), ("migrate", 1, 1, 0, 0),
                                  ("migrate", 1, 0, 1, 0)]),
        ],
        name="migrate-vs-fault",
    )


def migrate_vs_fork_exit() -> Scenario:
    """Fork copies migration entries verbatim; the child (after the parent in the anon_vma
    list) is restored by the same remove_migration_ptes walk; the child exits meanwhile.

        parent: fork 2, write 0              child: write 1, read 0, exit
        migrator: MOVE_ALL node 0 -> 1 of the parent (shared pages included)
    """
    return Scenario(
        WorldConfig(pages_per_node=8, swap_slots=4),
        _one_process(2),
        [
            TaskSpec("parent", [("fork", 1, 2), ("write", 1, 0, 200), ("read", 1, 1)]),
            TaskSpec("child", [("write", 2, 1, 300), ("read", 2, 0), ("exit", 2)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 1)]),
        ],
        name="migrate-vs-fork-exit",
    )


def migrate_vs_swap_pin() -> Scenario:
    """Migration against reclaim and a DMA pin: the pin's reference and the swap cache's must
    both be counted by the refcount checks (nr_refs = page_mapping(page) ? 2 : 1).

        user: pin 0 (DMA 500), write 1       kswapd: reclaim node 0 three times
        migrator: migrate node 0 -> 1
    """
    return Scenario(
        WorldConfig(pages_per_node=8, swap_slots=4),
        _one_process(2),
        [
            TaskSpec("user", [("pin", 1, 0, 500), ("write", 1, 1, 501), ("read", 1, 0)]),
            TaskSpec("kswapd", [("swapout", 0), ("swapout", 0), ("swapout", 0)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 0)]),
        ],
        name="migrate-vs-swap-pin",
    )


def migrate_vs_munmap() -> Scenario:
    """munmap zaps ptes and migration entries under a running migration.

        user: write 2, munmap 0              migrator: migrate node 0 -> 1
    The migrator holds mmap_sem for read, so the munmap (write) waits for it: the race is on
    the other process's mapping, the forked child's.
    """
    return Scenario(
        WorldConfig(pages_per_node=8, swap_slots=4),
        [ProcessSpec(1, [VmaSpec(0, 2), VmaSpec(4, 6)], [(0, 1), (1, 2), (4, 3)])],
        [
            TaskSpec("parent", [("fork", 1, 2), ("write", 1, 4, 9)]),
            TaskSpec("child", [("munmap", 2, 0), ("read", 2, 4), ("exit", 2)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 1)]),
        ],
        name="migrate-vs-munmap",
    )


def migrate_vs_mlock() -> Scenario:
    """V2 keeps VM_LOCKED as a migration failure: a page shared with a locked vma of another
    mm makes try_to_unmap return SWAP_FAIL, migrate_page_remove_references -EPERM, and the
    page goes to the failed list (migrate_page restores any entries already installed).

        parent: mlock 0, fork 2, read 0      child: read 0, write 1, read 1
        migrator: MOVE_ALL node 0 -> 1 of the child, four times (no-ops until the fork)

    mlock first: make_pages_present would break COW in a writable vma shared with a child,
    so the parent locks, then forks (the child's copy of the vma is not locked).
    """
    return Scenario(
        WorldConfig(pages_per_node=8, swap_slots=4),
        _one_process(2),
        [
            TaskSpec("parent", [("mlock", 1, 0), ("fork", 1, 2), ("read", 1, 0)]),
            TaskSpec("child", [("read", 2, 0), ("write", 2, 1, 77), ("read", 2, 1)]),
            TaskSpec("migrator", [("migrate", 2, 0, 1, 1)] * 4),
        ],
        name="migrate-vs-mlock",
    )


def migrate_vs_cow_exit() -> Scenario:
    """A page can lose its last user while the migrator is scanning the page tables: the
    parent's COW moves its pte to a copy, and the child's exit drops the last reference. The
    ptl held across check_pte_range's isolation is what keeps the page alive (2006-01 fix).

        parent: fork 2, write 0..3            child: exit
        migrator: MOVE_ALL node 0 -> 1 of the parent, twice
    """
    return Scenario(
        WorldConfig(pages_per_node=16, swap_slots=0, config_swap=False),
        _one_process(4),
        [
            TaskSpec("parent", [("fork", 1, 2)] + [("write", 1, a, 50 + a) for a in range(4)]),
            TaskSpec("child", [("exit", 2)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 1), ("migrate", 1, 0, 1, 1)]),
        ],
        name="migrate-vs-cow-exit",
    )


def tiny_migrate_fault() -> Scenario:
    """The smallest race of the patch, small enough for exhaustive exploration:
    one page, one store, one migration."""
    return Scenario(
        WorldConfig(nodes=2, pages_per_node=3, swap_slots=0, config_swap=False),
        _one_process(1),
        [
            TaskSpec("user", [("write", 1, 0, 7)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 0)]),
        ],
        name="tiny-migrate-fault",
    )


def tiny_migrate_pin() -> Scenario:
    """One page, one DMA pin, one migration: the pin must make migration back off."""
    return Scenario(
        WorldConfig(nodes=2, pages_per_node=3, swap_slots=0, config_swap=False),
        _one_process(1),
        [
            TaskSpec("user", [("pin", 1, 0, 8), ("read", 1, 0)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 0)]),
        ],
        name="tiny-migrate-pin",
    )


CANONICAL: dict[str, Callable[[], Scenario]] = {
    "migrate-vs-fault": migrate_vs_fault,
    "migrate-vs-fork-exit": migrate_vs_fork_exit,
    "migrate-vs-swap-pin": migrate_vs_swap_pin,
    "migrate-vs-munmap": migrate_vs_munmap,
    "migrate-vs-mlock": migrate_vs_mlock,
    "migrate-vs-cow-exit": migrate_vs_cow_exit,
    "tiny-migrate-fault": tiny_migrate_fault,
    "tiny-migrate-pin": tiny_migrate_pin,
}

TINY = ("tiny-migrate-fault", "tiny-migrate-pin")


def canonical(name: str) -> Scenario:
    try:
        return CANONICAL[name]()
    except KeyError:
        raise ScenarioError(
            f"unknown scenario {name!r}; choose one of: {', '.join(CANONICAL)}"
        ) from None


# -- the generator ------------------------------------------------------------------------------

USER_OPS = ("write", "read", "fork", "exit", "munmap", "mlock", "munlock", "pin")
KERNEL_OPS = ("migrate", "swapout")


def generate(seed: int) -> Scenario:
    """A random scenario: swarm-selected op kinds, 1-2 processes (+ forked children), a
    migrator, and kswapd when swap-out is enabled. Always valid (``validate`` passes)."""
    rng = random.Random(f"scenario:{seed}")
    enabled = [op for op in USER_OPS if rng.random() < 0.6] or ["write"]
    if "write" not in enabled and "read" not in enabled:
        enabled.append("write")
    swap = rng.random() < 0.5
    config_swap = swap or rng.random() < 0.7
    nproc = rng.randint(1, 2)
    procs: list[ProcessSpec] = []
    for i in range(nproc):
        base = 8 * i
        vmas = [VmaSpec(base, base + rng.randint(1, 3))]
        if rng.random() < 0.4:
            vmas.append(VmaSpec(base + 4, base + 4 + rng.randint(1, 2)))
        addrs = [a for v in vmas for a in range(v.start, v.end)]
        prefault = [(a, rng.randint(1, 99)) for a in addrs if rng.random() < 0.8]
        procs.append(ProcessSpec(i + 1, vmas, prefault))
    next_pid = 10
    tasks: list[TaskSpec] = []
    queue = list(procs)
    value = 1000
    while queue and len(tasks) < 5:
        spec = queue.pop(0)
        addrs = [a for v in spec.vmas for a in range(v.start, v.end)]
        ops: list[Op] = []
        for _ in range(rng.randint(3, 8)):
            kind = rng.choice(enabled)
            addr = rng.choice(addrs)
            value += 1
            if kind == "write":
                ops.append(("write", spec.pid, addr, value))
            elif kind == "read":
                ops.append(("read", spec.pid, addr))
            elif kind == "fork" and next_pid < 13:
                ops.append(("fork", spec.pid, next_pid))
                queue.append(ProcessSpec(next_pid, spec.vmas))
                next_pid += 1
            elif kind in ("munmap", "mlock", "munlock"):
                ops.append((kind, spec.pid, addr))
            elif kind == "pin":
                ops.append(("pin", spec.pid, addr, value))
        if "exit" in enabled and rng.random() < 0.5:
            ops.append(("exit", spec.pid))
        if ops:
            tasks.append(TaskSpec(f"p{spec.pid}", ops))
    migr: list[Op] = []
    for _ in range(rng.randint(1, 3)):
        src = rng.randint(0, 1)
        migr.append(("migrate", rng.choice(procs).pid, src, 1 - src, rng.randint(0, 1)))
    tasks.append(TaskSpec("migrator", migr))
    if swap:
        tasks.append(TaskSpec("kswapd", [("swapout", rng.randint(0, 1))
                                         for _ in range(rng.randint(1, 4))]))
    # Enough memory that OOM is rare but possible: every process (children included) could
    # COW every page, and migration needs a target page per page.
    mapped = sum(v.end - v.start for p in procs for v in p.vmas)
    world = WorldConfig(nodes=2, pages_per_node=rng.randint(2, 3) * mapped + rng.randint(2, 6),
                        swap_slots=rng.randint(3, 6) if config_swap else 0,
                        config_swap=config_swap)
    sc = Scenario(world, procs, tasks, name=f"generated:{seed}")
    validate(sc)
    return sc


assert set(USER_OPS) | set(KERNEL_OPS) == set(OPS)
