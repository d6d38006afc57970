"""Asynchronous swap I/O (issue 14 item 3): bios completed by the interrupt actor.

Under forced schedules: the interrupt actor (task "irq") runs only when no other task can, so
a bio stays in flight for as long as the others have work: a swap-in's read across a whole
migration of the process, and a swap-out's write across a migration of the page it wrote,
which the faulter mapped again meanwhile (migrate_pages skips it while it is under writeback,
then waits for the completion). The delay bound of the world is honoured without a decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from fixed_schedulers import Lowest

from migfuzz.cli import main
from migfuzz.findings import load
from stress import scenarios
from stress.executors import run_direct
from stress.oracles import check_quiescent
from stress.run import run_scenario
from stress.schedulers import RandomScheduler, ReplayScheduler
from stress.workload import ProcessSpec, Scenario, TaskSpec, VmaSpec, build_world
from target.bugs import inject
from target.fixes import lookup
from target.mm import syscalls
from target.mm.page_io import swap_bio_irq
from target.mm.syscalls import UserProcess
from target.mm.types import MmStruct, Page, PG_uptodate, SwapPte
from target.mm.world import IO_DELAY_UNBOUNDED, World, WorldConfig, set_world


class IrqLast:
    """The lowest runnable tid, never the interrupt actor's while another task can run: its
    bios wait for as long as the others have work (or until one is due)."""

    def __init__(self, irq: int) -> None:
        self.irq = irq
        self.decisions = 0

    def new_execution(self) -> bool:
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        self.decisions += 1
        return next(tid for tid in runnable if tid != self.irq)


def solo(fn: Any) -> None:
    async def body() -> None:
        await fn()

    out = run_direct(Lowest(), [("setup", body)])
    assert out.finding is None, out.finding


def pte(mm: MmStruct, addr: int) -> Any:
    return mm.pgtables[0].ptes[addr]


class Swapped:
    """Process 1 maps [0, 4) and wrote 7 at 0 and 8 at 1, 9 at 2; address 0 is swapped out
    (its page freed, its data in a slot), by synchronous reclaim before the run."""

    def __init__(self, delay: int) -> None:
        sc = Scenario(WorldConfig(nodes=2, pages_per_node=8, swap_slots=4, swap_io_delay=delay),
                      [ProcessSpec(1, [VmaSpec(0, 4)])], [TaskSpec("unused", [("read", 1, 0)])])
        self.world: World
        self.world, procs = build_world(sc)
        set_world(self.world)
        self.p: UserProcess = procs[1]
        self.mm: MmStruct = self.p.mm  # type: ignore[assignment]
        for addr, value in ((0, 7), (1, 8), (2, 9)):
            solo(lambda a=addr, v=value: syscalls.user_access(self.p, a, True, v))
        for _ in range(12):  # the setup has no interrupt actor: its I/O is synchronous
            if type(pte(self.mm, 0)) is SwapPte and not self.world.swapper_space.page_tree:
                break
            solo(lambda: syscalls.kswapd_reclaim(0))
        self.entry = pte(self.mm, 0)
        assert type(self.entry) is SwapPte and not self.world.swapper_space.page_tree

    def cached(self) -> Page:
        return self.world.swapper_space.page_tree[self.entry.offset]


def fault_and_migrate(w: Swapped, after_migration: Callable[[dict[str, Any]], None],
                      ) -> dict[str, Any]:
    """The faulter reads address 0 (a swap-in: the read is submitted, the faulter sleeps on
    the page lock), the migrator migrates the process from node 0 to 1 and then records what
    ``after_migration`` looks at; the interrupt actor runs last (or when due)."""
    state: dict[str, Any] = {}

    async def faulter() -> None:
        state["got"] = await syscalls.user_access(w.p, 0, False)

    async def migrator() -> None:
        state["in_flight_before"] = dict(w.world.swapper_space.page_tree)
        state["moved"] = await syscalls.sys_migrate_pages(w.p, 0, 1, False)
        after_migration(state)

    out = run_direct(IrqLast(2), [("faulter", faulter), ("migrator", migrator),
                                 ("irq", swap_bio_irq)])
    assert out.finding is None, out.finding
    return state


def test_read_completion_delayed_across_a_whole_migration(world_cleanup: None) -> None:
    w = Swapped(IO_DELAY_UNBOUNDED)

    def after(state: dict[str, Any]) -> None:
        page = w.cached()
        state["after"] = (page.locked.is_set, bool(page.flags & PG_uptodate),
                          len(w.world.bio_queue))

    state = fault_and_migrate(w, after)
    assert state["in_flight_before"]  # the faulter's read was submitted first
    # The whole migration ran while the read was in flight: the page still locked, not
    # uptodate, its bio queued; the migration moved the process's two resident pages.
    assert state["after"] == (True, False, 1)
    assert state["moved"] == 0
    assert all(w.world.mem_map[pte(w.mm, a).pfn].nid == 1 for a in (1, 2))
    assert state["got"] == 7  # the read completed afterwards, with the slot's data
    check_quiescent(w.world)


def test_synchronous_world_reads_at_once(world_cleanup: None) -> None:
    """delay 0: the read completes inside swap_readpage, before the migration starts (the
    same schedule as above, against the disconnected feature)."""
    w = Swapped(0)

    def after(state: dict[str, Any]) -> None:
        state["queued"] = len(w.world.bio_queue)

    state = fault_and_migrate(w, after)
    assert state["got"] == 7 and state["queued"] == 0


def test_a_due_bio_runs_without_a_decision(world_cleanup: None) -> None:
    """delay 2: the read completes within two scheduling points of its submission though the
    scheduler never picks the interrupt actor: it is run at its due step."""
    w = Swapped(2)

    def after(state: dict[str, Any]) -> None:
        page = w.cached() if w.world.swapper_space.page_tree else None
        state["uptodate_after"] = page is None or bool(page.flags & PG_uptodate)

    state = fault_and_migrate(w, after)
    assert state["got"] == 7 and state["uptodate_after"]


def test_write_completion_delayed_across_a_migration_of_the_page(world_cleanup: None) -> None:
    """kswapd writes page P (address 1) out and unmaps it; the faulter maps it again from the
    swap cache while the write is in flight; the migrator meets P under writeback, skips it
    in pass 0, and sleeps on PG_writeback until the interrupt actor ends the write."""
    w = Swapped(IO_DELAY_UNBOUNDED)
    state: dict[str, Any] = {}

    async def kswapd() -> None:
        for _ in range(6):
            await syscalls.kswapd_reclaim(0)
            if w.world.bio_queue:
                break
        bio = w.world.bio_queue[0]
        state["P"] = bio.page

    async def faulter() -> None:
        while "P" not in state:
            await syscalls.kswapd_reclaim(1)  # a point; node 1 has nothing to reclaim
        state["got"] = await syscalls.user_access(w.p, 1, False)
        state["mapped_under_writeback"] = state["P"].writeback.is_set

    async def migrator() -> None:
        while "mapped_under_writeback" not in state:
            await syscalls.kswapd_reclaim(1)
        state["moved"] = await syscalls.sys_migrate_pages(w.p, 0, 1, False)

    out = run_direct(IrqLast(3), [("kswapd", kswapd), ("faulter", faulter),
                                  ("migrator", migrator), ("irq", swap_bio_irq)], trace=True)
    assert out.finding is None, out.finding
    assert state["got"] == 8 and state["mapped_under_writeback"]
    assert state["moved"] == 0
    P = state["P"]
    events = out.events or []
    isolated = next(i for i, (_, tid, e, f) in enumerate(events)
                    if tid == 2 and e == "get_page" and f["pfn"] == P.pfn)
    ended = next(i for i, (_, tid, e, f) in enumerate(events)
                 if tid == 3 and e == "bio_end" and f["pfn"] == P.pfn)
    unmapped = next(i for i, (_, tid, e, f) in enumerate(events)
                    if tid == 2 and e == "pte" and f["addr"] == 1)
    # isolated under writeback, skipped in pass 0, slept on PG_writeback: unmapped only after
    assert isolated < ended < unmapped
    # A swap cache page is unmapped to its swap entry (2.6.18 try_to_unmap_one), and the
    # cache now holds the new page, on node 1; P is freed.
    entry = pte(w.mm, 1)
    assert type(entry) is SwapPte
    new = w.world.swapper_space.page_tree[entry.offset]
    assert new is not P and new.nid == 1 and P.count == 0
    check_quiescent(w.world)


def test_generated_worlds_draw_the_io_delay() -> None:
    delays = {scenarios.generate(seed).world.swap_io_delay for seed in range(40)}
    assert delays == {0, 2, 16, IO_DELAY_UNBOUNDED}


def test_generated_async_worlds_run_their_bios_through_the_irq_task() -> None:
    """The campaign path: run_scenario spawns the interrupt actor in an asynchronous world,
    and the bios kswapd submits are completed by it (task "irq", after the scenario's), with
    every fix of V2's flaws applied, cleanly."""
    completed = 0
    with inject(lookup(["all"])):
        for seed in range(40):
            sc = scenarios.generate(seed)
            if sc.world.swap_io_delay == 0:
                continue
            sched = RandomScheduler(seed)
            sched.new_execution()
            out = run_scenario(sc, sched, trace=True)
            assert out.finding is None, (seed, out.finding)
            irq = len(sc.tasks)
            done = sum(1 for _, tid, e, _ in out.events or [] if e == "bio_end" and tid == irq)
            if done:  # the recorded decisions replay it exactly (due runs are no decisions)
                replay = ReplayScheduler(out.schedule)
                replay.new_execution()
                assert run_scenario(sc, replay, trace=True).trace_key == out.trace_key
            completed += done
            if completed >= 2:
                break
    assert completed >= 2


def test_a_finding_of_an_async_world_is_saved_loaded_and_replayed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A campaign finding whose schedule picks the interrupt actor (the tid after the
    scenario's tasks) is a valid finding file, and `migfuzz repro` replays it exactly. The
    scenario is generated seed 7 (swap_io_delay 2), V2 as posted: its known flaw
    remove-migration-ptes-efault shows in the first runs."""
    sc = scenarios.generate(7)
    assert sc.world.swap_io_delay == 2
    path = tmp_path / "sc.json"
    path.write_text(sc.dumps())
    out = tmp_path / "f"
    main(["stress", "--scenario", str(path), "--strategy", "random", "--runs", "10", "-x",
          "--executor", "direct", "--jobs", "1", "--out", str(out)])
    [f] = out.glob("*.json")
    rec = load(f)
    assert len(sc.tasks) in rec.schedule  # the interrupt actor was chosen at a decision
    capsys.readouterr()
    assert main(["repro", str(f)]) == 1  # 1: still reproduces
    assert "REPRODUCED (identical trace" in capsys.readouterr().out


def test_swapoff_sweep_is_not_woken_by_its_own_reads() -> None:
    """A campaign run (stress --runs 20000 --fixes all --jobs 2 --seed 21, 2026-12-01) in
    which swapoff, unable to unuse an exiting mm's slot, slept on another task's exit and was
    woken by the interrupt actor's going idle after each of its own reads: under PCT the
    exiting task never ran again and the run livelocked (50,000 points). The same scenario
    under the same PCT instance now ends (the sweep wakes on real progress only)."""
    from migfuzz.bugs import injected
    from migfuzz.findings import load
    from migfuzz.strategies import make_scheduler
    from stress.run import run_scenario

    rec = load(Path(__file__).parent / "data" / "livelock-async-swapoff.json")
    assert rec.kind == "livelock" and rec.scenario.world.swap_io_delay > 0
    assert rec.strategy.name == "pct"
    with injected([], rec.fixes):
        sched = make_scheduler(rec.strategy)
        sched.new_execution()
        out = run_scenario(rec.scenario, sched, executor="direct", max_steps=50_000)
    assert out.finding is None, out.finding
