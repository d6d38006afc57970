"""The failure-report path end to end: stress -> finding file -> repro -> identical trace.

Lesson 9 of the style guide: shuttle's replay round-trip test is ``#[ignore]``d at HEAD; ours
is in the fast suite and is never skipped. The bug it finds is planted by a test fixture (a
catalog entry registered for the test), so the test does not depend on which historical bugs
the catalog holds; it is injected *by name*, the same path ``--bug`` takes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import target.bugs
import target.mm.migrate as migrate_mod
from migfuzz.cli import main
from migfuzz.findings import FindingRecord, load
from migfuzz.minimize import minimize
from migfuzz.replay import check, replay_schedule
from migfuzz.strategies import StrategySpec
from target.kernel import BUG_ON

PLANTED = "test-planted-no-restore"
SCENARIO = "migrate-vs-fork-exit"


class PlantedBug:
    """migrate_page without ``remove_migration_ptes(page, page)`` on failure (V2 5/5's fix
    undone): the entries try_to_unmap installed outlive the page lock."""

    name = PLANTED

    @contextlib.contextmanager
    def inject(self) -> Iterator[None]:
        m = migrate_mod
        original = m.migrate_page

        async def migrate_page(newpage: Any, page: Any) -> int:
            BUG_ON(m.PageWriteback(page), "bug", "migrate_page: writeback must be complete")
            rc = await m.migrate_page_remove_references(
                newpage, page, 2 if m.page_mapping(page) is not None else 1)
            if rc:
                return rc  # planted: no remove_migration_ptes(page, page)
            m.migrate_page_copy(newpage, page)
            await m.remove_migration_ptes(page, newpage)
            return 0

        m.migrate_page = migrate_page  # type: ignore[assignment]
        try:
            yield
        finally:
            m.migrate_page = original  # type: ignore[assignment]


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register the planted bug in the catalog for this test (worker processes forked by
    the test inherit it)."""
    cat = getattr(target.bugs, "CATALOG", None)
    if isinstance(cat, dict):
        monkeypatch.setitem(cat, PLANTED, PlantedBug())
    else:
        monkeypatch.setattr(target.bugs, "CATALOG", {PLANTED: PlantedBug()}, raising=False)
    return PLANTED


def stress(out: Path, *extra: str) -> int:
    # Seed 1: its finding's schedule still applies, decision for decision, to the faithful
    # model (which has more points: the restore path it runs and the planted bug skips), so
    # the "no longer reproduces" test gets an exact replay rather than a drift verdict.
    return main(["stress", "--runs", "2000", "-x", "--jobs", "1", "--seed", "1",
                 "--scenario", SCENARIO,
                 "--strategy", "random", "--bug", PLANTED, "--out", str(out), *extra])


