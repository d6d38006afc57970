"""Exact refcount / mapcount / rss ledgers of the model, one path at a time (single task).

Each test drives one kernel path of the model with a single task, so there is no scheduling
decision and every count is deterministic, and checks the numbers the reference gives for the
V2 ("Swapless V2 as posted") column: reference A.5 (try_to_unmap_one), A.6 (faults), A.7
(fork), A.8 (zap), A.10-A.15 (isolation, migrate_pages, migrate_page, remove_migration_ptes)
and the one-page ledger of A.19 with V2 rss.

The intermediate states of a migration are observed with spies: the real model functions are
wrapped (``monkeypatch`` on the ``target.mm.migrate`` module globals, which is where
``migrate_pages``/``migrate_page`` look them up) so that the ledger is read at the exact point
the reference names, while the code under test stays the real one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from stress._execution import Outcome, StressInternalError
from stress.executors import run_direct
from stress.oracles import check_quiescent
from stress.schedulers import RandomScheduler
from stress.workload import ProcessSpec, Scenario, TaskSpec, VmaSpec, build_world
from target.kernel import KernelFinding, cond_resched
from target.mm import memory, mempolicy, migrate, syscalls
from target.mm.filemap import lock_page, unlock_page
from target.mm.mmap import do_munmap
from target.mm.page_alloc import alloc_pages_node
from target.mm.rmap import try_to_unmap
from target.mm.swap import get_page, put_page
from target.mm.swapops import SWAP_TYPE_DEVICE, SWP_TYPE_MIGRATION
from target.mm.syscalls import UserProcess
from target.mm.types import (
    PTRS_PER_PTE,
    VM_LOCKED,
    VM_WRITE,
    MmStruct,
    Page,
    PG_active,
    PG_dirty,
    PG_lru,
    PG_swapcache,
    PresentPte,
    Pte,
    SwapPte,
    list_empty,
    list_members,
)
from target.mm.world import World, WorldConfig, set_world

# -- harness ------------------------------------------------------------------------------------


def _run(body: Callable[[], Awaitable[None]], **kw: Any) -> Outcome:
    """Run ``body`` as the only task. An AssertionError inside it is re-raised as itself, so a
    failed check inside a body reads like any other pytest failure."""
    sched = RandomScheduler(0)
    sched.new_execution()
    try:
        return run_direct(sched, [("t", body)], **kw)  # type: ignore[list-item]
    except StressInternalError as exc:
        if isinstance(exc.__cause__, AssertionError):
            raise exc.__cause__ from None
        raise


def run_ok(body: Callable[[], Awaitable[None]]) -> None:
    out = _run(body)
    assert out.finding is None, out.finding


def call(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """One model call in its own single-task execution; fails the test on any finding."""
    box: dict[str, Any] = {}

    async def body() -> None:
        box["r"] = await fn(*args)

    run_ok(body)
    return box["r"]


@pytest.fixture
def machine() -> Iterator[Callable[..., tuple[World, dict[int, UserProcess]]]]:
    """Build a world from process specs and install it; uninstall afterwards."""

    def build(
        processes: list[ProcessSpec] | None = None, **config: Any
    ) -> tuple[World, dict[int, UserProcess]]:
        cfg = {"nodes": 2, "pages_per_node": 6, "swap_slots": 4, **config}
        sc = Scenario(
            WorldConfig(**cfg),
            processes or [ProcessSpec(1, [VmaSpec(0, PTRS_PER_PTE)])],
            [TaskSpec("unused", [("read", 1, 0)])],
        )
        world, procs = build_world(sc)
        set_world(world)
        return world, procs

    yield build
    set_world(None)


def pte_of(mm: MmStruct, addr: int) -> Pte:
    table = mm.pgtables.get(addr // PTRS_PER_PTE)
    return None if table is None else table.ptes[addr % PTRS_PER_PTE]


def page_at(world: World, mm: MmStruct, addr: int) -> Page:
    pte = pte_of(mm, addr)
    assert type(pte) is PresentPte, pte
    return world.mem_map[pte.pfn]


def ledger(page: Page) -> tuple[int, int]:
    return page.count, page.mapcount


def rss(mm: MmStruct) -> tuple[int, int]:
    return mm.anon_rss, mm.file_rss


def is_free(world: World, page: Page) -> bool:
    return page.count == 0 and page in world.zones[page.nid].free_list


def migration_pte(page: Page) -> SwapPte:
    return SwapPte(SWP_TYPE_MIGRATION, page.pfn)


def forked_pair(
    machine: Callable[..., tuple[World, dict[int, UserProcess]]], value: int = 7
) -> tuple[World, UserProcess, UserProcess, Page]:
    """Parent 1 writes address 0, then forks child 2: one anon page P mapped COW by both."""
    world, procs = machine()
    parent = procs[1]
    call(syscalls.user_access, parent, 0, True, value)
    child = call(syscalls.sys_fork, parent, 2)
    assert parent.mm is not None and child.mm is not None
    return world, parent, child, page_at(world, parent.mm, 0)


# -- faults (A.6) -------------------------------------------------------------------------------


def test_anonymous_write_fault(machine: Any) -> None:
    """do_anonymous_page, write: a new zeroed page, count 1, mapcount 1, anon_rss 1, on the
    active LRU, mapped writable+dirty+young, page->mapping = the vma's new anon_vma."""
    world, procs = machine()
    p = procs[1]
    mm = p.mm
    free_before = len(world.zones[0].free_list)
    assert call(syscalls.user_access, p, 2, True, 42) == 42

    page = page_at(world, mm, 2)
    assert ledger(page) == (1, 1)
    assert rss(mm) == (1, 0)
    assert page.flags & (PG_lru | PG_active) == PG_lru | PG_active
    assert page in world.zones[0].active_list
    assert page.nid == 0 and len(world.zones[0].free_list) == free_before - 1
    assert pte_of(mm, 2) == PresentPte(page.pfn, write=True, dirty=True, young=True)
    vma = mm.find_vma(2)
    assert vma is not None and vma.anon_vma is not None
    assert page.mapping is vma.anon_vma and vma.anon_vma.head == [vma]
    assert page.index == 2 and page.data == 42
    check_quiescent(world)


