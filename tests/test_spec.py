"""The address-space specification (stress/spec.py): every mm system call of the workload is
checked against what munmap/mprotect/mlock/mremap must return and leave, in its own mmap_sem
section; a model that gets one wrong is a ``syscall-mismatch`` finding of the default stress."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mutants import mutant

from migfuzz.cli import main
from stress import spec
from stress.run import run_scenario
from stress.schedulers import RandomScheduler
from stress.workload import ProcessSpec, Scenario, TaskSpec, VmaSpec, build_world, validate
from target.bugs import inject
from target.fixes import lookup
from target.mm import mremap, syscalls
from target.mm.world import WorldConfig, set_world

RW, RO, LK = (True, False), (False, False), (True, True)


def layout(*ranges: tuple[int, int, tuple[bool, bool]]) -> spec.Layout:
    return {a: f for lo, hi, f in ranges for a in range(lo, hi)}


# -- the specification itself, against 2.6.17's documented behaviour ----------------------------


def test_munmap_of_a_hole_is_fine_and_out_of_range_is_einval() -> None:
    lay = layout((0, 4, RW))
    assert spec.munmap(lay, 2, 4) == 0 and lay == layout((0, 2, RW))
    assert spec.munmap(lay, 10, 3) == 0 and lay == layout((0, 2, RW))
    assert spec.munmap(lay, 62, 3) == spec.EINVAL and spec.munmap(lay, 0, 0) == spec.EINVAL


def test_mprotect_and_mlock_stop_at_a_hole_keeping_what_came_before() -> None:
    """sys_mprotect / do_mlock walk the vmas in order and return -ENOMEM at the first hole;
    the vmas before it keep their new flags."""
    lay = layout((0, 2, RW), (3, 5, RW))
    assert spec.mprotect(lay, 0, 5, False) == spec.ENOMEM
    assert lay == layout((0, 2, RO), (3, 5, RW))
    assert spec.mlock(lay, 3, 2, True) == 0 and lay[3] == lay[4] == LK
    assert spec.mlock(lay, 2, 1, True) == spec.ENOMEM


def test_mremap_grows_in_place_moves_or_fails_as_2_6_17() -> None:
    lay = layout((0, 2, RW), (4, 6, RO), (6, 7, RW))
    # grow in place: the vma ends at 2 and [2, 4) is free
    assert spec.mremap(lay, 0, 2, 4, spec.MREMAP_MAYMOVE, -1, 2, 0) == 0
    assert lay == layout((0, 4, RW), (4, 6, RO), (6, 7, RW))
    # no room after [4, 6): moved to a free range at or above TASK_UNMAPPED_BASE, any one
    assert spec.mremap(lay, 4, 2, 3, spec.MREMAP_MAYMOVE, -1, 6, 40) is None
    assert lay == layout((0, 4, RW), (6, 7, RW), (40, 43, RO))
    # a returned address that was not free is reported against the first free one
    lay2 = layout((0, 1, RW), (1, 2, RO), (32, 34, RW))
    assert spec.mremap(lay2, 0, 1, 2, spec.MREMAP_MAYMOVE, -1, 1, 33) == 34
    # without MREMAP_MAYMOVE and no room: -ENOMEM, nothing changed
    lay3 = layout((0, 1, RW), (1, 2, RO))
    assert spec.mremap(lay3, 0, 1, 2, 0, -1, 1, 0) == spec.ENOMEM
    assert lay3 == layout((0, 1, RW), (1, 2, RO))
    # MREMAP_FIXED onto an overlapping range: -EINVAL
    assert spec.mremap(dict(lay), 0, 2, 2, 3, 1, 4, 0) == spec.EINVAL
    # across a vma boundary: -EFAULT
    assert spec.mremap(layout((0, 4, RW)), 0, 4, 5, 1, -1, 2, 0) == spec.EFAULT


# -- end to end: the check runs on every mm system call of a campaign -----------------------------


def test_a_model_that_forgets_the_shrink_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """do_mremap without "Always allow a shrinking remap: that just unmaps" (a survivor of
    the mutation sample before this check existed) leaves every count balanced; the default
    stress reports it at once."""
    shrink = "            await do_munmap(mm, addr + new_len, old_len - new_len)\n"
    monkeypatch.setattr(syscalls, "do_mremap",
                        mutant(mremap.do_mremap, (shrink, "            pass\n"), count=1))
    rc = main(["stress", "--jobs", "1", "--runs", "300", "-x", "--fixes", "all", "--json",
               "--executor", "direct", "--out", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1
    [f] = out["findings"]
    assert f["signature"] == "syscall-mismatch in spec"
    assert "mremap" in Path(f["file"]).read_text()


def test_fork_hands_the_child_the_parents_layout_unlocked() -> None:
    """dup_mmap copies the layout with both mmap_sems held; VM_LOCKED is not inherited, so the
    child's munlock is a no-op and its mprotect sees the parent's pages."""
    sc = Scenario(WorldConfig(pages_per_node=8),
                  [ProcessSpec(1, [VmaSpec(0, 3)], [(0, 1)])],
                  [TaskSpec("P", [("mlock", 1, 0, 2), ("fork", 1, 2)]),
                   TaskSpec("C", [("munlock", 2, 0, 3), ("mprotect", 2, 1, 2, 0)])],
                  name="spec-fork")
    validate(sc)
    with inject(lookup(["all"])):  # V2's -EFAULT walk after a split is not this test's
        for seed in range(30):
            sched = RandomScheduler(seed)
            sched.new_execution()
            out = run_scenario(sc, sched)
            assert out.finding is None, out.finding
    world, procs = build_world(sc)
    set_world(world)
    try:
        assert procs[1].mm is not None
        assert procs[1].mm.ghost_layout == layout((0, 3, RW))
    finally:
        set_world(None)


def test_the_check_sees_the_write_section(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook runs after down_write and before up_write: the mmap_sem is held for write."""
    seen: list[Any] = []
    real = syscalls._with_mmap_sem_write

    async def spy(p: Any, body: Any, spec_hook: Any = None) -> Any:
        def wrapped(mm: Any) -> Any:
            seen.append(mm.mmap_sem.writer is not None)
            return spec_hook(mm)

        return await real(p, body, wrapped if spec_hook is not None else None)

    monkeypatch.setattr(syscalls, "_with_mmap_sem_write", spy)
    sc = Scenario(WorldConfig(pages_per_node=8), [ProcessSpec(1, [VmaSpec(0, 3)], [])],
                  [TaskSpec("P", [("munmap", 1, 1, 1), ("mprotect", 1, 0, 1, 0)])],
                  name="spec-hook")
    sched = RandomScheduler(0)
    sched.new_execution()
    assert run_scenario(sc, sched).finding is None
    assert seen == [True, True]


