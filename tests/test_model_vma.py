"""Ledgers of the vma paths the flaws live on (reference A.17, A.8; mm/mmap.c, mremap.c,
mprotect.c, mlock.c, swapfile.c of 2.6.17), single task like tests/test_model_ledgers.py:
split_vma / vma_adjust / vma_merge, partial munmap, mprotect, ranged mlock, mremap (move,
shrink, grow in place), swapoff; then one test per real flaw of V2 as posted that makes its
window happen (forced with spies where it needs two CPUs) and shows it gone with its fix.
"""

from __future__ import annotations

from typing import Any

from test_model_ledgers import (
    _run,
    call,
    forked_pair,
    is_free,
    ledger,
    machine,
    page_at,
    pte_of,
    rss,
    run_ok,
)

from stress.executors import run_direct
from stress.oracles import check_quiescent
from stress.schedulers import RandomScheduler
from stress.workload import ProcessSpec, VmaSpec
from target.bugs import inject
from target.fixes import FIXES, lookup, without
from target.kernel import KernelFinding, cond_resched, preempt
from target.mm import migrate, mremap, syscalls
from target.mm.mmap import split_vma, vma_merge
from target.mm.mprotect import PROT_READ, PROT_WRITE
from target.mm.swapops import SWAP_TYPE_DEVICE
from target.mm.types import VM_LOCKED, VM_WRITE, SwapPte, list_empty, list_members

__all__ = ["machine"]  # the fixture, re-exported for pytest


def four_pages(machine: Any, **config: Any) -> tuple[Any, Any]:
    """Process 1 with one vma [0,4) and a value stored in each page."""
    world, procs = machine([ProcessSpec(1, [VmaSpec(0, 4)])], **config)
    p = procs[1]
    for a in range(4):
        call(syscalls.user_access, p, a, True, 10 + a)
    return world, p


def spans(mm: Any) -> list[tuple[int, int, int]]:
    return [(v.vm_start, v.vm_end, v.vm_pgoff) for v in mm.mmap]


# -- split, merge, partial ranges --------------------------------------------------------------


def test_mprotect_splits_and_merges_back(machine: Any) -> None:
    """mprotect of [2,4) read-only: split_vma; the new vma [2,4) shares the anon_vma and is
    at the tail of its list; change_pte_range rewrites only the present ptes of the range,
    counts untouched. mprotect back: vma_merge makes one vma again (__anon_vma_merge)."""
    world, p = four_pages(machine)
    mm = p.mm
    pages = [page_at(world, mm, a) for a in range(4)]
    before = [ledger(pg) for pg in pages]
    assert call(syscalls.sys_mprotect, p, 2, 2, PROT_READ) == 0
    assert spans(mm) == [(0, 2, 0), (2, 4, 2)]
    low, high = mm.mmap
    # split_vma(new_below): the *new* vma is the lower part, linked at the tail
    assert low.anon_vma is high.anon_vma and low.anon_vma.head == [high, low]
    assert high.vm_flags & VM_WRITE == 0 and low.vm_flags & VM_WRITE
    assert [pte_of(mm, a).write for a in range(4)] == [True, True, False, False]
    assert [ledger(pg) for pg in pages] == before and rss(mm) == (4, 0)
    assert call(syscalls.user_access, p, 3, True, 99) is None  # SIGSEGV: no store
    assert call(syscalls.user_access, p, 3, False) == 13
    assert call(syscalls.sys_mprotect, p, 2, 2, PROT_READ | PROT_WRITE) == 0
    assert spans(mm) == [(0, 4, 0)] and low.anon_vma.head == [low] and high.freed
    # private writable: PAGE_COPY, so the restored ptes stay read-only until a write fault
    assert pte_of(mm, 3).write is False
    assert call(syscalls.user_access, p, 3, True, 99) == 99
    check_quiescent(world)