def test_anonymous_read_fault_maps_zero_page(machine: Any) -> None:
    """do_anonymous_page, read: ZERO_PAGE mapped read-only; its count and mapcount +1,
    file_rss 1 (the zero page is not anon), no page allocated, no anon_vma needed."""
    world, procs = machine()
    p = procs[1]
    mm = p.mm
    zp = world.zero_page
    count0, map0 = ledger(zp)
    free_before = sum(len(z.free_list) for z in world.zones)

    assert call(syscalls.user_access, p, 1, False) == 0

    assert pte_of(mm, 1) == PresentPte(zp.pfn, write=False, dirty=False, young=True)
    assert ledger(zp) == (count0 + 1, map0 + 1)
    assert rss(mm) == (0, 1)
    assert sum(len(z.free_list) for z in world.zones) == free_before
    assert mm.find_vma(1).anon_vma is None
    check_quiescent(world)

    # A write to it then takes do_wp_page on a non-anon page: always a copy, and the rss moves
    # from file to anon (page_remove_rmap(ZERO_PAGE); file_rss--; anon_rss++).
    assert call(syscalls.user_access, p, 1, True, 5) == 5
    page = page_at(world, mm, 1)
    assert page is not zp
    assert ledger(zp) == (count0, map0)
    assert ledger(page) == (1, 1)
    assert rss(mm) == (1, 0)
    assert pte_of(mm, 1) == PresentPte(page.pfn, write=True, dirty=True, young=True)
    check_quiescent(world)


# -- fork and COW (A.7) -------------------------------------------------------------------------


def test_fork_shares_page_read_only(machine: Any) -> None:
    """copy_one_pte of a present COW pte: get_page + page_dup_rmap -> count 2, mapcount 2;
    the parent's pte is write-protected (stays dirty and young), the child's copy is old;
    child anon_rss 1; the child's vma is at the tail of the anon_vma list (I11)."""
    world, parent, child, page = forked_pair(machine)
    pmm, cmm = parent.mm, child.mm

    assert ledger(page) == (2, 2)
    assert pte_of(pmm, 0) == PresentPte(page.pfn, write=False, dirty=True, young=True)
    assert pte_of(cmm, 0) == PresentPte(page.pfn, write=False, dirty=True, young=False)
    assert rss(pmm) == (1, 0) and rss(cmm) == (1, 0)
    av = pmm.mmap[0].anon_vma
    assert av is not None and av.head == [pmm.mmap[0], cmm.mmap[0]]
    assert cmm.mmap[0].anon_vma is av
    check_quiescent(world)


def test_cow_copy_then_reuse(machine: Any) -> None:
    """Write in the parent: do_wp_page cannot reuse (mapcount 2) -> copy: old page 1/1 (the
    child's), new page 1/1 writable in the parent. Then write in the child: mapcount 1, so
    can_share_swap_page says reuse: same pfn made writable, no allocation."""
    world, parent, child, page = forked_pair(machine, value=7)
    pmm, cmm = parent.mm, child.mm

    assert call(syscalls.user_access, parent, 0, True, 8) == 8
    new = page_at(world, pmm, 0)
    assert new is not page
    assert ledger(page) == (1, 1)
    assert ledger(new) == (1, 1)
    assert pte_of(pmm, 0) == PresentPte(new.pfn, write=True, dirty=True, young=True)
    assert pte_of(cmm, 0) == PresentPte(page.pfn, write=False, dirty=True, young=False)
    assert (new.data, page.data) == (8, 7)
    assert new.mapping is page.mapping  # both under the one anon_vma
    assert rss(pmm) == (1, 0) and rss(cmm) == (1, 0)
    check_quiescent(world)

    free_before = sum(len(z.free_list) for z in world.zones)
    assert call(syscalls.user_access, child, 0, True, 9) == 9
    assert page_at(world, cmm, 0) is page
    assert ledger(page) == (1, 1)
    assert pte_of(cmm, 0) == PresentPte(page.pfn, write=True, dirty=True, young=True)
    assert sum(len(z.free_list) for z in world.zones) == free_before
    assert page.data == 9 and new.data == 8
    check_quiescent(world)


# -- the one-page migration ledger (A.19, V2 column) --------------------------------------------