@pytest.fixture
def finding_file(planted: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert stress(tmp_path / "findings") == 1
    capsys.readouterr()
    files = sorted((tmp_path / "findings").glob("*.json"))
    assert len(files) == 1
    return files[0]


def test_stress_then_repro_gives_the_identical_trace(
    planted: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "findings"
    assert stress(out) == 1
    summary = capsys.readouterr().out
    [path] = sorted(out.glob("*.json"))
    assert f"migfuzz repro {path}" in summary
    rec = load(path)
    assert rec.bugs == [PLANTED]
    assert rec.kind in ("migration-entry-leak", "migration-entry-on-unlocked-page")
    assert rec.executor == "trio" and rec.hits >= 1 and rec.trace_hash.startswith("sha256:")

    # The CLI: exit 1 (still reproduces), the finding, its timeline, the commands.
    assert main(["repro", str(path)]) == 1
    text = capsys.readouterr().out
    assert "result: REPRODUCED (identical trace" in text
    assert rec.signature in text
    assert ">> migrate" in text and "unlock " in text and "pte " in text
    assert f"migfuzz repro {path}" in text
    assert f"pytest -p migfuzz.pytest_plugin {path}" in text

    # The same trace, on both executors, as the one recorded when it was found.
    for executor in ("trio", "direct"):
        v = check(rec, executor)
        assert v.status == "reproduced"
        assert v.deterministic and v.trace_matches, v.notes
        assert v.first.outcome is not None and v.first.outcome.schedule == rec.schedule


def _replays(rec: FindingRecord, executor: str, times: int) -> set[str | None]:
    hashes: set[str | None] = set()
    for _ in range(times):
        with PlantedBug().inject():
            r = replay_schedule(rec.scenario, rec.schedule, executor=executor,
                                max_steps=rec.max_steps)
        assert r.signature == rec.signature
        hashes.add(r.trace_hash)
    return hashes


@pytest.mark.parametrize("executor", ["direct", "trio"])
def test_repro_reproduces_10_of_10(finding_file: Path, executor: str) -> None:
    rec = load(finding_file)
    assert _replays(rec, executor, 10) == {rec.trace_hash}


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["direct", "trio"])
def test_repro_reproduces_100_of_100(finding_file: Path, executor: str) -> None:
    rec = load(finding_file)
    assert _replays(rec, executor, 100) == {rec.trace_hash}


def test_repro_reports_drift_when_the_recorded_trace_differs(
    finding_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = load(finding_file)
    rec.trace_hash = "sha256:" + "0" * 32  # as if recorded on another model (not edited:
    edited = tmp_path / "edited.json"    # written by migfuzz, so its digest agrees)
    edited.write_text(rec.dumps())
    assert main(["repro", "--no-timeline", str(edited)]) == 1
    out = capsys.readouterr().out
    assert "REPRODUCED (trace differs" in out and "DRIFT: same finding" in out


def test_repro_without_the_bug_no_longer_reproduces(
    finding_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = load(finding_file)
    rec.bugs = []  # the faithful model (the key and the digest follow)
    fixed = tmp_path / "fixed.json"
    fixed.write_text(rec.dumps())
    assert main(["repro", "--no-timeline", str(fixed)]) == 0
    out = capsys.readouterr().out
    assert "REPRODUCED" not in out
    assert "result: NO LONGER REPRODUCES" in out and "replay exactly" in out


@pytest.mark.parametrize("executor", ["direct", "trio"])
def test_a_schedule_that_no_longer_applies_is_drift_not_fixed(
    finding_file: Path, executor: str
) -> None:
    rec = load(finding_file)
    bad = replace(rec, schedule=[len(rec.scenario.tasks) + 5, *rec.schedule[1:]])
    # The strategy that found it still finds it on today's model: drift, still reproduces.
    v = check(bad, executor)
    assert v.status == "drift-reproduced" and v.reproduced
    assert v.first.divergence is not None and "not runnable" in v.first.divergence
    assert any(n.startswith("DRIFT:") for n in v.notes)
    # No strategy to re-run (a minimized file): drift, and never "fixed".
    v = check(replace(bad, strategy=StrategySpec("minimize", 0)), executor)
    assert v.status == "drift" and not v.reproduced
    assert "not evidence of a fix" in " ".join(v.notes)


def test_minimize_shrinks_and_the_result_still_reproduces(
    finding_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "min.json"
    assert main(["minimize", str(finding_file), "-o", str(out), "--search-runs", "4"]) == 0
    text = capsys.readouterr().out
    assert "before:" in text and "after:" in text
    rec, small = load(finding_file), load(out)
    assert small.signature == rec.signature and small.bugs == rec.bugs
    before = (*rec.scenario.size(), len(rec.schedule))
    after = (*small.scenario.size(), len(small.schedule))
    assert after < before and sum(after) < sum(before)
    assert small.origin["after"]["preemptions"] <= small.origin["before"]["preemptions"]
    assert main(["repro", "--no-timeline", str(out)]) == 1
    assert "identical trace" in capsys.readouterr().out


def test_minimize_api_reports_sizes(finding_file: Path) -> None:
    rec = load(finding_file)
    small, before, after = minimize(rec, source=str(finding_file), search_runs=2)
    assert (after.tasks, after.ops) <= (before.tasks, before.ops)
    assert after.preemptions <= before.preemptions
    assert small.trace_hash and small.schedule


def test_pytest_plugin_fails_while_the_finding_reproduces(finding_file: Path) -> None:
    rc = pytest.main(["-q", "-p", "migfuzz.pytest_plugin", "-p", "no:cacheprovider",
                      str(finding_file)])
    assert rc == pytest.ExitCode.TESTS_FAILED
