"""Canonical scenarios of threads, GUP, reclaim and the lazy worlds (pagevecs, mmu_gather,
asynchronous swap I/O): the races issues 13 and 14 added."""

from __future__ import annotations

from target.mm.swap import PAGEVEC_SIZE
from target.mm.world import IO_DELAY_UNBOUNDED, WorldConfig

from ._canonical_migration import _one_process
from .workload import ProcessSpec, Scenario, TaskSpec, VmaSpec


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


def migrate_vs_pagevec() -> Scenario:
    """A fault fills a CPU's LRU pagevec while a migration drains and walks (LRU pagevecs).

        setup (CPU 0): store to page 0: it waits in CPU 0's pagevec, not on the LRU
        user (CPU 0): store to page 1 (its first fault: lru_cache_add), load page 0
        migrator (CPU 1): migrate node 0 -> 1

        user                                    migrator
                                                migrate_prep: lru_add_drain_all:
                                                  page 0 onto the LRU
        write 1: do_anonymous_page:
          lru_cache_add(page 1): CPU 0's
          pagevec, not on the LRU
                                                check_pte_range: page 0 isolated;
                                                  page 1 not on the LRU: skipped

    "Note that pages may be moved off the LRU after we have drained them. Those pages will
    fail to migrate like other pages that may be busy" (migrate_prep): page 1 stays behind,
    and the quiescent migration, whose migrate_prep drains it, moves it. Without the drain
    (migrate-prep-without-drain) no migration ever reaches a page that sits in a pagevec.
    """
    return Scenario(
        WorldConfig(pages_per_node=4, swap_slots=0, config_swap=False,
                    pagevec_size=PAGEVEC_SIZE),
        [ProcessSpec(1, [VmaSpec(0, 2)], [(0, 10)])],
        [
            TaskSpec("user", [("write", 1, 1, 21), ("read", 1, 0)]),
            TaskSpec("migrator", [("migrate", 1, 0, 1, 0)]),
        ],
        name="migrate-vs-pagevec",
    )