def test_a19_migrate_cow_shared_page_move_all(machine: Any, monkeypatch: Any) -> None:
    """Reference A.19 in its V2 column. P mapped by parent A and COW child B: count 2, map 2.

    1. isolate (check_range -> check_pte_range -> migrate_page_add, MOVE_ALL): P.count 3,
       off the LRU.
    2. newpage N allocated on node 1: N.count 1.
    3. try_to_unmap(P, 1), A then B: both ptes M(P); P.count 1, P.mapcount 0;
       [V2] A.anon_rss 0, B.anon_rss 0. P still locked, N locked.
    4./5. migrate_page_copy, remove_migration_ptes(P, N): N.count 1+2 = 3, N.mapcount 2;
       both ptes present read-only (V2 never restores write) and old; [V2] rss back to 1/1.
    7./8. move_to_lru(N): N.count 2 == N.mapcount; move_to_lru(P): P.count 0 -> freed.
    """
    world, parent, child, P = forked_pair(machine, value=7)
    pmm, cmm = parent.mm, child.mm
    assert ledger(P) == (2, 2)
    snaps: dict[str, Any] = {}
    moves: list[tuple[int, int]] = []

    real_copy = migrate.migrate_page_copy

    def spy_copy(newpage: Page, page: Page) -> None:
        snaps["unmapped"] = {
            "P": ledger(page), "N": ledger(newpage), "N.nid": newpage.nid,
            "ptes": (pte_of(pmm, 0), pte_of(cmm, 0)), "rss": (pmm.anon_rss, cmm.anon_rss),
            "locked": (page.locked.is_set, newpage.locked.is_set),
            "N.mapping": newpage.mapping is page.mapping,
        }
        real_copy(newpage, page)

    real_remove = migrate.remove_migration_ptes

    async def spy_remove(old: Page, new: Page) -> None:
        await real_remove(old, new)
        snaps["restored"] = {
            "same": old is new, "P": ledger(old), "N": ledger(new),
            "ptes": (pte_of(pmm, 0), pte_of(cmm, 0)), "rss": (pmm.anon_rss, cmm.anon_rss),
            "P.mapping": old.mapping, "P.locked": old.locked.is_set,
        }

    real_move = migrate.move_to_lru

    async def spy_move(page: Page) -> None:
        await real_move(page)
        moves.append((page.pfn, page.count))

    monkeypatch.setattr(migrate, "migrate_page_copy", spy_copy)
    monkeypatch.setattr(migrate, "remove_migration_ptes", spy_remove)
    monkeypatch.setattr(migrate, "move_to_lru", spy_move)

    async def body() -> None:
        # do_migrate_pages for node 0 -> 1 with MPOL_MF_MOVE_ALL, opened up to read step 1.
        await pmm.mmap_sem.down_read()
        pagelist: list[Page] = []
        await mempolicy.check_range(pmm, {0}, mempolicy.MPOL_MF_MOVE_ALL, pagelist)
        assert pagelist == [P]
        assert ledger(P) == (3, 2)  # step 1: the isolation reference
        assert not P.flags & PG_lru and P not in world.zones[0].active_list
        assert await migrate.migrate_pages_to(pagelist, 1) == 0
        assert pagelist == []
        pmm.mmap_sem.up_read()

    run_ok(body)

    u = snaps["unmapped"]
    assert u["P"] == (1, 0)  # step 3: only the isolation reference left
    assert u["N"] == (1, 0) and u["N.nid"] == 1  # step 2
    assert u["ptes"] == (migration_pte(P), migration_pte(P))
    assert u["rss"] == (0, 0)  # V2: anon_rss-- for migration entries too
    assert u["locked"] == (True, True)
    assert u["N.mapping"]  # migrate_page_remove_references copied mapping/index

    r = snaps["restored"]
    assert not r["same"]
    N = world.mem_map[r["ptes"][0].pfn]
    assert r["N"] == (3, 2)  # step 5: allocation ref + one per restored pte
    assert r["P"] == (1, 0) and r["P.mapping"] is None and r["P.locked"]  # A.13
    ro_old = PresentPte(N.pfn, write=False, dirty=False, young=False)
    assert r["ptes"] == (ro_old, ro_old)
    assert r["rss"] == (1, 1)  # V2: remove_migration_pte anon_rss++

    assert moves == [(N.pfn, 2), (P.pfn, 0)]  # steps 8 then 7 (V2 puts N back first)
    assert ledger(N) == (2, 2) and N.nid == 1
    assert N.flags & (PG_lru | PG_active | PG_dirty) == PG_lru | PG_active | PG_dirty
    assert N in world.zones[1].active_list
    assert is_free(world, P) and P.mapcount == 0 and P.flags == 0 and P.mapping is None
    assert (pte_of(pmm, 0), pte_of(cmm, 0)) == (ro_old, ro_old)
    assert rss(pmm) == (1, 0) and rss(cmm) == (1, 0)
    assert N.mapping is pmm.mmap[0].anon_vma and N.index == 0 and N.data == 7
    check_quiescent(world)
    # The restored ptes are read-only: the next store takes a write fault, and both processes
    # still read the value.
    assert call(syscalls.user_access, parent, 0, False) == 7
    assert call(syscalls.user_access, child, 0, False) == 7