def test_partial_munmap_splits_and_zaps_the_middle(machine: Any) -> None:
    """munmap [1,3): split at 1 and 3, detach [1,3), zap it: its pages freed (count and
    mapcount to 0), anon_rss 4 -> 2; [0,1) and [3,4) keep their pgoff, one anon_vma."""
    world, p = four_pages(machine)
    mm = p.mm
    gone = [page_at(world, mm, a) for a in (1, 2)]
    assert call(syscalls.sys_munmap, p, 1, 2) == 0
    assert spans(mm) == [(0, 1, 0), (3, 4, 3)]
    assert all(is_free(world, pg) for pg in gone)
    assert pte_of(mm, 1) is None and pte_of(mm, 2) is None and rss(mm) == (2, 0)
    assert mm.mmap[0].anon_vma.head == mm.mmap  # both pieces, nothing freed
    assert call(syscalls.user_access, p, 3, False) == 13
    check_quiescent(world)


def test_mlock_range_splits_and_faults_in(machine: Any) -> None:
    """mlock [1,2) of an unfaulted vma: split twice, VM_LOCKED only on [1,2), and
    make_pages_present faults that page in (count 1, mapcount 1). munlock merges back."""
    world, procs = machine([ProcessSpec(1, [VmaSpec(0, 4)])])
    p = procs[1]
    assert call(syscalls.sys_mlock, p, 1, True, 1) == 0
    assert spans(p.mm) == [(0, 1, 0), (1, 2, 1), (2, 4, 2)]
    assert [bool(v.vm_flags & VM_LOCKED) for v in p.mm.mmap] == [False, True, False]
    assert ledger(page_at(world, p.mm, 1)) == (1, 1) and pte_of(p.mm, 0) is None
    assert call(syscalls.sys_mlock, p, 0, False, 4) == 0
    assert spans(p.mm) == [(0, 4, 0)]
    check_quiescent(world)


def test_vma_merge_keeps_the_merged_vma_in_its_list_place(machine: Any) -> None:
    """vma_merge extends prev; the merged vma keeps prev's place in the anon_vma list (the
    root of the copy-vma-rmap-order flaw)."""
    _, p = four_pages(machine)
    mm = p.mm

    async def body() -> None:
        await mm.mmap_sem.down_write()
        vma = mm.mmap[0]
        await split_vma(mm, vma, 2, False)
        low, high = mm.mmap
        assert low.anon_vma is not None and low.anon_vma.head == [low, high]
        merged = await vma_merge(mm, low, 2, 4, low.vm_flags, low.anon_vma, 2)
        assert merged is low and spans(mm) == [(0, 4, 0)] and low.anon_vma.head == [low]
        mm.mmap_sem.up_write()

    run_ok(body)


# -- mremap ---------------------------------------------------------------------------------


def test_mremap_move_carries_ptes_counts_and_data(machine: Any) -> None:
    """mremap [0,2) -> [40,42) (MREMAP_FIXED): copy_vma links a new vma at the tail, pgoff 0
    so page->index stays right; move_ptes moves the ptes (count, mapcount, rss unchanged);
    do_munmap of the old range splits [0,4)."""
    world, p = four_pages(machine)
    mm = p.mm
    pages = [page_at(world, mm, a) for a in range(2)]
    before = [ledger(pg) for pg in pages]
    assert call(syscalls.sys_mremap, p, 0, 2, 2, 40) == 40
    assert spans(mm) == [(2, 4, 2), (40, 42, 0)]
    assert [page_at(world, mm, 40 + k) for k in range(2)] == pages
    assert [ledger(pg) for pg in pages] == before and rss(mm) == (4, 0)
    assert pte_of(mm, 0) is None and pages[0].index == 0
    head = mm.mmap[0].anon_vma.head
    assert head == [mm.mmap[0], mm.mmap[1]]  # the source half, then the destination
    assert call(syscalls.user_access, p, 41, False) == 11 and p.expected.get(1) is None
    check_quiescent(world)


