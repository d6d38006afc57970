"""Named canonical scenarios and the swarm-testing scenario generator.

Canonical scenarios are small, hand-written races that each exercise one path of the seed
patch against one other path; the gate explores the tiny ones exhaustively. The race each
docstring draws is written down as a predicate on the model in tests/test_canonical_reach.py,
which checks that some seeded schedule reaches it (``fuzz_schedule`` fuzzes only these).

The generator makes random scenarios with *swarm testing* (Groce et al., "Swarm Testing",
ISSTA 2012): each scenario enables a random subset of operation kinds, so that rare
combinations (say, migrate + mlock without any swap-out noise) get whole runs to themselves
instead of being diluted.

Addresses are virtual page numbers; with PTRS_PER_PTE = 4, addresses 0-3 share one page table
(one ptl), 4-7 the next, and so on.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from target.mm.swap import PAGEVEC_SIZE
from target.mm.world import ANON_VMA_REUSE, IO_DELAY_UNBOUNDED, WorldConfig

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


def threads_vs_migrate() -> Scenario:
    """Two threads of one process fault on the same migration entries and break COW of the
    same page while it is migrated back and forth.

        T1: read 0 (x3), write 0, write 1     T2: read 0 (x3), write 0, read 1
        migrator: migrate node 0 -> 1, 1 -> 0

    Both threads can sleep in migration_entry_wait on one entry (each with its own reference),
    meet each other's do_anonymous_page/do_wp_page on one pte (the recheck under the ptl
    decides), and a store of one can land between the other's fault and its retry.
    """
    return Scenario(
        WorldConfig(pages_per_node=8),
        _one_process(2),
        [
            TaskSpec("T1", [("read", 1, 0)] * 3 + [("write", 1, 0, 21), ("write", 1, 1, 23)]),
            TaskSpec("T2", [("read", 1, 0)] * 3 + [("write", 1, 0, 22), ("read", 1, 1)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 0), ("migrate", 1, 1, 0, 0)]),
        ],
        name="threads-vs-migrate",
    )


def gup_vs_fork() -> Scenario:
    """get_user_pages in one thread while a sibling forks (fix fork-early-cow-pinned).

        A: pin 0, DMA 500..502, unpin       B: fork 2, write 0 (600)
        C (pid 2): read 0
        migrator: migrate node 0 -> 1

    If the fork lands between the pin and the DMA, the child shares the pinned page: a DMA
    burst after the fork shows up in the child, and B's store COWs the parent away from
    the page the device keeps writing (both are lost writes).
    """
    return Scenario(
        WorldConfig(pages_per_node=8),
        _one_process(2),
        [
            TaskSpec("A", [("pin", 1, 0, 500)]),
            TaskSpec("B", [("fork", 1, 2), ("write", 1, 0, 600)]),
            TaskSpec("C", [("read", 2, 0)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 0)]),
        ],
        name="gup-vs-fork",
    )


def threads_cow_break() -> Scenario:
    """COW break by two threads: after a fork the page is read-only and shared, and two
    threads of the parent store to it at once: two do_wp_page on one pte.

        T1: fork 2, write 0 (31)              T2: read 0 (x3), write 0 (32), read 0
        child (pid 2): read 0, exit
        migrator: MOVE_ALL node 0 -> 1 of the child (a no-op before the fork; after it,
                  the shared page's entries are in the parent's pte too)

        T1                                    T2
        fork: pte 0 := ro(P), child shares P
        write 0: do_wp_page(P): mapcount 2
          get_page(P), ptl unlocked            write 0: do_wp_page(P), get_page(P)
          copy P -> N1                           ptl unlocked, copy P -> N2
          ptl; pte == orig: map N1               ptl; pte is N1 != orig: put_page(N2)
                                                 retries: N1 is writable, stores 32

    The second COW's recheck of the pte under the ptl is what keeps one of the copies
    (and the store made to it) from being thrown away; the child's exit and the migration
    of the shared page change the mapcount under both.
    """
    return Scenario(
        WorldConfig(pages_per_node=8),
        _one_process(2),
        [
            TaskSpec("T1", [("fork", 1, 2), ("write", 1, 0, 31)]),
            TaskSpec("T2", [("read", 1, 0)] * 3 + [("write", 1, 0, 32), ("read", 1, 0)]),
            TaskSpec("child", [("read", 2, 0), ("exit", 2)]),
            TaskSpec("migrator", [("migrate", 2, 0, 1, 1)]),
        ],
        name="threads-cow-break",
    )


def thread_exit_vs_entry_wait() -> Scenario:
    """A thread exits while its sibling sleeps in migration_entry_wait.

        T1: read 0 (x3), exit                 T2: read 0 (x4), write 0 (7)
        migrator: migrate node 0 -> 1

        migrator                              T2                        T1
        lock_page(P), try_to_unmap:
          pte 0 := M(P)
                                              fault: migration_entry_wait
                                                get_page(P), sleeps
                                                                        exit: mm_users 2 -> 1
        remove_migration_ptes, unlock_page -> wakes, put_page(P), retries

    The sleeper holds a reference of the page, not of the mm: the mm must stay because T2
    is still one of its users, and its last user's exit is T2's (the process ends with it).
    """
    return Scenario(
        WorldConfig(pages_per_node=8),
        _one_process(2),
        [
            TaskSpec("T1", [("read", 1, 0)] * 3 + [("exit", 1)]),
            TaskSpec("T2", [("read", 1, 0)] * 4 + [("write", 1, 0, 7)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 0)]),
        ],
        name="thread-exit-vs-entry-wait",
    )


def swapin_vs_reclaim() -> Scenario:
    """A swap-in against reclaim of the page it swaps in: the swap cache's lookup against
    remove_mapping, which takes a page out of the cache only if its count, checked under
    tree_lock, shows no user but the cache and the isolation.

        user: read 0
        kswapd: migrate node 0 -> 1 (sys_migrate_pages of process 1, as a kernel-side actor
                may), then reclaim node 1 three times (the first finds the pte young, the
                second unmaps it to a swap entry and writes the page out, the third frees it)

        user                                   kswapd
                                               reclaim 2: pte 0 := S(1), writeback
        fault: pte_peek: S(1)
        lookup_swap_cache(S(1)): tree_lock,
          page found, get_page, tree_lock off
                                               reclaim 3: remove_mapping: count 3 != 2,
                                                 the page stays in the cache
        lock_page, pte still S(1): maps it

    find_get_page's reference is taken under tree_lock, so the remover's count check sees
    it (or the lookup finds the slot empty and reads the page back in). Two tasks only, so
    that the gate can explore every schedule with two preemptions (TINY); the migration
    first puts the migrator's code on the path, so the gate's DFS of it shows migration bugs
    too.
    """
    return Scenario(
        WorldConfig(pages_per_node=6, swap_slots=4),
        _one_process(1),
        [
            TaskSpec("user", [("read", 1, 0)]),
            TaskSpec("kswapd", [("migrate", 1, 0, 1, 0)] + [("swapout", 1)] * 3),
        ],
        name="swapin-vs-reclaim",
    )

def migrate_vs_child_mremap() -> Scenario:
    """A forked child mremaps a page its parent's migration is moving: move_ptes moves the
    child's migration entry while remove_migration_ptes may be walking for it.

        A: fork 2        B (pid 2): mremap [0,1) -> [40,41)
        migrator: MOVE_ALL of A node 0 -> 1 (a no-op until the fork shares the page)

        migrator                                 B
        try_to_unmap: A's pte 0 and B's
          pte 0 := M(P)
                                                 mremap: copy_vma links [40,41) at the
                                                   tail; move_ptes, both ptls held:
                                                   pte 0 cleared, pte 40 := M(P)
        remove_migration_ptes: B's [0,1) (old
          vma, nothing left), then [40,41): M(P)
          restored

    The smallest form of migrate-vs-mremap: the ptls held across the clear and the set, and
    the new vma after the old one in the anon_vma, are what let the walk find the entry.
    """
    return Scenario(
        WorldConfig(pages_per_node=6, swap_slots=0, config_swap=False),
        _one_process(1),
        [
            TaskSpec("A", [("fork", 1, 2)]),
            TaskSpec("B", [("mremap", 2, 0, 1, 1, 40)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 1)]),
        ],
        name="migrate-vs-child-mremap",
    )


def reclaim_vs_exit() -> Scenario:
    """Reclaim against an exit: kswapd reaches a page's anon_vma through ``page->mapping``,
    holding no reference on the anon_vma, while the only mm mapping the page tears down.

        user: exit
        kswapd: reclaim node 0, migrate node 0 -> 1 (sys_migrate_pages of process 1, as
                in swapin-vs-reclaim: it puts the migrator's code in the gate's DFS),
                reclaim node 1 (each reclaim's page_referenced takes the anon_vma's lock)

        kswapd                                 user
        isolate P; page_referenced:
          page_mapped(P)
        page_lock_anon_vma: rcu_read_lock,
          page_mapped(P) again
                                               exit_mmap: zap: mapcount 0;
                                                 free_pgtables: anon_vma_unlink frees it
        spin_lock(&anon_vma->lock)

    The lock is of a freed anon_vma, and that is allowed: the free came inside kswapd's RCU
    section, and SLAB_DESTROY_BY_RCU keeps the memory an anon_vma until the section ends (the
    list kswapd then walks is empty). The migrators never meet this: they hold the migrated
    mm's mmap_sem and mm_users, so its vma keeps the anon_vma alive. Two tasks, so that DFS
    explores it to the end.
    """
    return Scenario(
        WorldConfig(pages_per_node=4, swap_slots=2),
        _one_process(1),
        [
            TaskSpec("user", [("exit", 1)]),
            TaskSpec("kswapd", [("swapout", 0), ("migrate", 1, 0, 1, 0), ("swapout", 1)]),
        ],
        name="reclaim-vs-exit",
    )


def migrate_vs_writeback() -> Scenario:
    """Migration of a page whose swap write is still in flight (asynchronous swap I/O).

        user: reclaim node 0 three times (direct reclaim: try_to_free_pages runs the same
              shrink_page_list as kswapd; the first two clear the young bits of pages 0 and
              1, the third unmaps page 0 and starts its write), read 0, migrate its own
              pages 0 -> 1 (page 1, an ordinary anon page, migrates while page 0 is skipped)
        irq: completes the write whenever the scheduler runs it

        user                                           irq (another CPU)
        try_to_unmap: pte 0 := S
        swap_writepage: writeback, unlock_page
        read 0: swap cache hit, pte 0 := P
          (still under writeback)
        migrate: isolate P, lock P;
          pass 0: PageWriteback: skip
          pass 1: wait_on_page_writeback               end_swap_bio_write:
                                                         end_page_writeback

    ``swap_writepage`` unlocks the page with its write in flight, so the page lock does not
    keep a migrator off it: only migrate_pages' writeback test does (migrate_page BUGs on a
    page under writeback). One task and the interrupt: with synchronous I/O (the write ends
    with the reclaim step) there is no window at all, so this scenario shows what the
    asynchronous I/O window adds.
    """
    return Scenario(
        WorldConfig(pages_per_node=6, swap_slots=4, swap_io_delay=IO_DELAY_UNBOUNDED),
        _one_process(2),
        [TaskSpec("user", [("swapout", 0)] * 3 + [("read", 1, 0), ("migrate", 1, 0, 1, 0)])],
        name="migrate-vs-writeback",
    )


CANONICAL: dict[str, Callable[[], Scenario]] = {
    "migrate-vs-fault": migrate_vs_fault,
    "migrate-vs-fork-exit": migrate_vs_fork_exit,
    "migrate-vs-swap-pin": migrate_vs_swap_pin,
    "migrate-vs-munmap": migrate_vs_munmap,
    "migrate-vs-mlock": migrate_vs_mlock,
    "migrate-vs-cow-exit": migrate_vs_cow_exit,
    "migrate-split-vma": migrate_split_vma,
    "migrate-highpte": migrate_highpte,
    "migrate-fork-swapoff": migrate_fork_swapoff,
    "migrate-vs-mremap": migrate_vs_mremap,
    "migrate-vs-mremap-back": migrate_vs_mremap_back,
    "threads-vs-migrate": threads_vs_migrate,
    "gup-vs-fork": gup_vs_fork,
    "threads-cow-break": threads_cow_break,
    "thread-exit-vs-entry-wait": thread_exit_vs_entry_wait,
    "swapin-vs-reclaim": swapin_vs_reclaim,
    "migrate-vs-child-mremap": migrate_vs_child_mremap,
    "reclaim-vs-exit": reclaim_vs_exit,
    "migrate-vs-writeback": migrate_vs_writeback,
    "tiny-migrate-fault": tiny_migrate_fault,
    "tiny-migrate-pin": tiny_migrate_pin,
}

# The gate's exhaustive part (bound 2): small enough to explore every schedule. swapin-vs-reclaim
# is there because no sampling strategy finds its deep race (find-get-page-after-unlock) within
# thousands of runs; migrate-vs-writeback because neither does its window (random walk runs the
# interrupt within a few steps; PCT's change points, spread over the few decisions a random
# walk of it makes, always lower the user task inside it); reclaim-vs-exit is the only
# scenario where reclaim races an exit.
TINY = ("tiny-migrate-fault", "tiny-migrate-pin", "swapin-vs-reclaim", "reclaim-vs-exit",
        "migrate-vs-writeback")

TINY_BOUND = {"migrate-vs-writeback": 1}
"""TINY scenarios the gate explores at a lower preemption bound than its default (2): bound 2
of migrate-vs-writeback is 5,114 executions, about 20 s of CPU with every fix (the interrupt
may preempt each of the migration's ~100 steps), against 210 at bound 1; its bug needs no
preemption at all."""


def canonical(name: str) -> Scenario:
    try:
        return CANONICAL[name]()
    except KeyError:
        raise ScenarioError(
            f"unknown scenario {name!r}; choose one of: {', '.join(CANONICAL)}"
        ) from None


# -- the generator ------------------------------------------------------------------------------

USER_OPS = ("write", "read", "fork", "exit", "munmap", "mlock", "munlock", "mprotect",
            "mremap", "pin")
KERNEL_OPS = ("migrate", "move_pages", "swapout", "swapoff")
MREMAP_BASE = 40  # where generated mremaps with MREMAP_FIXED move to (8 pages per process)


def _user_op(rng: random.Random, kind: str, spec: ProcessSpec, addrs: list[int],
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
        return (kind, pid, addr, rng.randint(1, 2)) if rng.random() < 0.7 else (kind, pid, addr)
    if kind == "mprotect":
        return ("mprotect", pid, addr, rng.randint(1, 2), rng.randint(0, 1))
    if kind == "mremap":
        base = spec.vmas[0].start
        new_addr = rng.choice((-1, MREMAP_BASE + base, MREMAP_BASE + base + 2, base))
        return ("mremap", pid, addr, rng.randint(1, 2), rng.randint(1, 3), new_addr)
    return None


THREAD_OPS = ("write", "read", "pin", "exit", "mprotect", "munmap", "mremap", "mlock")


def _sibling_threads(rng: random.Random, enabled: list[str], spec: ProcessSpec,
                     addrs: list[int], main_ops: list[Op], room: int) -> list[TaskSpec]:
    """Sometimes 1-2 more user threads of ``spec``'s process (tasks sharing its mm).

    They lean on one hot address, the one the main thread touches first, so that two faults
    meet on one pte or migration entry, two COW breaks race, and a pin in one thread meets a
    fork or an exit in another. Forks stay with the main thread (only it names children)."""
    if room <= 0 or rng.random() >= 0.35:
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
            addr_pool = [hot] if rng.random() < 0.6 else addrs
            op = _user_op(rng, kind, spec, addr_pool, 2000 + 100 * k + len(ops))
            if op is not None:
                ops.append(op)
        if "exit" in kinds and rng.random() < 0.4:
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
    rng = random.Random(f"scenario:{seed}")
    # Threads are drawn from their own stream: the single-threaded part of each seed's
    # scenario is what it was before processes had threads.
    trng = random.Random(f"threads:{seed}")
    enabled = [op for op in USER_OPS if rng.random() < 0.6] or ["write"]
    if "write" not in enabled and "read" not in enabled:
        enabled.append("write")
    swap = rng.random() < 0.5
    config_swap = swap or rng.random() < 0.7
    highpte = rng.random() < 0.25
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
    # The slab's choices come from their own stream, as the threads do: drawing them from rng
    # would change every seed's scenario.
    srng = random.Random(f"slab:{seed}")
    reuse = srng.choice(ANON_VMA_REUSE)
    if reuse != "never":
        # A freed anon_vma can only be handed out again to a vma's first write fault: leave
        # the last process's last vma untouched by the setup so the run may have one.
        last = procs[-1]
        untouched = range(last.vmas[-1].start, last.vmas[-1].end)
        last.prefault = [(a, v) for a, v in last.prefault if a not in untouched]
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
        if "exit" in enabled and rng.random() < 0.5:
            ops.append(("exit", spec.pid))
        if ops:
            tasks.append(TaskSpec(f"p{spec.pid}", ops))
            tasks += _sibling_threads(trng, enabled, spec, addrs, ops, 5 - len(tasks))
    # One migrator, sometimes two (overlapping migrations of the same processes and pages),
    # each mixing whole-process sys_migrate_pages with page-by-page move_pages.
    every = [a for p in procs for v in p.vmas for a in range(v.start, v.end)]
    for m in range(1 if rng.random() < 0.7 else 2):
        migr: list[Op] = []
        for _ in range(rng.randint(1, 3)):
            src = rng.randint(0, 1)
            pid = rng.choice(procs).pid
            if rng.random() < 0.3:
                addr = rng.choice([a for a in every if 8 * (pid - 1) <= a < 8 * pid] or every)
                migr.append(("move_pages", pid, addr, rng.randint(0, 1), rng.randint(0, 1)))
            else:
                migr.append(("migrate", pid, src, 1 - src, rng.randint(0, 1)))
        tasks.append(TaskSpec("migrator" if m == 0 else f"migrator{m + 1}", migr))
    # Swap I/O from its own stream too: synchronous, or completed by the interrupt actor
    # within a few steps, many, or whenever the scheduler gets to it.
    irng = random.Random(f"io:{seed}")
    io_delay = irng.choice((0, 2, 16, IO_DELAY_UNBOUNDED)) if swap else 0
    if swap:
        kswapd: list[Op] = [("swapout", rng.randint(0, 1)) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.4:
            kswapd.insert(rng.randint(1, len(kswapd)), ("swapoff",))
        if io_delay:  # a page takes three calls to reach the disk: give I/O a chance
            kswapd += [("swapout", irng.randint(0, 1)) for _ in range(irng.randint(3, 6))]
        tasks.append(TaskSpec("kswapd", kswapd))
    # Enough memory that OOM is rare but possible: every process (children included) could
    # COW every page, and migration needs a target page per page.
    mapped = sum(v.end - v.start for p in procs for v in p.vmas)
    # Laziness from its own stream too (issue 14): half the worlds park LRU additions in
    # pagevecs, half gather zapped pages in an mmu_gather; small sizes, so that a batch fills
    # and drains inside a run as well as at lru_add_drain_all and tlb_finish_mmu.
    lrng = random.Random(f"lazy:{seed}")
    pagevec_size = lrng.choice((2, 3, 4, PAGEVEC_SIZE)) if lrng.random() < 0.5 else 0
    tlb_batch = lrng.choice((2, 3, 8)) if lrng.random() < 0.5 else 0
    world = WorldConfig(nodes=2, pages_per_node=rng.randint(2, 3) * mapped + rng.randint(2, 6),
                        swap_slots=rng.randint(3, 6) if config_swap else 0,
                        config_swap=config_swap, config_highpte=highpte,
                        anon_vma_reuse=reuse,
                        slab_seed=srng.randrange(2**31) if reuse == "seeded" else 0,
                        swap_io_delay=io_delay,
                        pagevec_size=pagevec_size, tlb_batch=tlb_batch)
    sc = Scenario(world, procs, tasks, name=f"generated:{seed}")
    validate(sc)
    return sc


assert set(USER_OPS) | set(KERNEL_OPS) == set(OPS)
