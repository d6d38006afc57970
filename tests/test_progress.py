"""Progress oracles, count checks of never-freed pages, points after releases (issue 18).

Each test runs the real stress pipeline (``migfuzz stress`` or ``run_scenario``) on a model
with one deliberate mutation, the kind a refactoring slip makes, and checks that the default
stress reports it; without the oracle under test each mutant passes every safety check.
"""

from __future__ import annotations

import ast
import json
import pathlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mutants import mutant

from migfuzz.cli import main
from stress import run as run_mod
from stress.executors import run_direct
from stress.oracles import ZERO_PAGE_BIAS, check_quiescent
from stress.run import run_scenario
from stress.scenarios import canonical
from stress.schedulers import RandomScheduler
from target.kernel import KernelFinding, Released, spinlock_t
from target.kernel._lockdep import LockClass
from target.mm import memory, migrate, syscalls, tlb, vmscan
from target.mm.world import set_world

ROOT = pathlib.Path(__file__).resolve().parent.parent


def stress_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> Any:
    """``migfuzz stress --json --fixes all`` in this process (jobs 1), so a monkeypatched
    model applies; with the upstream fixes, so that V2's known flaws do not stop the runs
    before the mutant under test shows."""
    code = main(["stress", "--jobs", "1", "--out", str(tmp_path / "f"), "--json",
                 "--fixes", "all", *extra])
    out = json.loads(capsys.readouterr().out)
    assert out["exit_code"] == code
    return out


# -- progress of migration -----------------------------------------------------------------------


def test_migration_that_never_migrates_is_found_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """migrate_page returning -EAGAIN always keeps every safety invariant; the default stress
    reports it as no-progress within its first runs, and the summary's rate is 0."""

    async def migrate_page(newpage: Any, page: Any) -> int:
        return migrate.EAGAIN

    monkeypatch.setattr(migrate, "migrate_page", migrate_page)
    out = stress_json(tmp_path, capsys, "--runs", "20", "-x")
    assert out["exit_code"] == 1
    [f] = out["findings"]
    assert f["signature"] == "no-progress in progress"
    rates = out["migration"]["by_strategy"]
    assert rates and all(r["moved"] == 0 for r in rates.values())