def test_move_without_move_all_skips_shared_page(machine: Any) -> None:
    """migrate_page_add without MPOL_MF_MOVE_ALL: "Avoid migrating a page that is shared with
    others" (mapcount 2) -> nothing isolated, nothing moves, counts untouched."""
    world, parent, _child, P = forked_pair(machine)
    assert call(syscalls.sys_migrate_pages, parent, 0, 1, False) == 0
    assert ledger(P) == (2, 2) and P.nid == 0 and P.flags & PG_lru
    check_quiescent(world)


def test_sys_migrate_pages_single_mapped_page(machine: Any) -> None:
    """sys_migrate_pages MOVE of a page mapped once: new page 1/1 on node 1, read-only clean
    old pte (V2), anon_rss unchanged at the end, old page freed."""
    world, procs = machine()
    p = procs[1]
    call(syscalls.user_access, p, 0, True, 3)
    P = page_at(world, p.mm, 0)
    assert call(syscalls.sys_migrate_pages, p, 0, 1, False) == 0
    N = page_at(world, p.mm, 0)
    assert N.nid == 1 and ledger(N) == (1, 1) and is_free(world, P)
    assert pte_of(p.mm, 0) == PresentPte(N.pfn, write=False, dirty=False, young=False)
    assert rss(p.mm) == (1, 0)
    check_quiescent(world)
    # V2 restored the pte read-only: the store goes through do_wp_page, which reuses N.
    assert call(syscalls.user_access, p, 0, True, 4) == 4
    assert page_at(world, p.mm, 0) is N and ledger(N) == (1, 1)
    assert pte_of(p.mm, 0) == PresentPte(N.pfn, write=True, dirty=True, young=True)


# -- migration failures -------------------------------------------------------------------------


def test_migration_fails_with_pinned_page(machine: Any, monkeypatch: Any) -> None:
    """A get_user_pages pin is an extra reference: migrate_page_remove_references' pre-check
    mapcount(1) + nr_refs(1) != count(1 pte + 1 pin + 1 isolation = 3) -> -EAGAIN before any
    unmapping, on each of the 11 passes. The page stays, its pte is bit-for-bit unchanged,
    the counts come back to 1 pte + 1 pin, the unused new page is freed."""
    world, procs = machine()
    p = procs[1]
    call(syscalls.user_access, p, 0, True, 3)
    P = page_at(world, p.mm, 0)
    pte_before = pte_of(p.mm, 0)
    assert call(syscalls.pin, p, 0)
    assert ledger(P) == (2, 1)  # the pin's reference
    free1 = len(world.zones[1].free_list)

    rcs: list[int] = []
    real = migrate.migrate_page

    async def spy(newpage: Page, page: Page) -> int:
        rc = await real(newpage, page)
        rcs.append(rc)
        assert ledger(page) == (3, 1)  # nothing was unmapped: the pre-check bailed out
        return rc

    monkeypatch.setattr(migrate, "migrate_page", spy)
    # sys_migrate_pages returns the number of pages it could not move.
    assert call(syscalls.sys_migrate_pages, p, 0, 1, False) == 1
    assert rcs == [migrate.EAGAIN] * 11  # passes 0..10, then give up (V2 A.11)

    assert pte_of(p.mm, 0) == pte_before
    assert ledger(P) == (2, 1) and P.nid == 0 and P.flags & PG_lru and not P.locked.is_set
    assert len(world.zones[1].free_list) == free1
    assert rss(p.mm) == (1, 0)
    assert call(syscalls.dma_write, p, 0, 50)
    assert call(syscalls.unpin, p, 0)
    assert ledger(P) == (1, 1)
    check_quiescent(world)
    assert call(syscalls.user_access, p, 0, False) == 52  # the last DMA burst


def test_reference_taken_after_unmap_restores_old_page(machine: Any, monkeypatch: Any) -> None:
    """A.19, last paragraph: a reference that appears after try_to_unmap (a
    migration_entry_wait sleeper's get_page, here injected once) makes count != nr_refs ->
    -EAGAIN -> remove_migration_ptes(P, P): both ptes back on P (read-only: V2 rebuilds them
    from vm_page_prot), P 2+1/2, rss back; the later passes bail out at the pre-check."""
    world, parent, child, P = forked_pair(machine)
    pmm, cmm = parent.mm, child.mm
    seen: list[Any] = []
    real = migrate.try_to_unmap

    async def unmap_then_ref(page: Page, migration: bool) -> int:
        ret = await real(page, migration)
        if not seen:
            seen.append((ledger(page), pte_of(pmm, 0), pte_of(cmm, 0), rss(pmm), rss(cmm)))
            await get_page(page)  # the waiter's reference
        return ret

    monkeypatch.setattr(migrate, "try_to_unmap", unmap_then_ref)
    assert call(syscalls.sys_migrate_pages, parent, 0, 1, True) == 1
    assert seen == [((1, 0), migration_pte(P), migration_pte(P), (0, 0), (0, 0))]

    ro = PresentPte(P.pfn, write=False, dirty=False, young=False)
    assert (pte_of(pmm, 0), pte_of(cmm, 0)) == (ro, ro)
    assert ledger(P) == (3, 2)  # 2 ptes + the injected reference
    assert rss(pmm) == (1, 0) and rss(cmm) == (1, 0)
    assert P.flags & PG_dirty  # the parent's dirty bit went to the page at unmap
    call(put_page, P)  # the waiter wakes and drops its reference
    assert ledger(P) == (2, 2)
    check_quiescent(world)