def _stress(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> Any:
    main(["stress", "--jobs", "1", "--runs", "200", "-x", "--fixes", "all", "--json",
          "--executor", "direct", "--out", str(tmp_path), *extra])
    return json.loads(capsys.readouterr().out)


def test_mlock_that_leaves_pages_out_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """mlock_fixup without make_pages_present returns 0 with the range not resident."""
    from target.mm import mlock

    async def make_pages_present(*args: Any) -> int:
        return 0

    monkeypatch.setattr(mlock, "make_pages_present", make_pages_present)
    [f] = _stress(tmp_path, capsys, "--scenario", "generated")["findings"]
    assert f["signature"] == "syscall-mismatch in spec"
    assert "not resident" in Path(f["file"]).read_text()


def test_get_user_pages_that_gives_up_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """get_user_pages returning no page for a writable mapped address (with memory free):
    every pin silently fails, and nothing but the pin's specification notices."""

    async def get_user_pages(*args: Any) -> None:
        return None

    monkeypatch.setattr(syscalls, "get_user_pages", get_user_pages)
    [f] = _stress(tmp_path, capsys, "--scenario", "tiny-migrate-pin")["findings"]
    assert f["signature"] == "syscall-mismatch in spec"
    assert "get_user_pages" in Path(f["file"]).read_text()


def test_move_pages_that_reports_a_move_it_did_not_make_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """do_move_pages treating every page as already on its target node: no move, status =
    the node. The page mapped before and after is the same allocation on the old node."""
    from target.mm import move_pages

    monkeypatch.setattr(move_pages, "do_move_pages",
                        mutant(move_pages.do_move_pages, ("if page.nid == pp.node:", "if True:"),
                               count=1))
    scenario = Path(__file__).resolve().parent.parent / "corpus/scenarios/threads-move-pages.json"
    [f] = _stress(tmp_path, capsys, "--scenario", str(scenario))["findings"]
    assert f["signature"] == "syscall-mismatch in spec"
    assert "status" in Path(f["file"]).read_text()


def test_swapoff_that_loses_its_result_is_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def swapoff() -> None:
        return None  # mutant: sys_swapoff without "return err"

    monkeypatch.setattr(syscalls, "swapoff", swapoff)
    [f] = _stress(tmp_path, capsys, "--scenario", "migrate-fork-swapoff")["findings"]
    assert f["signature"] == "syscall-mismatch in spec"


def test_a_pin_that_failed_for_want_of_memory_is_legal_when_memory_is_free_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A campaign run (stress --runs 20000 --fixes all --jobs 2 --seed 22, 2026-12-01; a
    world with pagevecs and asynchronous swap I/O): a pin's COW fault found node 0 empty, and
    by the time the pin returned another CPU had freed pages, so the check's "free memory on
    every node" alone called the failure a mismatch. The check now also asks whether an
    allocation failed during the call: the same run ends clean, and with the old check it
    still shows the mismatch (the window is real)."""
    from migfuzz.bugs import injected
    from migfuzz.findings import load
    from migfuzz.strategies import make_scheduler
    from stress import spec
    from stress.run import run_scenario
    from target.mm.world import W

    rec = load(Path(__file__).parent / "data" / "pin-oom-freed-late.json")
    assert rec.kind == "syscall-mismatch" and "get_user_pages" in rec.message

    def run() -> Any:
        with injected([], rec.fixes):
            sched = make_scheduler(rec.strategy)
            sched.new_execution()
            return run_scenario(rec.scenario, sched, executor="direct")

    out = run()
    assert out.finding is None, out.finding
    monkeypatch.setattr(spec, "_memory_free",
                        lambda since: all(zone.free_list for zone in W().zones))
    old = run()
    assert old.finding is not None and old.finding.kind == "syscall-mismatch"
