"""Swap readahead and remove_exclusive_swap_page (issue 14 item 3), each window under a forced
schedule, each against the same schedule with the feature off.

* ``swapin_readahead``: a swap-in miss reads the used slots of its cluster into the swap cache;
  those pages sit there mapped by no pte until a fault on their own slot finds them (a minor
  fault, no second read), and a migration then moves them as swap cache pages.
* ``remove_exclusive_swap_page`` from its three 2.6.17 callers: ``do_swap_page`` when swap is
  more than half full, the mmu_gather's ``free_swap_cache`` when an exit zaps the page, and
  ``swap_writepage`` when the ptes that reclaim made swap entries of were zapped before the
  write started (the write is then never issued).
"""

from __future__ import annotations

from typing import Any

import pytest
from fixed_schedulers import Lowest, Script

from stress.executors import run_direct
from stress.oracles import check_quiescent
from stress.run import run_scenario
from stress.scenarios import generate
from stress.schedulers import RandomScheduler
from stress.spec import _pte_at
from stress.workload import ProcessSpec, Scenario, ScenarioError, TaskSpec, VmaSpec, build_world
from target.bugs import inject
from target.fixes import lookup
from target.mm import page_io, syscalls
from target.mm.syscalls import UserProcess
from target.mm.types import (
    PTRS_PER_PTE,
    MmStruct,
    Page,
    PG_dirty,
    PG_lru,
    PG_swapcache,
    PresentPte,
    SwapPte,
)
from target.mm.world import W, World, WorldConfig, set_world


def solo(fn: Any) -> Any:
    """Run ``fn()`` as the only task; its result."""
    got: list[Any] = []

    async def body() -> None:
        got.append(await fn())

    out = run_direct(Lowest(), [("setup", body)])
    assert out.finding is None, out.finding
    return got[0]


class Swapped:
    """Process 1 maps [0, 3) holding 7, 8, 9, all three swapped out by synchronous reclaim
    (slots 1-3, in the order reclaim met them; the swap cache empty)."""

    def __init__(self, swap_slots: int = 8, page_cluster: int = 0, tlb_batch: int = 0) -> None:
        sc = Scenario(WorldConfig(nodes=2, pages_per_node=8, swap_slots=swap_slots,
                                  page_cluster=page_cluster, tlb_batch=tlb_batch),
                      [ProcessSpec(1, [VmaSpec(0, 3)])], [TaskSpec("unused", [("read", 1, 0)])])
        self.world: World
        self.world, procs = build_world(sc)
        set_world(self.world)
        self.p: UserProcess = procs[1]
        self.mm: MmStruct = self.p.mm  # type: ignore[assignment]
        for addr, value in ((0, 7), (1, 8), (2, 9)):
            solo(lambda a=addr, v=value: syscalls.user_access(self.p, a, True, v))
        for _ in range(30):
            if self.all_out():
                break
            solo(lambda: syscalls.kswapd_reclaim(0))
        assert self.all_out()

    def all_out(self) -> bool:
        return (all(type(self.pte(a)) is SwapPte for a in range(3))
                and not self.world.swapper_space.page_tree)

    def pte(self, addr: int) -> Any:
        return self.mm.pgtables[0].ptes[addr]

    def cached(self, addr: int) -> Page | None:
        entry = self.pte(addr)
        return self.world.swapper_space.page_tree.get(entry.offset)

    def page_at(self, addr: int) -> Page:
        pte = self.pte(addr)
        assert type(pte) is PresentPte
        return self.world.mem_map[pte.pfn]

    def resident(self, addr: int) -> Page | None:
        """The page holding ``addr``'s data: its pte's, or, for a swap entry, the swap
        cache's (V2 migrates a swap cache page by unmapping it to its swap entry)."""
        return self.page_at(addr) if type(self.pte(addr)) is PresentPte else self.cached(addr)