def _mlocked_shared_page(
    machine: Any,
) -> tuple[World, UserProcess, UserProcess, Page]:
    """Parent (unlocked vma, first on the anon_vma list) and child (VM_LOCKED vma, second)
    share P. The child's vma is made read-only before mlock: the model has no mprotect, and
    mlock's make_pages_present write-faults a writable vma, which would break COW and give
    the child its own page (faithful to 2.6.17 mlock_fixup)."""
    world, parent, child, P = forked_pair(machine)
    cvma = child.mm.mmap[0]
    cvma.vm_flags &= ~VM_WRITE  # stands in for mprotect(PROT_READ)
    assert call(syscalls.sys_mlock, child, 0, True) == 0
    assert cvma.vm_flags & VM_LOCKED and not parent.mm.mmap[0].vm_flags & VM_LOCKED
    assert ledger(P) == (2, 2) and page_at(world, child.mm, 0) is P
    # make_pages_present read-faulted the rest of the child's vma: three ZERO_PAGE ptes
    assert rss(child.mm) == (1, 3)
    return world, parent, child, P


def test_mlocked_vma_gives_eperm_and_restores_earlier_entries(
    machine: Any, monkeypatch: Any
) -> None:
    """V2 try_to_unmap_one: VM_LOCKED -> SWAP_FAIL even for migration. Walking A (unlocked)
    then B (locked): A's pte becomes M(P) (P 2/1, A.anon_rss 0), B fails -> -EPERM ->
    remove_migration_ptes(P, P) puts P back into A's entry (read-only, old) -> P 3/2 again.
    migrate_pages moves P to ``failed`` (a permanent failure, tried once, not 11 times) and
    leaves the new page on ``to`` untouched."""
    world, parent, child, P = _mlocked_shared_page(machine)
    pmm, cmm = parent.mm, child.mm
    child_pte = pte_of(cmm, 0)
    at_restore: list[Any] = []
    real_remove = migrate.remove_migration_ptes

    async def spy_remove(old: Page, new: Page) -> None:
        at_restore.append((old is new, ledger(old), pte_of(pmm, 0), pte_of(cmm, 0), rss(pmm)))
        await real_remove(old, new)

    monkeypatch.setattr(migrate, "remove_migration_ptes", spy_remove)

    async def body() -> None:
        await pmm.mmap_sem.down_read()
        from_: list[Page] = []
        await mempolicy.check_range(pmm, {0}, mempolicy.MPOL_MF_MOVE_ALL, from_)
        assert ledger(P) == (3, 2)
        N = await alloc_pages_node(1)
        assert N is not None
        to, moved, failed = [N], [], []
        N.lru = to
        assert await migrate.migrate_pages(from_, to, moved, failed) == 1
        assert (from_, moved, failed, to) == ([], [], [P], [N])
        assert ledger(P) == (3, 2) and not P.locked.is_set
        assert ledger(N) == (1, 0) and not N.locked.is_set and N.mapping is None
        assert await migrate.putback_lru_pages(failed) == 1
        N.lru = None
        await put_page(N)
        pmm.mmap_sem.up_read()

    run_ok(body)
    assert at_restore == [(True, (2, 1), migration_pte(P), child_pte, (0, 0))]
    assert pte_of(pmm, 0) == PresentPte(P.pfn, write=False, dirty=False, young=False)
    assert pte_of(cmm, 0) == child_pte
    assert ledger(P) == (2, 2) and P.nid == 0 and P.flags & PG_lru
    assert rss(pmm) == (1, 0) and rss(cmm) == (1, 3)
    check_quiescent(world)


def test_mlocked_vma_sys_migrate_pages_counts_failure(machine: Any, monkeypatch: Any) -> None:
    """The same through sys_migrate_pages: one migrate_page call returning -EPERM, result 1
    (one page not moved), no page leaked, both processes read their value."""
    world, parent, child, P = _mlocked_shared_page(machine)
    rcs: list[int] = []
    real = migrate.migrate_page

    async def spy(newpage: Page, page: Page) -> int:
        rc = await real(newpage, page)
        rcs.append(rc)
        return rc

    monkeypatch.setattr(migrate, "migrate_page", spy)
    free = [len(z.free_list) for z in world.zones]
    assert call(syscalls.sys_migrate_pages, parent, 0, 1, True) == 1
    assert rcs == [migrate.EPERM]
    assert [len(z.free_list) for z in world.zones] == free
    assert ledger(P) == (2, 2)
    check_quiescent(world)
    assert call(syscalls.user_access, parent, 0, False) == 7
    assert call(syscalls.user_access, child, 0, False) == 7


def test_locked_first_vma_fails_without_installing_entries(machine: Any) -> None:
    """The other order: the parent mlocks before fork (the child's copy drops VM_LOCKED),
    and the child's pages are migrated with MOVE_ALL. The rmap walk meets the locked parent
    vma first: SWAP_FAIL before any entry is installed; nothing changes."""
    # a one-page vma: mlock faults in every page of a vma (make_pages_present)
    world, procs = machine([ProcessSpec(1, [VmaSpec(0, 1)])])
    parent = procs[1]
    call(syscalls.user_access, parent, 0, True, 7)
    assert call(syscalls.sys_mlock, parent, 0, True) == 0
    child = call(syscalls.sys_fork, parent, 2)
    assert not child.mm.mmap[0].vm_flags & VM_LOCKED
    P = page_at(world, parent.mm, 0)
    before = (pte_of(parent.mm, 0), pte_of(child.mm, 0))
    assert call(syscalls.sys_migrate_pages, child, 0, 1, True) == 1
    assert (pte_of(parent.mm, 0), pte_of(child.mm, 0)) == before
    assert ledger(P) == (2, 2)
    check_quiescent(world)