def test_mremap_moves_a_swap_entry_with_its_count(machine: Any) -> None:
    """move_ptes moves any non-none pte: a swap entry arrives at the new address with its
    slot count unchanged (no swap_duplicate, no swap_free), and is read back from there.
    (Migration entries moved by mremap: test_flaw_unlocked_peek_* below.)"""
    world, procs = machine([ProcessSpec(1, [VmaSpec(0, 2)])])
    p = procs[1]
    call(syscalls.user_access, p, 0, True, 10)
    for _ in range(3):  # referenced, then swap cache + write, then freed
        call(syscalls.kswapd_reclaim, 0)
    entry = SwapPte(SWAP_TYPE_DEVICE, 1)
    assert pte_of(p.mm, 0) == entry and world.swap_map[1] == 1
    assert call(syscalls.sys_mremap, p, 0, 2, 2, 40) == 40
    assert pte_of(p.mm, 40) == entry and pte_of(p.mm, 0) is None and world.swap_map[1] == 1
    assert call(syscalls.user_access, p, 40, False) == 10
    check_quiescent(world)


def test_mremap_shrink_and_grow_in_place(machine: Any) -> None:
    """Shrinking unmaps the tail; growing into a free range is vma_adjust in place."""
    world, p = four_pages(machine)
    mm = p.mm
    tail = page_at(world, mm, 3)
    assert call(syscalls.sys_mremap, p, 0, 4, 3, -1) == 0
    assert spans(mm) == [(0, 3, 0)] and is_free(world, tail) and rss(mm) == (3, 0)
    assert call(syscalls.sys_mremap, p, 0, 3, 6, -1) == 0
    assert spans(mm) == [(0, 6, 0)] and call(syscalls.user_access, p, 5, False) == 0
    check_quiescent(world)


# -- swapoff ----------------------------------------------------------------------------------


def test_swapoff_brings_every_page_back(machine: Any) -> None:
    """swap out, then swapoff: try_to_unuse reads the slot back, unuse_pte maps it (count
    +1, mapcount +1, anon_rss +1, swap_free), the swap cache drops it; the mm leaves
    init_mm.mmlist (drain_mmlist) and the data is intact."""
    world, procs = machine([ProcessSpec(1, [VmaSpec(0, 1)])])
    p = procs[1]
    call(syscalls.user_access, p, 0, True, 11)
    assert call(syscalls.kswapd_reclaim, 0) is False  # referenced: activated
    assert call(syscalls.kswapd_reclaim, 0) is False  # swap cache + writeback
    assert call(syscalls.kswapd_reclaim, 0) is True  # freed
    assert type(pte_of(p.mm, 0)) is SwapPte and list_members(world.mmlist) == [p.mm]
    assert rss(p.mm) == (0, 0)
    assert call(syscalls.swapoff) == 0
    page = page_at(world, p.mm, 0)
    assert ledger(page) == (1, 1) and rss(p.mm) == (1, 0)
    assert not any(world.swap_map) and world.swapper_space.page_tree == {}
    assert list_empty(p.mm.mmlist) and list_members(world.mmlist) == []
    assert call(syscalls.user_access, p, 0, False) == 11
    check_quiescent(world)


# -- the real flaws of V2 as posted, each with its fix -------------------------------------------


def _migrate_after_split(machine: Any, fixes: list[str]) -> KernelFinding | None:
    _, p = four_pages(machine)
    with inject(lookup(fixes)):
        assert call(syscalls.sys_mprotect, p, 2, 2, PROT_READ) == 0
        sched = RandomScheduler(0)
        sched.new_execution()

        async def migrator() -> None:
            await syscalls.sys_migrate_pages(p, 0, 1, False)

        out = run_direct(sched, [("m", migrator)])
    return out.finding  # type: ignore[return-value]


