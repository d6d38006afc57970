"""Pagevecs and the mmu_gather (issue 14): the windows they open, each shown under a forced
schedule, the A.19 ledger with the pagevec step, and the world options that switch them on.

A lazy world parks LRU additions in the adding CPU's pagevec (``pagevec_size``) and drops a
zapped page's reference in ``tlb_finish_mmu`` (``tlb_batch``); 0 keeps the prompt model every
earlier reproducer was recorded in.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from test_model_ledgers import call, forked_pair, ledger, page_at, run_ok
from test_model_ledgers import machine as machine  # a fixture, used by name

from stress.executors import run_direct
from stress.oracles import check_quiescent
from stress.run import run_scenario
from stress.scenarios import generate
from stress.schedulers import RandomScheduler
from stress.workload import ProcessSpec, Scenario, ScenarioError, TaskSpec, VmaSpec
from target.bugs import inject, lookup
from target.mm import migrate, mmap, move_pages, syscalls
from target.mm.types import PTRS_PER_PTE, Page, PG_active, PG_lru
from target.mm.world import World, WorldConfig


@pytest.fixture
def lazy(machine: Any) -> Callable[..., tuple[World, dict[int, syscalls.UserProcess]]]:
    """test_model_ledgers' machine (one process, a 4-page vma) with pagevecs and batching."""
    return functools.partial(machine, None, pagevec_size=14, tlb_batch=8)


def in_pagevec(world: World, page: Page) -> bool:
    return any(page in pv for pvecs in (world.lru_add_pvecs, world.lru_add_active_pvecs)
               for pv in pvecs.values())


class Scripted:
    """Run the lowest runnable tid, except that once ``switch()`` is true, ``then`` runs
    while it can: a forced interleaving decided by the model's own progress."""

    def __init__(self, switch: Callable[[], bool], then: int) -> None:
        self.switch = switch
        self.then = then

    def new_execution(self) -> bool:
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        if self.switch() and self.then in runnable:
            return self.then
        return runnable[0]


def run_tasks(sched: Scripted, *bodies: Callable[[], Awaitable[None]]) -> None:
    out = run_direct(sched, [(f"t{i}", b) for i, b in enumerate(bodies)])  # type: ignore[misc]
    assert out.finding is None, out.finding


# -- pagevecs -----------------------------------------------------------------------------------