# -- swap-out and swap-in -----------------------------------------------------------------------


def test_swap_out_and_in(machine: Any) -> None:
    """kswapd, three calls on a node whose only LRU page is P (mapped once, written 11):

    1. page_referenced clears the pte's young bit -> referenced -> activate, keep. P 1/1.
    2. add_to_swap (slot 1, swap_map 1, cache ref) + try_to_unmap(P, 0): pte -> S(1),
       swap_map 2, anon_rss 0, P 1(cache)/0 after put-back, written to the slot; the write
       completes (end_swap_io). The mm joins the mmlist.
    3. remove_mapping: off the swap cache (swap_map 1, the pte), P freed.
    Then a read: do_swap_page -> read_swap_cache_async allocates Q, swap cache (swap_map 2),
    mapped read-only, swap_free -> swap_map 1 (the cache); Q 2(cache+pte)/1; reads 11.
    """
    world, procs = machine(pages_per_node=4)
    p = procs[1]
    mm = p.mm
    call(syscalls.user_access, p, 0, True, 11)
    P = page_at(world, mm, 0)

    assert call(syscalls.kswapd_reclaim, 0) is False
    assert pte_of(mm, 0) == PresentPte(P.pfn, write=True, dirty=True, young=False)
    assert ledger(P) == (1, 1) and P.flags & PG_active and P in world.zones[0].active_list
    assert world.swap_map[1] == 0
    check_quiescent(world)

    assert call(syscalls.kswapd_reclaim, 0) is False
    entry = SwapPte(SWAP_TYPE_DEVICE, 1)
    assert pte_of(mm, 0) == entry
    assert ledger(P) == (1, 0)  # the swap cache's reference
    assert P.flags & PG_swapcache and P.private == 1 and world.swapper_space.page_tree == {1: P}
    assert not P.flags & PG_dirty and not P.writeback.is_set and not P.locked.is_set
    assert P in world.zones[0].inactive_list
    assert world.swap_map[1] == 2  # swap cache + pte
    assert world.swap_slots[1].data == 11
    assert rss(mm) == (0, 0)
    assert not list_empty(mm.mmlist) and list_members(world.mmlist) == [mm]
    check_quiescent(world)

    assert call(syscalls.kswapd_reclaim, 0) is True
    assert is_free(world, P) and P.mapping is None and P.flags == 0
    assert world.swap_map[1] == 1 and world.swapper_space.page_tree == {}
    assert pte_of(mm, 0) == entry
    check_quiescent(world)

    assert call(syscalls.user_access, p, 0, False) == 11
    Q = page_at(world, mm, 0)
    assert pte_of(mm, 0) == PresentPte(Q.pfn, write=False, dirty=False, young=True)
    assert ledger(Q) == (2, 1)
    assert Q.flags & PG_swapcache and Q.private == 1 and world.swapper_space.page_tree == {1: Q}
    assert world.swap_map[1] == 1
    assert rss(mm) == (1, 0)
    assert Q.mapping is mm.mmap[0].anon_vma
    check_quiescent(world)


# -- zapping migration entries (A.8) ------------------------------------------------------------


async def _isolate_lock_unmap(mm: MmStruct, page: Page, pagelist: list[Page]) -> None:
    """The migrator up to its try_to_unmap: isolate (reference, under the ptl of the pte that
    maps the page, as check_pte_range does), lock_page, entries in."""
    table = mm.pte_table(page.index, alloc=False)
    assert table is not None
    await table.ptl.lock()
    assert await migrate.isolate_lru_page(page, pagelist) == 0
    table.ptl.unlock()
    await lock_page(page)
    await try_to_unmap(page, True)


def test_exit_with_migration_entry(machine: Any) -> None:
    """Exit of the child while P's ptes are migration entries (A.8): zap_pte_range clears the
    child's entry without touching P (no reference, no mapcount behind an entry) and check_mm
    finds the child's rss at 0 (V2: try_to_unmap_one already did anon_rss--). Then
    remove_migration_ptes(P, P) restores the parent only: P 1(iso)+1/1."""
    world, parent, child, P = forked_pair(machine)
    pmm, cmm = parent.mm, child.mm

    async def body() -> None:
        # mmap_sem read of the parent, as the migrator's caller holds it (A.9)
        await pmm.mmap_sem.down_read()
        pagelist: list[Page] = []
        await _isolate_lock_unmap(pmm, P, pagelist)
        assert ledger(P) == (1, 0)
        assert (pte_of(pmm, 0), pte_of(cmm, 0)) == (migration_pte(P), migration_pte(P))
        assert rss(pmm) == (0, 0) and rss(cmm) == (0, 0)

        await syscalls.sys_exit(child)  # exit_mmap: zap, free_pgtables, check_mm
        assert cmm.freed and child.mm is None
        assert ledger(P) == (1, 0)  # unaffected by the zap
        assert P.ghost_migration_ptes == 1  # only the parent's entry is left

        await migrate.remove_migration_ptes(P, P)
        assert ledger(P) == (2, 1)
        assert pte_of(pmm, 0) == PresentPte(P.pfn, write=False, dirty=False, young=False)
        assert rss(pmm) == (1, 0)
        unlock_page(P)  # I2: no entry left, no migration-entry-leak
        await migrate.putback_lru_pages(pagelist)
        pmm.mmap_sem.up_read()

    run_ok(body)
    assert ledger(P) == (1, 1) and P.flags & PG_lru
    assert pmm.mmap[0].anon_vma.head == [pmm.mmap[0]]  # the child's vma was unlinked
    check_quiescent(world)