def test_flaw_efault_walk_after_split(machine: Any) -> None:
    """V2: remove_migration_ptes walks [2,4) at -EFAULT for a page of [0,2): wild-access.
    Fixed ("page migration: Fix up remove_migration_ptes()"): the migration succeeds."""
    found = _migrate_after_split(machine, [])
    assert found is not None and found.kind == "wild-access"
    assert found.function == "remove_migration_pte" and found.details["addr"] == -14
    assert _migrate_after_split(machine, ["remove-migration-ptes-efault"]) is None


def _migrate_highpte(machine: Any, fixes: list[str]) -> Any:
    world, p = four_pages(machine, config_highpte=True)
    with inject(lookup(fixes)):
        box: dict[str, Any] = {}

        async def migrator() -> None:
            box["rc"] = await syscalls.sys_migrate_pages(p, 0, 1, False)

        sched = RandomScheduler(0)
        sched.new_execution()
        out = run_direct(sched, [("m", migrator)])
    return out.finding, world


def test_flaw_pte_unmap_unlock_value_under_highpte(machine: Any) -> None:
    """CONFIG_HIGHPTE: V2's pte_unmap_unlock(pte, ptl) leaves KM_PTE0 mapped and the next
    remove_migration_pte on that CPU BUGs in kmap_atomic (CONFIG_DEBUG_HIGHMEM). Without
    HIGHPTE the slip is invisible; with the fix the slot is free again."""
    found, _ = _migrate_highpte(machine, [])
    assert found is not None and found.kind == "kmap-misuse"
    assert found.function == "remove_migration_pte"
    found, world = _migrate_highpte(machine, ["remove-migration-pte-ptep"])
    assert found is None and world.kmap_slots == {}


def test_flaw_mmlist_circle_hangs_swapoff(machine: Any, monkeypatch: Any) -> None:
    """B forks C while B's pte is a migration entry (MOVE_ALL through A): C is list_add'ed
    next to B, which is on no list. C's page is then swapped out: C stays off
    init_mm.mmlist, and swapoff reports the hang. With the fix C joins no list at fork and
    init_mm.mmlist when it swaps; swapoff empties the area."""

    def scenario(fixes: list[str]) -> KernelFinding | None:
        world, parent, child, _ = forked_pair(machine)
        gate = {"unmapped": False, "forked": False}
        real = migrate.try_to_unmap

        async def unmap_and_wait(pg: Any, migration: bool) -> int:
            ret = await real(pg, migration)
            gate["unmapped"] = True
            while not gate["forked"]:
                await cond_resched()
            return ret

        with inject(lookup(fixes)):
            monkeypatch.setattr(migrate, "try_to_unmap", unmap_and_wait)

            async def migrator() -> None:
                await syscalls.sys_migrate_pages(parent, 0, 1, True)

            async def forker() -> None:
                while not gate["unmapped"]:
                    await cond_resched()
                await syscalls.sys_fork(child, 3)
                gate["forked"] = True

            sched = RandomScheduler(0)
            sched.new_execution()
            assert run_direct(sched, [("m", migrator), ("f", forker)]).finding is None
            monkeypatch.setattr(migrate, "try_to_unmap", real)
            grand = world.processes[3]
            call(syscalls.user_access, grand, 0, True, 5)  # C's own copy (COW)
            for _ in range(3):  # referenced, then swap cache + write, then freed
                call(syscalls.kswapd_reclaim, 0)
            assert type(pte_of(grand.mm, 0)) is SwapPte
            on_init_list = grand.mm in list_members(world.mmlist)
            assert on_init_list == bool(fixes)

            async def swapoff() -> None:
                await syscalls.swapoff()

            return _run(swapoff).finding  # type: ignore[return-value]

    found = scenario([])
    assert found is not None and found.kind == "swapoff-hang"
    assert scenario(["copy-one-pte-mmlist"]) is None


