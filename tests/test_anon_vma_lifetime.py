"""anon_vma lifetime as 2.6.18 has it (reference A.9): SLAB_DESTROY_BY_RCU reuse of a freed
anon_vma, find_mergeable_anon_vma in anon_vma_prepare, and page_lock_anon_vma's RCU section.

The window of issue 14 item 4 is shown under a forced schedule: a page_lock_anon_vma caller
reads a page's ``mapping`` and is preempted; meanwhile the only vma of that anon_vma goes away
(anon_vma_unlink frees it) and another process's first fault allocates an anon_vma, which the
slab may hand out from the very memory just freed. The caller then locks a live anon_vma that
is not its page's: no KASAN report (the memory is a valid anon_vma), and the walk finds no pte
of the page, which is why the kernel of the time survives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from fixed_schedulers import Lowest

from stress import scenarios
from stress.executors import run_direct
from stress.oracles import check_quiescent
from stress.workload import ProcessSpec, Scenario, TaskSpec, VmaSpec, build_world
from target.kernel import HOOKS, kasan_check
from target.mm import syscalls
from target.mm.rmap import page_lock_anon_vma
from target.mm.swap import get_page, put_page
from target.mm.syscalls import UserProcess
from target.mm.types import AnonVma, MmStruct, Page, PresentPte
from target.mm.world import World, WorldConfig, set_world


class Box:
    """One world: process 1 maps [0, 4) and has written address 0 (page P), process 2 maps
    [8, 12) untouched; ``extra_vmas`` adds vmas to process 1."""

    def __init__(self, reuse: str, extra_vmas: Sequence[VmaSpec] = ()) -> None:
        sc = Scenario(WorldConfig(nodes=1, pages_per_node=8, swap_slots=0, config_swap=False,
                                  anon_vma_reuse=reuse),
                      [ProcessSpec(1, [VmaSpec(0, 4), *extra_vmas]),
                       ProcessSpec(2, [VmaSpec(8, 12)])],
                      [TaskSpec("unused", [("read", 1, 0)])])
        self.world: World
        self.world, procs = build_world(sc)
        set_world(self.world)
        self.p1: UserProcess = procs[1]
        self.p2: UserProcess = procs[2]
        self.solo(lambda: syscalls.user_access(self.p1, 0, True, 7))
        mm: MmStruct = self.p1.mm  # type: ignore[assignment]
        pte = mm.pgtables[0].ptes[0]
        assert type(pte) is PresentPte
        self.P: Page = self.world.mem_map[pte.pfn]
        av = mm.mmap[0].anon_vma
        assert av is not None
        self.av: AnonVma = av

    def solo(self, fn: Any) -> None:
        async def body() -> None:
            await fn()

        out = run_direct(Lowest(), [("t", body)])
        assert out.finding is None, out.finding


class StaleMapping:
    """Run the reader (tid 0) until it has read ``page->mapping`` inside page_lock_anon_vma,
    then the freer (tid 1) to its end, then the reader again.

    page_lock_anon_vma has two points inside its RCU section: ``preempt()`` before the read
    of ``page->mapping`` and ``spin_lock``'s, after it. The switch happens at the second; the
    test checks that the reader did come back with the stale anon_vma, so a change of those
    points fails the test instead of making it vacuous.
    """

    def __init__(self) -> None:
        self.rcu_points = 0

    def new_execution(self) -> bool:
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        reader = HOOKS.rq.tasks[0]
        if current == 0 and reader.atomic:
            self.rcu_points += 1
        if self.rcu_points >= 2 and 1 in runnable:
            return 1
        return runnable[0]


def stale_reader_race(box: Box) -> dict[str, Any]:
    state: dict[str, Any] = {}
    mm2: MmStruct = box.p2.mm  # type: ignore[assignment]

    async def reader() -> None:
        await get_page(box.P)  # a caller's reference (isolation, reclaim): P outlives the unmap
        anon_vma = await page_lock_anon_vma(box.P)
        state["locked"] = anon_vma
        if anon_vma is not None:
            state["head"] = list(anon_vma.head)
            state["freed_when_locked"] = anon_vma.freed
            await anon_vma.lock.unlock()
        await put_page(box.P)

    async def freer() -> None:
        await syscalls.sys_munmap(box.p1, 0)  # anon_vma_unlink frees av
        state["freed"] = box.av.freed
        await syscalls.user_access(box.p2, 8, True, 9)  # anon_vma_prepare: anon_vma_alloc
        state["new"] = mm2.mmap[0].anon_vma

    out = run_direct(StaleMapping(), [("reader", reader), ("freer", freer)])
    assert out.finding is None, out.finding
    check_quiescent(box.world)
    return state


def test_freed_anon_vma_reused_under_a_stale_page_lock_anon_vma(world_cleanup: None) -> None:
    """"lifo": the new anon_vma of process 2 is the memory just freed; the reader, which read
    P's mapping before the free, locks it: a live anon_vma of another process's vma."""
    box = Box("lifo")
    state = stale_reader_race(box)
    assert state["freed"]  # the free happened inside the reader's window
    assert state["new"] is box.av and box.av.reused == 1 and not box.av.freed
    assert state["locked"] is box.av and not state["freed_when_locked"]
    mm2: MmStruct = box.p2.mm  # type: ignore[assignment]
    assert state["head"] == [mm2.mmap[0]]  # the wrong anon_vma: P is not in its vmas
    assert "#1" in repr(box.av)


def test_without_reuse_the_reader_locks_the_freed_anon_vma(world_cleanup: None) -> None:
    """"never": the same schedule, and the reader locks the freed anon_vma (allowed: it was
    inside its RCU section when anon_vma_unlink freed it) and finds its list empty."""
    box = Box("never")
    state = stale_reader_race(box)
    assert state["locked"] is box.av and state["freed_when_locked"]
    assert state["head"] == []
    assert state["new"] is not box.av and box.av.reused == 0


@pytest.mark.parametrize("reuse", ["never", "lifo"])
def test_stale_access_is_kasan_until_reuse(reuse: str, world_cleanup: None) -> None:
    """Outside RCU, a stale access to a freed anon_vma is a use-after-free; once the slab has
    handed the memory out again it is a live anon_vma, and KASAN is silent, as the real one."""
    box = Box(reuse)
    box.solo(lambda: syscalls.sys_munmap(box.p1, 0))
    box.solo(lambda: syscalls.user_access(box.p2, 8, True, 9))

    async def stale() -> None:
        kasan_check(box.av, "stale page->mapping")

    out = run_direct(Lowest(), [("t", stale)])
    if reuse == "never":
        assert out.finding is not None and out.finding.kind == "use-after-free"
    else:
        assert out.finding is None, out.finding


def test_seeded_reuse_chooses_both_ways() -> None:
    """"seeded" draws reuse or fresh memory per allocation from slab_seed: over a few seeds,
    both happen, and each seed's choices are the same every time."""
    outcomes = set()
    for seed in range(8):
        first = _reuse_once(seed)
        assert _reuse_once(seed) == first
        outcomes.add(first)
    set_world(None)
    assert outcomes == {True, False}