def test_munmap_with_migration_entry(machine: Any) -> None:
    """munmap by the child of its vma while the parent's migration has both ptes as M(P):
    the child's entry vanishes, P keeps count 1 (the isolation reference) and mapcount 0,
    the child's anon_rss stays 0 (V2), the child's vma leaves the anon_vma list; the
    restore then maps P in the parent only: P 1+1/1."""
    world, parent, child, P = forked_pair(machine)
    pmm, cmm = parent.mm, child.mm
    cvma = cmm.mmap[0]
    av = cvma.anon_vma

    async def body() -> None:
        await pmm.mmap_sem.down_read()
        pagelist: list[Page] = []
        await _isolate_lock_unmap(pmm, P, pagelist)
        assert ledger(P) == (1, 0) and P.ghost_migration_ptes == 2
        assert rss(cmm) == (0, 0)
        # The child's munmap runs on another CPU under the child's mmap_sem (write). One task
        # cannot take that rwsem below the page lock it holds without lockdep (rightly)
        # reporting PG_locked -> mmap_sem, so the body calls do_munmap, sys_munmap's core.
        await do_munmap(cmm, cvma.vm_start, cvma.vm_end - cvma.vm_start)
        assert ledger(P) == (1, 0)
        assert P.ghost_migration_ptes == 1 and cmm.pgtables == {}
        assert rss(cmm) == (0, 0)
        assert cvma.freed and av is not None and not av.freed and av.head == [pmm.mmap[0]]
        await migrate.remove_migration_ptes(P, P)
        assert ledger(P) == (2, 1) and rss(pmm) == (1, 0)
        unlock_page(P)
        await migrate.putback_lru_pages(pagelist)
        pmm.mmap_sem.up_read()

    run_ok(body)
    assert ledger(P) == (1, 1) and P.flags & PG_lru
    assert pte_of(pmm, 0) == PresentPte(P.pfn, write=False, dirty=False, young=False)
    check_quiescent(world)


def test_zap_present_and_swap_ptes(machine: Any) -> None:
    """munmap of present anon, ZERO_PAGE and swap ptes: each present pte gives back its
    reference, mapcount and rss; the swap pte its swap_map count."""
    world, procs = machine(pages_per_node=4)
    p = procs[1]
    mm = p.mm
    call(syscalls.user_access, p, 0, True, 1)
    for _ in range(3):  # swap out address 0 (see test_swap_out_and_in)
        call(syscalls.kswapd_reclaim, 0)
    call(syscalls.user_access, p, 1, True, 2)
    call(syscalls.user_access, p, 2, False)
    zp = world.zero_page
    zcount, zmap = ledger(zp)
    A = page_at(world, mm, 1)
    assert type(pte_of(mm, 0)) is SwapPte and world.swap_map[1] == 1
    assert rss(mm) == (1, 1)
    assert call(syscalls.sys_munmap, p, 0) == 0
    assert is_free(world, A)
    assert ledger(zp) == (zcount - 1, zmap - 1)
    assert world.swap_map[1] == 0
    assert rss(mm) == (0, 0) and mm.mmap == [] and mm.pgtables == {}
    check_quiescent(world)


def test_private_writable_vma_is_cow(machine: Any) -> None:
    """is_cow_mapping on the vmas the workload builds: private writable -> COW."""
    _, procs = machine()
    vma = procs[1].mm.mmap[0]
    assert memory.is_cow_mapping(vma.vm_flags)
    assert not vma.vm_page_prot_write  # PAGE_COPY: private ptes start read-only


def _swapped_in(machine: Any) -> tuple[World, UserProcess, Page]:
    """Address 0 written (11), swapped out by three kswapd calls, read back in: Q mapped
    read-only and still in the swap cache (slot 1): Q 2/1, swap_map[1] 1."""
    world, procs = machine(pages_per_node=4)
    p = procs[1]
    call(syscalls.user_access, p, 0, True, 11)
    assert [call(syscalls.kswapd_reclaim, 0) for _ in range(3)] == [False, False, True]
    assert call(syscalls.user_access, p, 0, False) == 11
    Q = page_at(world, p.mm, 0)
    assert ledger(Q) == (2, 1) and Q.flags & PG_swapcache and world.swap_map[1] == 1
    return world, p, Q