@pytest.mark.parametrize("page_cluster", [2, 0])
def test_a_readahead_page_waits_unmapped_in_the_swap_cache_then_migrates(
        world_cleanup: None, page_cluster: int) -> None:
    """Fault on 0 reads 1 and 2 ahead (a 4-slot cluster from slot 1: slot 0 is the header);
    the migration moves page 0 and cannot see the other two (no pte maps them); a load of 1
    maps its readahead page without a read; the next migration moves it, a swap cache page.
    With page_cluster 0 (the feature off) the same steps read 1 only when it is loaded."""
    w = Swapped(page_cluster=page_cluster)
    assert solo(lambda: syscalls.user_access(w.p, 0, False)) == 7
    ahead = {a: w.cached(a) for a in (1, 2)}
    if not page_cluster:
        assert ahead == {1: None, 2: None}
    else:
        for page in ahead.values():
            assert page is not None and page.mapcount == 0 and page.flags & PG_lru
            assert page.count == 1 and page.data in (8, 9)  # the cache's reference alone
    solo(lambda: syscalls.sys_migrate_pages(w.p, 0, 1, False))
    first = w.resident(0)
    assert first is not None and first.nid == 1
    for page in ahead.values():
        assert page is None or page.nid == 0  # unmapped: no migration walk meets it
    assert solo(lambda: syscalls.user_access(w.p, 1, False)) == 8
    if page_cluster:
        assert w.page_at(1) is ahead[1]  # a minor fault: the readahead page itself
    solo(lambda: syscalls.sys_migrate_pages(w.p, 0, 1, False))
    moved = w.resident(1)
    assert moved is not None and moved is not ahead[1]
    assert moved.nid == 1 and moved.flags & PG_swapcache and moved.data == 8
    check_quiescent(w.world)


@pytest.mark.parametrize("swap_slots", [4, 8])
def test_a_swap_in_leaves_the_swap_cache_when_swap_is_half_full(
        world_cleanup: None, swap_slots: int) -> None:
    """do_swap_page: three slots of four in use is vm_swap_full, and once the fault's
    swap_free leaves the cache as the slot's only user, remove_exclusive_swap_page takes the
    page out of the cache, dirty, and frees the slot. Three of eight is not full: the page
    stays in the cache (the 2.6.17 behaviour the model had before)."""
    w = Swapped(swap_slots=swap_slots)
    slot = w.pte(0).offset
    assert solo(lambda: syscalls.user_access(w.p, 0, False)) == 7
    page = w.page_at(0)
    if swap_slots == 4:
        assert not page.flags & PG_swapcache and page.flags & PG_dirty
        assert w.world.swap_map[slot] == 0 and page.count == 1
    else:
        assert page.flags & PG_swapcache and w.world.swap_map[slot] == 1 and page.count == 2
    check_quiescent(w.world)


@pytest.mark.parametrize("tlb_batch", [0, 8])
def test_an_exit_frees_a_mapped_swap_cache_page_and_its_slot(
        world_cleanup: None, tlb_batch: int) -> None:
    """free_swap_cache: the zap's reference and the cache's are the page's last and the slot
    has no other user, so tlb_remove_page (fast mode) or tlb_finish_mmu (a gather) takes the
    page out of the swap cache and it is freed with the exit; without free_swap_cache it
    would stay in the cache, count 1, until reclaim or swapoff found it."""
    w = Swapped(tlb_batch=tlb_batch)
    slot = w.pte(0).offset
    assert solo(lambda: syscalls.user_access(w.p, 0, False)) == 7
    page = w.page_at(0)
    assert page.flags & PG_swapcache and w.world.swap_map[slot] == 1
    solo(lambda: syscalls.sys_exit(w.p))
    assert page.count == 0 and not w.world.swapper_space.page_tree
    assert not any(w.world.swap_map)


def _exit_during_reclaim() -> Scenario:
    return Scenario(WorldConfig(nodes=2, pages_per_node=4, swap_slots=4),
                    [ProcessSpec(1, [VmaSpec(0, 1)], [(0, 10)])],
                    [TaskSpec("kswapd", [("swapout", 0)] * 3), TaskSpec("user", [("exit", 1)])])