def _reuse_once(seed: int) -> bool:
    sc = Scenario(WorldConfig(nodes=1, pages_per_node=8, swap_slots=0, config_swap=False,
                              anon_vma_reuse="seeded", slab_seed=seed),
                  [ProcessSpec(1, [VmaSpec(0, 4)]), ProcessSpec(2, [VmaSpec(8, 12)])],
                  [TaskSpec("unused", [("read", 1, 0)])])
    world, procs = build_world(sc)
    set_world(world)

    async def body() -> None:
        await syscalls.user_access(procs[1], 0, True, 7)
        await syscalls.sys_munmap(procs[1], 0)
        await syscalls.user_access(procs[2], 8, True, 9)

    out = run_direct(Lowest(), [("t", body)])
    assert out.finding is None, out.finding
    av = procs[2].mm.mmap[0].anon_vma  # type: ignore[union-attr]
    assert av is not None
    return av.reused == 1


def test_find_mergeable_anon_vma_shares_the_neighbours(world_cleanup: None) -> None:
    """An adjacent vma with contiguous pgoff gets its neighbour's anon_vma at its first write
    fault; one past a gap gets its own."""
    box = Box("never", [VmaSpec(4, 6), VmaSpec(7, 8)])
    mm: MmStruct = box.p1.mm  # type: ignore[assignment]
    box.solo(lambda: syscalls.user_access(box.p1, 5, True, 1))
    box.solo(lambda: syscalls.user_access(box.p1, 7, True, 1))
    adjacent, apart = mm.mmap[1], mm.mmap[2]
    assert (adjacent.vm_start, apart.vm_start) == (4, 7)
    assert adjacent.anon_vma is box.av and box.av.head == [mm.mmap[0], adjacent]
    assert apart.anon_vma is not None and apart.anon_vma is not box.av
    check_quiescent(box.world)


def test_generated_worlds_explore_every_reuse_policy() -> None:
    policies = {scenarios.generate(seed).world.anon_vma_reuse for seed in range(12)}
    assert policies == {"never", "lifo", "seeded"}


def test_scenario_files_carry_the_reuse_policy() -> None:
    sc = next(sc for sc in map(scenarios.generate, range(12))
              if sc.world.anon_vma_reuse == "seeded")
    d = sc.to_json()
    assert Scenario.from_json(d).world == sc.world
    del d["world"]["anon_vma_reuse"], d["world"]["slab_seed"]
    old = Scenario.from_json(d)  # a file from before the option: loads as it did then
    assert (old.world.anon_vma_reuse, old.world.slab_seed) == ("never", 0)
    assert "anon_vma_reuse" not in old.to_json()["world"]  # and is written as it was

