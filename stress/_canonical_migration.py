"""Canonical scenarios: a migration against one other path (fault, fork, exit, swap,
munmap, mlock, mremap), and the two tiny ones the gate explores exhaustively."""

from __future__ import annotations

from target.mm.world import WorldConfig

from .workload import Op, ProcessSpec, Scenario, TaskSpec, VmaSpec


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
    """Fork copies migration entries verbatim; the new child (linked at the anon_vma's tail,
    after the parent) is restored by the same remove_migration_ptes walk; a child exits
    meanwhile.

        parent: fork 2, read 1                   child 2: write 1, read 0, exit
        migrator: MOVE_ALL node 0 -> 1 of child 2 (no-op until the fork): try_to_unmap puts
                  M(P) in the parent's ptes too, holding child 2's mmap_sem, not the parent's
        parent: fork 3, copy_one_pte(M(P))       child 3: read 0 (waits on M(P)), exit
        migrator: remove_migration_ptes walks parent, child 2, child 3
        parent: write 0

    Migrating the process that forks would never meet the copy: fork holds its mmap_sem for
    write, sys_migrate_pages for read.
    """
    return Scenario(
        WorldConfig(pages_per_node=10, swap_slots=4),
        _one_process(2),
        [
            TaskSpec("parent", [("fork", 1, 2), ("read", 1, 1), ("fork", 1, 3),
                                ("write", 1, 0, 200)]),
            TaskSpec("child", [("write", 2, 1, 300), ("read", 2, 0), ("exit", 2)]),
            TaskSpec("grandchild", [("read", 3, 0), ("exit", 3)]),
            TaskSpec("migrator", [("migrate", 2, 0, 1, 1)] * 2),
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


def migrate_split_vma() -> Scenario:
    """Migration after mprotect split a vma in two halves that share one anon_vma: the
    remove_migration_ptes walk meets a vma that does not cover the page.

        user: mprotect [2,4) read-only, read 0, write 1     migrator: migrate 0 -> 1, twice
    Real flaw (V2 as posted): remove_migration_pte walks at page_address_in_vma's -EFAULT
    (fix remove-migration-ptes-efault).
    """
    return Scenario(
        WorldConfig(pages_per_node=8, swap_slots=0, config_swap=False),
        _one_process(4),
        [
            TaskSpec("user", [("mprotect", 1, 2, 2, 0), ("read", 1, 0), ("write", 1, 1, 41)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 0), ("migrate", 1, 1, 0, 0)]),
        ],
        name="migrate-split-vma",
    )


def migrate_highpte() -> Scenario:
    """tiny-migrate-fault on a CONFIG_HIGHPTE machine: every pte walk is a kmap_atomic of
    the page-table page, checked as CONFIG_DEBUG_HIGHMEM checks it.

        user: write 0, read 0                    migrator: migrate 0 -> 1
    Real flaw (V2 as posted): pte_unmap_unlock(pte, ptl) (fix remove-migration-pte-ptep).
    """
    return Scenario(
        WorldConfig(nodes=2, pages_per_node=3, swap_slots=0, config_swap=False,
                    config_highpte=True),
        _one_process(1),
        [
            TaskSpec("user", [("write", 1, 0, 7), ("read", 1, 0)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 0)]),
        ],
        name="migrate-highpte",
    )


def migrate_fork_swapoff() -> Scenario:
    """Fork of an mm whose pte is a migration entry (the migration runs through its parent,
    MOVE_ALL), then reclaim and swapoff.

        A: fork B        B: fork C        C: read 1
        migrator: MOVE_ALL of A 0 -> 1, 1 -> 0, 0 -> 1
        kswapd: reclaim node 0, 1, 0, 1, then swapoff

    copy_one_pte of B's M(P) puts C on the mmlist next to B, which is on none: swap entries
    of B and C are then out of swapoff's reach (fix copy-one-pte-mmlist).
    """
    return Scenario(
        WorldConfig(pages_per_node=10, swap_slots=6),
        _one_process(2),
        [
            TaskSpec("A", [("fork", 1, 2)]),
            TaskSpec("B", [("fork", 2, 3)]),
            TaskSpec("C", [("read", 3, 1)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 1), ("migrate", 1, 1, 0, 1),
                                  ("migrate", 1, 0, 1, 1)]),
            TaskSpec("kswapd", [("swapout", 0), ("swapout", 1), ("swapout", 0), ("swapout", 1),
                                ("swapoff",)]),
        ],
        name="migrate-fork-swapoff",
    )


def migrate_vs_mremap() -> Scenario:
    """mremap of pages under another mm's migration: move_ptes moves migration entries
    without the anon_vma lock while remove_migration_ptes walks.

        A: fork B, read 0          B: mremap [0,4) -> [40,44) and back, twice
        migrator: MOVE_ALL of A 0 -> 1, 1 -> 0, 0 -> 1, 1 -> 0

    The new vma is at the tail, after its source, so the walk order is right; the unlocked
    peek in remove_migration_pte is not (fix remove-migration-pte-locked).
    """
    return Scenario(
        WorldConfig(pages_per_node=10, swap_slots=0, config_swap=False),
        _one_process(4),
        [
            TaskSpec("A", [("fork", 1, 2), ("read", 1, 0)]),
            TaskSpec("B", [("mremap", 2, 0, 4, 4, 40), ("mremap", 2, 40, 4, 4, 0)] * 2),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 1), ("migrate", 1, 1, 0, 1)] * 2),
        ],
        name="migrate-vs-mremap",
    )


def migrate_vs_mremap_back() -> Scenario:
    """mremap moving pages back where they came from while another mm migrates them: the
    destination merges into the vma before the source in the anon_vma list.

        A: mremap [2,4) -> [40,42), fork B, then [40,42) -> [2,4) and out again, twice
        B: read 40, then migrate_pages of itself (MOVE_ALL) 0 -> 1, 1 -> 0, twice
        migrator: MOVE_ALL of B 0 -> 1, 1 -> 0, twice

        B (or migrator), B's mmap_sem read     A, its own mmap_sem write
        try_to_unmap(P): A's pte 40 := M(P)
                                               mremap 40 -> 2: copy_vma merges into [0,2),
                                                 which is before [40,42) in the anon_vma
        remove_migration_ptes(P): walks [0,4)
                                               move_ptes: M(P) from 40 to 2, behind the walk
          walks [40,42): nothing there         -> M(P) outlives the migration
    (fix copy-vma-rmap-order). B's own migrations start at the fork (B is a thread of the
    child); the migrator's are no-ops until then.
    """
    out_and_back: list[Op] = [("mremap", 1, 40, 2, 2, 2), ("mremap", 1, 2, 2, 2, 40)]
    migrations: list[Op] = [("migrate", 2, 0, 1, 1), ("migrate", 2, 1, 0, 1)] * 2
    return Scenario(
        WorldConfig(pages_per_node=10, swap_slots=0, config_swap=False),
        _one_process(4),
        [
            TaskSpec("A", [("mremap", 1, 2, 2, 2, 40), ("fork", 1, 2), *out_and_back,
                           *out_and_back, ("read", 1, 40)]),
            TaskSpec("B", [("read", 2, 40), *migrations]),
            TaskSpec("migrator", migrations),
        ],
        name="migrate-vs-mremap-back",
    )