def _unmapped_to_swap(pid: int, addr: int) -> bool:
    """try_to_unmap made the pte a swap entry and is done (the ptl and the anon_vma's lock
    free: the exit would otherwise wait for them inside kswapd's step)."""
    mm = getattr(W().processes.get(pid), "mm", None)
    if mm is None or type(_pte_at(mm, addr)) is not SwapPte:
        return False
    vma = mm.find_vma(addr)
    return (mm.pgtables[addr // PTRS_PER_PTE].ptl.owner is None and vma is not None
            and vma.anon_vma is not None and vma.anon_vma.lock.owner is None)


def _zapped(slot: int) -> bool:
    """The exit's zap dropped the swap pte's use of ``slot`` (the cache's is left) and its
    free_swap_and_cache is over (the page lock was kswapd's: its reference is dropped)."""
    page = W().swapper_space.page_tree.get(slot)
    return W().swap_map[slot] == 1 and page is not None and page.count == 2


@pytest.mark.parametrize("connected", [True, False])
def test_swap_writepage_drops_a_page_whose_swap_ptes_were_zapped(
        monkeypatch: pytest.MonkeyPatch, connected: bool) -> None:
    """kswapd unmaps the page (pte 0 := its swap entry) and stops before pageout; the process
    exits (the zap's free_swap_and_cache cannot lock the page: kswapd holds it); then
    swap_writepage finds the cache the slot's only user and the page otherwise unused:
    remove_exclusive_swap_page takes it out of the cache and nothing is written. With the
    call disconnected the write goes to the slot of a process that no longer exists."""
    calls: list[int] = []
    real = page_io.remove_exclusive_swap_page

    async def recorded(page: Page) -> int:
        calls.append(await real(page) if connected else 0)
        return calls[-1]

    monkeypatch.setattr(page_io, "remove_exclusive_swap_page", recorded)
    writes: list[int] = []
    monkeypatch.setattr(page_io, "set_page_writeback",
                        lambda page, real=page_io.set_page_writeback: (
                            writes.append(page.pfn), real(page))[1])
    script = Script(["kswapd", "user"], [(["kswapd"], lambda: _unmapped_to_swap(1, 0)),
                                         (["user"], lambda: _zapped(1))])
    script.new_execution()
    with inject(lookup(["all"])):
        out = run_scenario(_exit_during_reclaim(), script, executor="direct")
    assert script.finished and out.finding is None, out.finding
    assert calls == ([1] if connected else [0])
    assert writes == ([] if connected else [writes[0]])


def test_page_cluster_is_part_of_the_scenario_file() -> None:
    """Written only when set (older files and their digests unchanged), bounded with a
    one-line message naming the field."""
    sc = Scenario(WorldConfig(page_cluster=2), [ProcessSpec(1, [VmaSpec(0, 2)])],
                  [TaskSpec("a", [("write", 1, 0, 1)])])
    d = sc.to_json()
    assert d["world"]["page_cluster"] == 2 and Scenario.from_json(d).world == sc.world
    assert "page_cluster" not in Scenario(WorldConfig(), sc.processes, sc.tasks).to_json()["world"]
    with pytest.raises(ScenarioError, match="page_cluster"):
        Scenario.from_json({**d, "world": {**d["world"], "page_cluster": 4}})


@pytest.mark.slow
def test_the_swarm_generator_draws_readahead_worlds_that_read_ahead() -> None:
    """Generated worlds with swap come with and without readahead, and a run of one with it
    really reads a cluster ahead (the trace's swapin_readahead event), without a finding."""
    worlds = [generate(seed).world for seed in range(60)]
    assert any(w.page_cluster for w in worlds) and any(not w.page_cluster for w in worlds)
    assert all(not w.page_cluster for w in worlds if not w.config_swap)
    for seed in range(200):
        sc = generate(seed)
        if not sc.world.page_cluster:
            continue
        r = RandomScheduler(0)
        r.new_execution()
        with inject(lookup(["all"])):  # the flaws of V2 as posted are not what this tests
            out = run_scenario(sc, r, trace=True)
        assert out.finding is None, out.finding
        if any(ev == "swapin_readahead" for _, _, ev, _ in out.events or []):
            return
    raise AssertionError("no generated run read ahead")