def test_a_page_in_a_pagevec_fails_migration_until_lru_add_drain_all(
        lazy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """move_pages drains every CPU (migrate_prep), then CPU 1 faults the page in: the page
    sits in CPU 1's pagevec, off the LRU, with the pagevec's reference, so isolate_lru_page
    gives -EBUSY. The next move_pages' lru_add_drain_all puts it on the LRU and it moves."""
    world, procs = lazy()
    p = procs[1]
    call(syscalls.user_access, p, 1, True, 3)  # the page table exists: follow_page locks it
    drained: list[bool] = []
    real_prep = move_pages.migrate_prep

    async def prep() -> int:
        rc = await real_prep()
        drained.append(True)
        return rc

    monkeypatch.setattr(move_pages, "migrate_prep", prep)
    pm = [move_pages.PageToNode(0, 1)]

    async def migrator() -> None:
        await move_pages.do_move_pages(p.mm, pm, True)

    async def fault() -> None:
        await syscalls.user_access(p, 0, True, 5)

    # t0 (the migrator) runs until its drain is done; then t1 (a CPU of its own) faults.
    run_tasks(Scripted(lambda: bool(drained), 1), migrator, fault)
    page = page_at(world, p.mm, 0)
    assert pm[0].status == migrate.EBUSY
    assert world.lru_add_active_pvecs.get(1) == [page]  # CPU 1's pagevec, not CPU 0's
    assert ledger(page) == (2, 1) and not page.flags & PG_lru and page.nid == 0
    check_quiescent(world)  # a pagevec's reference is an explained one

    pm2 = [move_pages.PageToNode(0, 1)]
    assert call(move_pages.do_move_pages, p.mm, pm2, True) == 0
    assert pm2[0].status == 1
    moved = page_at(world, p.mm, 0)
    assert moved.nid == 1 and moved.data == 5
    # The old page went back through the migrator's pagevec (A.19 step 7): held only there.
    assert world.lru_add_pvecs.get(0) == [page] and ledger(page) == (1, 0)
    check_quiescent(world)


def test_a19_ledger_with_the_pagevec_step(lazy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reference A.19, steps 7 and 8 with pagevecs: move_to_lru(N) leaves N.count = 3 (the
    pagevec's reference) off the LRU; move_to_lru(P) leaves P.count 1, held by the pagevec
    only; the drain puts N on the active list (count 2 == mapcount) and frees P."""
    world, parent, child, P = forked_pair(lazy)
    pmm, cmm = parent.mm, child.mm
    # The parent's fault left P in CPU 0's pagevec: one reference more than the two ptes.
    assert ledger(P) == (3, 2) and in_pagevec(world, P) and not P.flags & PG_lru
    moves: list[tuple[int, int, bool, bool]] = []
    real_move = migrate.move_to_lru

    async def spy_move(page: Page) -> None:
        await real_move(page)
        moves.append((page.pfn, page.count, in_pagevec(world, page), bool(page.flags & PG_lru)))

    monkeypatch.setattr(migrate, "move_to_lru", spy_move)
    assert call(syscalls.sys_migrate_pages, parent, 0, 1, True) == 0
    N = page_at(world, pmm, 0)
    assert page_at(world, cmm, 0) is N and N.nid == 1
    # migrate_prep drained P first (step 1 could isolate it); steps 8 then 7:
    assert moves == [(N.pfn, 3, True, False), (P.pfn, 1, True, False)]
    assert ledger(N) == (3, 2) and ledger(P) == (1, 0) and P.mapping is None
    check_quiescent(world)

    async def drain() -> None:
        await migrate.lru_add_drain_all()

    run_ok(drain)
    assert ledger(N) == (2, 2) and N.flags & (PG_lru | PG_active) == PG_lru | PG_active
    assert N in world.zones[1].active_list
    assert P.count == 0 and P in world.zones[0].free_list
    assert not world.lru_add_pvecs and not world.lru_add_active_pvecs
    check_quiescent(world)


# -- mmu_gather ---------------------------------------------------------------------------------


def test_a_zapped_page_is_freed_in_tlb_finish_mmu_after_the_ptl(
        lazy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """munmap in a batching world: once the ptes are zapped and free_pgtables has run, the
    page has mapcount 0 and only the gather's reference, no ptl is held, and its mapping still
    names the anon_vma free_pgtables freed. Another CPU runs in exactly that window (the
    scheduler switches at tlb_finish_mmu) and sees it; tlb_finish_mmu then frees the page."""
    world, procs = lazy()
    p = procs[1]
    call(syscalls.user_access, p, 1, True, 9)

    async def drain() -> None:
        await migrate.lru_add_drain_all()

    run_ok(drain)  # the page on the LRU: count 1, the pte's
    page = page_at(world, p.mm, 1)
    anon_vma = page.mapping
    assert ledger(page) == (1, 1)
    window: list[bool] = []
    seen: dict[str, Any] = {}
    real_finish = mmap.tlb_finish_mmu

    async def finish(tlb: Any) -> None:
        window.append(True)
        await migrate.cond_resched()  # a point inside the window, for the other CPU
        await real_finish(tlb)
        seen["after"] = ledger(page)

    monkeypatch.setattr(mmap, "tlb_finish_mmu", finish)

    async def unmapper() -> None:
        await syscalls.sys_munmap(p, 0, PTRS_PER_PTE)

    async def observer() -> None:
        seen["during"] = (ledger(page), page in world.zones[0].active_list,
                          anon_vma.freed, [t.ptl.owner for t in p.mm.pgtables.values()])

    run_tasks(Scripted(lambda: bool(window), 1), unmapper, observer)
    assert seen["during"] == ((1, 0), True, True, [])
    assert seen["after"] == (0, 0) and page in world.zones[0].free_list
    check_quiescent(world)


def test_prompt_world_frees_a_zapped_page_under_the_ptl(lazy: Any) -> None:
    """tlb_batch 0 (tlb_fast_mode): the reference goes in zap_pte_range's own step, before
    free_pgtables: no gathered page survives the zap."""
    world, procs = lazy(tlb_batch=0, pagevec_size=0)
    p = procs[1]
    call(syscalls.user_access, p, 1, True, 9)
    page = page_at(world, p.mm, 1)
    freed_at: list[bool] = []
    real_free_pgtables = mmap.free_pgtables

    async def spy(mm: Any, vmas: Any) -> None:
        freed_at.append(page.count == 0)
        await real_free_pgtables(mm, vmas)

    mp = pytest.MonkeyPatch()
    mp.setattr(mmap, "free_pgtables", spy)
    try:
        assert call(syscalls.sys_munmap, p, 0, PTRS_PER_PTE) == 0
    finally:
        mp.undo()
    assert freed_at == [True]


# -- world options ------------------------------------------------------------------------------


def test_laziness_is_part_of_the_scenario_file() -> None:
    """A prompt world is written without the knobs (older files' form, digests unchanged),
    a lazy one with them; bounds are checked with a one-line message."""
    sc = Scenario(WorldConfig(pagevec_size=3, tlb_batch=2), [ProcessSpec(1, [VmaSpec(0, 2)])],
                  [TaskSpec("a", [("write", 1, 0, 1)])])
    d = sc.to_json()
    assert (d["world"]["pagevec_size"], d["world"]["tlb_batch"]) == (3, 2)
    assert Scenario.from_json(d).world == sc.world
    d["world"]["pagevec_size"] = 0
    d["world"]["tlb_batch"] = 0
    assert "pagevec_size" not in Scenario.from_json(d).to_json()["world"]
    old = {k: v for k, v in d["world"].items() if k not in ("pagevec_size", "tlb_batch")}
    assert Scenario.from_json({**d, "world": old}).world.pagevec_size == 0
    with pytest.raises(ScenarioError, match="pagevec_size"):
        Scenario.from_json({**d, "world": {**old, "pagevec_size": 15}})


def test_the_swarm_generator_draws_lazy_and_prompt_worlds() -> None:
    """Generated scenarios cover both, and a lazy one's run really goes through a pagevec
    and an mmu_gather (the trace has their events)."""
    worlds = [generate(seed).world for seed in range(40)]
    assert any(w.pagevec_size >= 2 for w in worlds) and any(w.pagevec_size == 0 for w in worlds)
    assert any(w.tlb_batch >= 2 for w in worlds) and any(w.tlb_batch == 0 for w in worlds)
    events: set[str] = set()
    for seed in range(40):
        sc = generate(seed)
        if sc.world.pagevec_size < 2 or sc.world.tlb_batch < 2:
            continue
        r = RandomScheduler(0)
        r.new_execution()
        out = run_scenario(sc, r, trace=True)
        assert out.finding is None, out.finding
        events |= {ev for _, _, ev, _ in out.events or []}
        if {"pagevec_add", "tlb_remove_page"} <= events:
            break
    assert {"pagevec_add", "tlb_remove_page", "lru_add"} <= events


@pytest.mark.parametrize("pagevec_size", [14, 0])
def test_the_progress_oracle_finds_a_migrate_prep_that_does_not_drain(pagevec_size: int) -> None:
    """A page parked in a pagevec counts as movable at quiescence, because migrate_prep must
    drain it: with the catalog's migrate-prep-without-drain injected (no lru_add_drain_all),
    the quiescent migration leaves the freshly written page behind and that is a finding; the
    faithful model moves it. In a prompt world (pagevec_size 0) the page is on the LRU at
    once, the drain has nothing to do and the bug cannot show: it needs the window."""
    sc = Scenario(WorldConfig(nodes=2, pages_per_node=4, swap_slots=0, config_swap=False,
                              pagevec_size=pagevec_size),
                  [ProcessSpec(1, [VmaSpec(0, 1)])],
                  [TaskSpec("user", [("write", 1, 0, 7)])])

    def outcome() -> Any:
        r = RandomScheduler(0)
        r.new_execution()
        return run_scenario(sc, r)

    assert outcome().finding is None
    with inject(lookup(["migrate-prep-without-drain"])):
        f = outcome().finding
    if pagevec_size:
        assert f is not None and f.kind == "no-progress" and "address 0" in f.message, f
    else:
        assert f is None, f