def test_faithful_campaign_reports_migration_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Per strategy and per scenario, pages moved / attempted, in --json and in the table;
    the scenario mode of a default campaign is "mixed" (it used to say "generated")."""
    out = stress_json(tmp_path, capsys, "--runs", "40", "--executor", "direct")
    assert out["exit_code"] == 0 and out["scenario"] == "mixed"
    by_scenario = out["migration"]["by_scenario"]
    assert max(r["rate"] for k, r in by_scenario.items() if k != "generated") > 0.5
    for r in [*by_scenario.values(), *out["migration"]["by_strategy"].values()]:
        assert 0 <= r["moved"] <= r["attempted"] and r["rate"] == round(
            r["moved"] / r["attempted"], 4)
    main(["stress", "--jobs", "1", "--runs", "4", "--executor", "direct", "--fixes", "all",
          "--out", str(tmp_path / "g")])
    assert "migrated    by strategy:" in capsys.readouterr().out


def test_retry_limit_is_checked_as_the_kernel_states_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """12 passes of migrate_pages instead of 11 ("if (retry && pass++ < 10) goto redo")."""
    migrate_pages = mutant(migrate.migrate_pages, ("pass_ < 10", "pass_ < 11"))  # constant

    monkeypatch.setattr(migrate, "migrate_pages", migrate_pages)
    out = stress_json(tmp_path, capsys, "--runs", "20", "-x", "--executor", "direct")
    [f] = out["findings"]
    assert f["signature"] == "no-progress in progress"
    text = (Path(f["file"])).read_text()
    assert '"passes": 12' in text and '"expected": 11' in text


# -- progress of reclaim ---------------------------------------------------------------------------


def test_reclaim_that_never_frees_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """shrink_page_list that keeps every page (a safe no-op) is no-progress of reclaim."""

    async def shrink_page_list(page: Any) -> bool:
        return False

    monkeypatch.setattr(vmscan, "shrink_page_list", shrink_page_list)
    out = stress_json(tmp_path, capsys, "--runs", "20", "-x", "--executor", "direct",
                      "--scenario", "migrate-vs-swap-pin")
    [f] = out["findings"]
    assert f["signature"] == "no-progress in progress"
    assert "quiescent reclaim" in Path(f["file"]).read_text()


# -- counts of pages that are never freed -----------------------------------------------------


@pytest.fixture
def fault_world() -> Iterator[Any]:
    sc = canonical("tiny-migrate-fault")
    from stress.workload import build_world

    world, procs = build_world(sc)
    set_world(world)
    yield world, procs
    set_world(None)


def _call(body: Any) -> None:
    sched = RandomScheduler(0)
    sched.new_execution()
    assert run_direct(sched, [("t", body)]).finding is None


def test_leaked_zero_page_reference_is_a_finding(fault_world: Any) -> None:
    """A read fault maps the ZERO_PAGE with a reference; one reference too many (a dropped
    put_page in do_anonymous_page's recheck path) is a page-leak at quiescence."""
    world, procs = fault_world

    async def read() -> None:
        await syscalls.user_access(procs[1], 0, False)

    _call(read)
    zp = world.zero_page
    assert zp._count == ZERO_PAGE_BIAS + 1
    check_quiescent(world)
    zp._count += 1
    with pytest.raises(KernelFinding) as exc:
        check_quiescent(world)
    assert exc.value.kind == "page-leak" and "ZERO_PAGE" in exc.value.message


def test_dropped_put_page_on_zero_page_recheck_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mutant of the issue: do_anonymous_page's read path loses its put_page when the
    recheck under the ptl finds the pte already set. Two faults on one address race."""
    real_put = memory.put_page

    async def put_page(page: Any) -> None:
        if page.flags & memory.PG_reserved:
            return  # mutant: the ZERO_PAGE reference is never dropped
        await real_put(page)

    monkeypatch.setattr(memory, "put_page", put_page)
    # zap_pte_range drops the pte's reference through the mmu_gather (target.mm.tlb): the
    # same put_page of memory.c's, so the mutant covers it too.
    monkeypatch.setattr(tlb, "put_page", put_page)
    from stress.workload import ProcessSpec, Scenario, TaskSpec, VmaSpec
    from target.mm.world import WorldConfig

    sc = Scenario(WorldConfig(nodes=2, pages_per_node=4, swap_slots=0, config_swap=False),
                  [ProcessSpec(1, [VmaSpec(0, 2)]), ProcessSpec(2, [VmaSpec(0, 2)])],
                  [TaskSpec("a", [("read", 1, 0), ("exit", 1)]),
                   TaskSpec("b", [("read", 2, 0)])])
    found = set()
    for seed in range(10):
        sched = RandomScheduler(seed)
        sched.new_execution()
        f = run_scenario(sc, sched, executor="direct").finding
        if f is not None:
            found.add(f.kind)
    assert "page-leak" in found


def test_an_oracle_that_crashes_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """An oracle that raises while building its report (a mutant left a state no kernel has)
    is a finding with what it raised, not a harness error."""

    def crashes(world: Any) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(run_mod, "check_quiescent", crashes)
    sched = RandomScheduler(0)
    sched.new_execution()
    f = run_scenario(canonical("tiny-migrate-fault"), sched, executor="direct").finding
    assert f is not None and (f.kind, f.function) == ("bug", "quiescence")
    assert "IndexError" in f.message and "IndexError" in f.details["error"]


# -- points after releases -------------------------------------------------------------------

RELEASES = {"unlock", "up_read", "up_write", "unlock_page", "rcu_read_unlock"}


def _release_name(call: ast.Call) -> str | None:
    f = call.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    return name if name in RELEASES else None


def test_every_release_in_the_model_is_awaited() -> None:
    """In an ``async def`` of target/mm and target/kernel, a release is ``await``ed: that is
    the scheduling point after it. A bare call would silently drop the point."""
    bare = []
    seen = 0
    for path in sorted([*(ROOT / "target" / "mm").glob("*.py"),
                        *(ROOT / "target" / "kernel").glob("*.py")]):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Await) and isinstance(node.value, ast.Call) and (
                        _release_name(node.value)):
                    seen += 1
                if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and (
                        _release_name(node.value)):
                    bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert seen > 50, "the walk must see the awaited releases"
    assert not bare, "releases without their point: " + ", ".join(bare)


def test_a_release_is_a_scheduling_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between ``await spin_unlock`` and the next statement another task can run."""
    lock = spinlock_t(LockClass("test_lock", sleeping=False), "test_lock")
    order: list[str] = []

    async def a() -> None:
        await lock.lock()
        await lock.unlock()
        order.append("a after unlock")

    async def b() -> None:
        await lock.lock()
        order.append("b holds")
        await lock.unlock()

    class AlwaysSwitch:
        def new_execution(self) -> bool:
            return True

        def next_task(self, runnable: list[int], current: int | None, yielding: bool) -> int:
            return next((t for t in runnable if t != current), runnable[0])

    for enabled, first in ((True, "b holds"), (False, "a after unlock")):
        monkeypatch.setattr(Released, "enabled", enabled)
        order.clear()
        run_direct(AlwaysSwitch(), [("a", a), ("b", b)])  # type: ignore[arg-type]
        assert order[0] == first, (enabled, order)


@pytest.mark.slow
def test_get_after_unlock_swap_in_migration_entry_wait_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The mutant of the issue: swap ``get_page_locked(page)`` and ``table.ptl.unlock()`` in
    migration_entry_wait (the catalog's get-after-unlock). Only the point after the release
    makes it visible. Seed 0 finds it within 20,000 runs (about a minute here): the default
    campaign is diluted since by the vma operations and the flaws' scenarios, and it runs with
    the upstream fixes so that V2's own flaws do not end the campaign first."""

    async def migration_entry_wait(mm: Any, table: Any, address: int) -> None:
        await table.ptl.lock()
        pte = migrate.pte_read(table, address)
        if type(pte) is not migrate.SwapPte or not migrate.is_migration_entry(pte):
            await table.ptl.unlock()
            return
        page = migrate.migration_entry_to_page(pte)
        await table.ptl.unlock()
        migrate.get_page_locked(page)  # mutant: after the unlock
        await migrate.wait_on_page_locked(page)
        await migrate.put_page(page)

    monkeypatch.setattr(memory, "migration_entry_wait", migration_entry_wait)
    out = stress_json(tmp_path, capsys, "--runs", "20000", "-x", "--executor", "direct")
    [f] = out["findings"]
    assert f["signature"] == "use-after-free in get_page_locked"


# -- mmlist and read-back --------------------------------------------------------------------------


def test_mm_with_swap_entries_off_the_mmlist_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """try_to_unmap_one forgetting to put the mm on init_mm.mmlist (swapoff could never find
    its swap entries) leaves every other invariant intact; quiescence reports it."""

    from target.mm import rmap

    monkeypatch.setattr(rmap, "try_to_unmap_one",
                        mutant(rmap.try_to_unmap_one, ("list_add(mm.mmlist, w.mmlist)", "pass")))
    out = stress_json(tmp_path, capsys, "--runs", "200", "-x", "--executor", "direct",
                      "--scenario", "migrate-vs-swap-pin")
    [f] = out["findings"]
    assert f["signature"] == "swapoff-hang in try_to_unuse"
    assert "init_mm.mmlist" in Path(f["file"]).read_text()


def test_a_read_back_that_fails_with_free_memory_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """do_swap_page that never reads the page in (the access gives up as if OOM) used to
    skip the read-back's lost-write check silently."""

    async def read_swap_cache_async(entry: Any, nid: int) -> None:
        return None

    monkeypatch.setattr(memory, "read_swap_cache_async", read_swap_cache_async)
    out = stress_json(tmp_path, capsys, "--runs", "200", "-x", "--executor", "direct",
                      "--scenario", "migrate-vs-swap-pin")
    [f] = out["findings"]
    assert f["signature"] in ("no-progress in readback", "no-progress in progress")


def test_dirty_bit_lost_in_try_to_unmap_one_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """try_to_unmap_one without ``set_page_dirty`` for a dirty pte: a swap cache page stored
    to after swap-in is freed unwritten. The first swap-out never needs the transfer
    (add_to_swap dirties the page); the quiescent swap cycle (reclaim, store, reclaim) does,
    and the read-back finds the old value."""

    from target.mm import rmap

    monkeypatch.setattr(rmap, "try_to_unmap_one",
                        mutant(rmap.try_to_unmap_one, ("page.flags |= PG_dirty", "pass")))
    out = stress_json(tmp_path, capsys, "--runs", "200", "-x", "--executor", "direct",
                      "--scenario", "migrate-vs-swap-pin")
    [f] = out["findings"]
    assert f["signature"] == "lost-write in user_access"


# -- kernel objects no live structure reaches ------------------------------------------------------


def test_anon_vma_leaked_by_anon_vma_prepare_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """anon_vma_prepare allocating before its fast-path return (a survivor of the first
    mutation sample) leaks one anon_vma per fault on a vma that has one; no page, count or
    lock shows it. The anon_vma_cachep check at quiescence does, in the first runs."""

    from target.mm import rmap

    fast = "    if vma.anon_vma is not None:\n        return\n"
    monkeypatch.setattr(memory, "anon_vma_prepare",
                        mutant(rmap.anon_vma_prepare, (fast, "    anon_vma_alloc()\n" + fast)))
    out = stress_json(tmp_path, capsys, "--runs", "50", "-x", "--executor", "direct")
    [f] = out["findings"]
    assert f["signature"] == "object-leak in quiescence"
    assert "anon_vma_cachep" in Path(f["file"]).read_text()


def test_lru_list_update_outside_lru_lock_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """isolate_lru_page dropping zone->lru_lock before taking the page off the LRU (a survivor
    of the first mutation sample: the lists are Python lists and never tear) is caught by the
    mm_inline helpers' lru_lock check in the first runs."""

    body = ("            get_page_locked(page)\n            page.flags &= ~PG_lru\n"
            "            del_page_from_lru_list(zone, page)\n")
    unlock = "        await zone.lru_lock.unlock()\n"
    isolate_lru_page = mutant(migrate.isolate_lru_page, (unlock, ""),
                              (body, unlock.replace("        ", "            ", 1) + body))
    from target.mm import mempolicy, move_pages

    for module in (migrate, mempolicy, move_pages):
        monkeypatch.setattr(module, "isolate_lru_page", isolate_lru_page)
    out = stress_json(tmp_path, capsys, "--runs", "50", "-x", "--executor", "direct")
    [f] = out["findings"]
    assert f["signature"] == "lock-not-held in del_page_from_lru_list"


def test_vma_that_is_never_freed_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """remove_vma taking the vma off the list without vm_area_free: a leak no count shows;
    the vm_area_cachep check at quiescence does."""
    from target.mm import mmap

    def remove_vma(mm: Any, vma: Any) -> None:
        mm.mmap.remove(vma)  # mutant: no vm_area_free

    monkeypatch.setattr(mmap, "remove_vma", remove_vma)
    out = stress_json(tmp_path, capsys, "--runs", "50", "-x", "--executor", "direct",
                      "--scenario", "migrate-vs-fork-exit")
    [f] = out["findings"]
    assert f["signature"] == "object-leak in quiescence"
    assert "vm_area_cachep" in Path(f["file"]).read_text()


def test_mm_user_never_dropped_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """do_fork without the mmput that balances get_task_mm(parent): the parent's mm outlives
    its last thread (exit_mmap never runs, its pages stay mapped by nobody's process) and no
    page count shows it; the mm_cachep check at quiescence does."""
    from target.mm import fork, syscalls

    monkeypatch.setattr(syscalls, "do_fork",
                        mutant(fork.do_fork, ("    await mmput(oldmm)\n", ""), count=1))
    out = stress_json(tmp_path, capsys, "--runs", "50", "-x", "--executor", "direct",
                      "--scenario", "migrate-vs-fork-exit")
    [f] = out["findings"]
    assert f["signature"] == "object-leak in quiescence"
    assert "mm_users" in Path(f["file"]).read_text()