def test_migrate_swap_cache_page_keeps_swap_entry(machine: Any) -> None:
    """A.12 V2 with a mapping (swapper_space), nr_refs 2: pre-check 1 + 2 == 3 (pte, cache,
    isolation); try_to_unmap installs a *swap* entry (the page is in the swap cache):
    swap_map 2, anon_rss 0; under tree_lock the slot moves to N (N gets the cache's
    reference, PG_swapcache, private), P's reference is dropped. remove_migration_ptes finds
    no migration entry, so the pte stays S(1): the next fault swaps in from N's cache."""
    world, p, Q = _swapped_in(machine)
    mm = p.mm
    assert call(syscalls.sys_migrate_pages, p, 0, 1, False) == 0
    assert is_free(world, Q)
    assert pte_of(mm, 0) == SwapPte(SWAP_TYPE_DEVICE, 1)
    N = world.swapper_space.page_tree[1]
    assert N.nid == 1 and ledger(N) == (1, 0)
    assert N.flags & PG_swapcache and N.private == 1 and N.flags & PG_lru
    assert world.swap_map[1] == 2  # the cache + the swap pte
    assert rss(mm) == (0, 0)  # V2: the swap entry's anon_rss-- is not given back
    check_quiescent(world)

    assert call(syscalls.user_access, p, 0, False) == 11
    assert page_at(world, mm, 0) is N
    assert ledger(N) == (2, 1) and world.swap_map[1] == 1 and rss(mm) == (1, 0)
    check_quiescent(world)


def test_zap_swap_pte_with_page_in_swap_cache(machine: Any) -> None:
    """free_swap_and_cache when the cache holds the only other use of the slot: swap_map
    2 -> 1, the trylock succeeds, one_user (count 2 with find_get_page's reference) ->
    delete_from_swap_cache (swap_map 0, cache reference dropped), then the last put frees P."""
    world, procs = machine(pages_per_node=4)
    p = procs[1]
    call(syscalls.user_access, p, 0, True, 11)
    P = page_at(world, p.mm, 0)
    call(syscalls.kswapd_reclaim, 0)
    call(syscalls.kswapd_reclaim, 0)  # unmapped and written; still in the swap cache
    assert ledger(P) == (1, 0) and world.swap_map[1] == 2
    assert call(syscalls.sys_munmap, p, 0) == 0
    assert is_free(world, P)
    assert world.swap_map[1] == 0 and world.swapper_space.page_tree == {}
    check_quiescent(world)


def test_fork_copies_migration_entry_and_restore_reaches_grandchild(
    machine: Any, monkeypatch: Any
) -> None:
    """A.7 V2 + I11, the one ledger here that needs two CPUs (gated so that every schedule
    gives the same result): the parent's MOVE_ALL migration has P's ptes as M(P) in parent A
    and child B when B forks grandchild C. copy_one_pte copies B's entry verbatim: no
    reference, no mapcount, no rss for C (C.anon_rss 0), and C is list_add'ed next to B on
    the mmlist (B11) although B is on no list: B and C form a private circle that swapoff
    never walks (the real flaw "mm: fix swapoff hang after page migration and fork").
    C's vma is at the tail of the anon_vma list, so remove_migration_ptes(P, N), walking
    A, B, C, restores all three: N 3/3 after put-back, anon_rss 1 in each mm (V2)."""
    world, parent, child, P = forked_pair(machine)
    gate = {"unmapped": False, "forked": False}
    seen: dict[str, Any] = {}
    real = migrate.try_to_unmap

    async def unmap_and_wait(page: Page, migration: bool) -> int:
        ret = await real(page, migration)
        gate["unmapped"] = True
        while not gate["forked"]:  # the migrator sleeps with P locked; fork runs meanwhile
            await cond_resched()
        return ret

    monkeypatch.setattr(migrate, "try_to_unmap", unmap_and_wait)

    async def migrator() -> None:
        seen["rc"] = await syscalls.sys_migrate_pages(parent, 0, 1, True)

    async def forker() -> None:
        while not gate["unmapped"]:
            await cond_resched()
        g = await syscalls.sys_fork(child, 3)
        assert g is not None
        mmlist = (not list_empty(g.mm.mmlist), g.mm in list_members(world.mmlist))
        seen["C"] = (ledger(P), pte_of(g.mm, 0), rss(g.mm), mmlist)
        gate["forked"] = True

    sched = RandomScheduler(0)
    sched.new_execution()
    out = run_direct(sched, [("migrator", migrator), ("forker", forker)])
    assert out.finding is None, out.finding
    assert seen["rc"] == 0
    assert seen["C"] == ((1, 0), migration_pte(P), (0, 0), (True, False))

    grand = world.processes[3]
    mms = [parent.mm, child.mm, grand.mm]
    N = page_at(world, parent.mm, 0)
    assert N is not P and N.nid == 1 and is_free(world, P)
    ro = PresentPte(N.pfn, write=False, dirty=False, young=False)
    assert [pte_of(mm, 0) for mm in mms] == [ro, ro, ro]
    assert ledger(N) == (3, 3)
    assert [rss(mm) for mm in mms] == [(1, 0), (1, 0), (1, 0)]
    assert parent.mm.mmap[0].anon_vma.head == [mm.mmap[0] for mm in mms]
    # Counts are all right; the mmlist is not: B and C are linked to each other only (the
    # flaw fixed by "mm: fix swapoff hang after page migration and fork"), which the
    # quiescence oracle reports.
    with pytest.raises(KernelFinding, match="swapoff would never find"):
        check_quiescent(world)