def _mremap_race(machine: Any, monkeypatch: Any, fixes: list[str]) -> str | None:
    """B mremaps [0,2) -> [40,42) while A's MOVE_ALL migration of their shared page 0 is
    between try_to_unmap and remove_migration_ptes; the walk runs entirely between
    move_ptes' clear of B:0 and its set of B:40."""
    world, procs = machine([ProcessSpec(1, [VmaSpec(0, 4)])], pages_per_node=10)
    a = procs[1]
    for addr in range(4):
        call(syscalls.user_access, a, addr, True, 10 + addr)
    b = call(syscalls.sys_fork, a, 2)
    gate = {"unmapped": False, "cleared": False, "walked": False}
    patch = inject(lookup(fixes))
    patch.__enter__()  # the spies below wrap the fixed functions
    real_unmap, real_walk = migrate.try_to_unmap, migrate.remove_migration_ptes
    real_copy, real_set = mremap.copy_vma, mremap.set_pte_at

    async def unmap(page: Any, migration: bool) -> int:
        ret = await real_unmap(page, migration)
        gate["unmapped"] = True
        return ret

    async def copy_vma(*args: Any) -> Any:  # mremap starts once the entries are in
        while not gate["unmapped"]:
            await cond_resched()
        return await real_copy(*args)

    async def set_pte_at(mm: Any, addr: int, table: Any, pte: Any) -> None:
        if addr == 40 and not gate["cleared"]:
            gate["cleared"] = True
            while not gate["walked"]:
                await preempt()  # a CPU spinning under the ptls: not a sleep
        await real_set(mm, addr, table, pte)

    async def walk(old: Any, new: Any) -> None:
        if old is not new and not gate["walked"]:
            while not gate["cleared"]:
                await cond_resched()
            await real_walk(old, new)
            gate["walked"] = True
            return
        await real_walk(old, new)

    try:
        monkeypatch.setattr(migrate, "try_to_unmap", unmap)
        monkeypatch.setattr(mremap, "copy_vma", copy_vma)
        monkeypatch.setattr(mremap, "set_pte_at", set_pte_at)
        monkeypatch.setattr(migrate, "remove_migration_ptes", walk)

        async def migrator() -> None:
            await syscalls.sys_migrate_pages(a, 0, 1, True)

        async def mover() -> None:
            await syscalls.sys_mremap(b, 0, 2, 2, 40)

        sched = RandomScheduler(0)
        sched.new_execution()
        out = run_direct(sched, [("migrator", migrator), ("mremap", mover)])
        if out.finding is not None:
            return out.finding.kind
        try:
            check_quiescent(world)
        except KernelFinding as exc:
            return exc.kind
    finally:
        monkeypatch.undo()
        patch.__exit__(None, None, None)
    return None


def test_flaw_unlocked_peek_misses_entry_moved_by_mremap(machine: Any, monkeypatch: Any) -> None:
    """V2's unlocked is_swap_pte peek: the walk sees B:0 cleared and B:40 not yet set, so
    M(P) lands at B:40 after the walk: a migration entry left for an unlocked page. With
    "mm: fix race between mremap and removing migration entry" the walk takes the ptl first,
    waits for move_ptes, and finds the entry at B:40. (The -EFAULT fix is applied in both:
    after the move, B's old vma does not cover the page.)"""
    v2 = _mremap_race(machine, monkeypatch, without("remove-migration-pte-locked"))
    assert v2 == "migration-entry-leak"


def test_flaw_unlocked_peek_gone_with_fix(machine: Any, monkeypatch: Any) -> None:
    """The same forced schedule cannot happen with the fix (the walk waits on the ptl that
    move_ptes holds, so move_ptes never sees "walked"): a livelock of the test's own
    spinning gate, not a finding of the kernel, and no entry left behind."""
    fixed = _mremap_race(machine, monkeypatch, ["all"])
    assert fixed in (None, "livelock")


def test_every_fix_names_a_canonical_scenario() -> None:
    from stress.scenarios import CANONICAL

    for fix in FIXES.values():
        assert fix.scenario in CANONICAL, fix.name
