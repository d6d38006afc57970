"""The known flaws of V2 as posted in the service: ``--fix`` / ``--fixes`` reach every command
and its worker processes, finding files record the fixes, ``repro`` replays with them, each
flaw has a reproducer in ``corpus/flaws`` that is found without its fix and gone with every
fix, and ``stress`` / ``nightly`` label what a known flaw explains, by execution."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from migfuzz.bugs import injected
from migfuzz.cli import main
from migfuzz.findings import FindingRecord, dedup_key, load
from migfuzz.flaws import candidates, explain
from migfuzz.history import History
from migfuzz.nightly import label_known_flaws
from migfuzz.replay import ContinueScheduler, replay_schedule, run_traced
from migfuzz.report_html import render
from target.fixes import FIXES, without

ROOT = Path(__file__).resolve().parent.parent
FLAWS = ROOT / "corpus" / "flaws"
KNOWN = ROOT / "corpus" / "known"


def stress_json(argv: list[str],
                capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    rc = main(["stress", "--json", *argv])
    return rc, json.loads(capsys.readouterr().out)


# -- corpus/flaws: one reproducer per flaw ------------------------------------------------------


def test_every_fix_has_a_reproducer_and_every_reproducer_a_fix() -> None:
    assert sorted(p.stem for p in FLAWS.glob("*.json")) == sorted(FIXES)


@pytest.mark.parametrize("name", sorted(FIXES))
def test_flaw_reproducer_is_found_without_its_fix_and_gone_with_every_fix(name: str) -> None:
    fix = FIXES[name]
    rec = load(FLAWS / f"{name}.json")
    assert rec.fixes == sorted(without(name)) and rec.bugs == []
    with injected([], without(name)):
        rep = replay_schedule(rec.scenario, rec.schedule, executor=rec.executor,
                              max_steps=rec.max_steps)
    assert rep.divergence is None and rep.outcome is not None
    assert rep.signature == rec.signature and rec.kind in fix.finding_kinds
    with injected([], ["all"]):
        out = run_traced(rec.scenario, ContinueScheduler(rec.schedule), executor=rec.executor,
                         max_steps=rec.max_steps)
    assert out.finding is None, out.finding
    # and the service's own judgement agrees: this flaw, decided by execution
    flaw = explain(rec)
    assert flaw is not None and flaw.fix == name and flaw.label == fix.label()


# -- labelling ----------------------------------------------------------------------------------


def test_a_catalog_bug_is_never_labelled_a_known_flaw(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A bug with the kind two flaws show (migration-entry-leak) is a new finding: exit 1,
    no label, listed apart from known flaws."""
    rec = load(KNOWN / "unlock-before-remove.json")
    assert {f.name for f in candidates(rec)} == {"remove-migration-pte-locked",
                                                  "copy-vma-rmap-order"}
    assert explain(rec) is None
    rc, summary = stress_json(["--runs", "20", "--jobs", "1", "--scenario", "migrate-vs-fault",
                               "--bug", "unlock-before-remove", "--out", str(tmp_path)], capsys)
    assert rc == 1 and summary["exit_code"] == 1
    assert summary["findings"] and all(f["known_flaw"] is None for f in summary["findings"])


def test_known_flaw_label_is_in_the_file_and_the_repro_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, summary = stress_json(["--runs", "10", "--jobs", "1", "--scenario", "migrate-split-vma",
                               "--out", str(tmp_path)], capsys)
    assert rc == 0
    (f,) = summary["findings"]
    assert f["kind"] == "wild-access"
    assert f["known_flaw"]["fix"] == "remove-migration-ptes-efault"
    assert "the recorded schedule replays in full" in f["known_flaw"]["how"]
    rec = load(f["file"])
    assert rec.known_flaw is not None and rec.known_flaw.label == f["known_flaw"]["label"]
    assert main(["repro", f["file"], "--no-timeline"]) == 1
    assert "known:     known flaw of V2 as posted: remove-migration-ptes-efault" in (
        capsys.readouterr().out)


# -- --fix / --fixes reach every command --------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_stress_applies_the_fixes_in_every_worker(jobs: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The -EFAULT walk's scenario: the flaw without its fix, nothing with it (--fix and
    --fixes all), with one process or with worker processes."""
    base = ["--runs", "16", "--jobs", jobs, "--scenario", "migrate-split-vma"]
    rc, v2 = stress_json([*base, "--out", str(tmp_path / "v2")], capsys)
    assert rc == 0 and [f["kind"] for f in v2["findings"]] == ["wild-access"]
    assert load(v2["findings"][0]["file"]).fixes == []
    for fixes in (["--fix", "remove-migration-ptes-efault"], ["--fixes", "all"]):
        rc, fixed = stress_json([*base, *fixes, "--out", str(tmp_path / "fixed")], capsys)
        assert rc == 0 and fixed["findings"] == [], fixes
        assert fixed["fixes"] == (["remove-migration-ptes-efault"] if "--fix" in fixes
                                  else sorted(FIXES))


def test_fix_requirements_are_applied_and_recorded(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fix = next(f for f in FIXES.values() if f.requires)
    rc, summary = stress_json(["--runs", "1", "--jobs", "1", "--fix", fix.name,
                               "--out", str(tmp_path)], capsys)
    assert rc in (0, 1)
    assert summary["fixes"] == sorted({fix.name, *fix.requires})


def test_repro_replays_with_the_fixes_the_file_records(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same reproducer, recorded with its flaw's fix too, no longer reproduces: repro
    applies the file's fixes (exit 0), not the default model's."""
    src = FLAWS / "remove-migration-pte-ptep.json"
    assert main(["repro", str(src), "--no-timeline"]) == 1
    d = json.loads(src.read_text())
    d["fixes"] = sorted(FIXES)
    d["key"] = dedup_key(d["signature"], d["bugs"], d["fixes"])  # consistent, not corrupt
    edited = tmp_path / "with-fix.json"
    edited.write_text(json.dumps(d))
    assert main(["repro", str(edited), "--no-timeline"]) == 0
    assert "NO LONGER REPRODUCES" in capsys.readouterr().out


def test_fixes_field_is_optional_and_part_of_the_key() -> None:
    d = json.loads((KNOWN / "missing-get-new.json").read_text())
    d.pop("digest", None)  # edited below on purpose: a digest would make each edit corrupt
    d.pop("fixes", None)
    d.pop("known_flaw", None)
    old = FindingRecord.from_json(d)
    assert old.fixes == [] and old.known_flaw is None and old.key == dedup_key(
        old.signature, old.bugs)
    fixed = ["remove-migration-pte-ptep"]
    new = FindingRecord.from_json(
        {**d, "fixes": fixed, "key": dedup_key(d["signature"], d["bugs"], fixed)})
    assert new.key != old.key and new.file_name() != old.file_name()
    assert "+fixes:remove-migration-pte-ptep" in new.key
    assert json.loads(new.dumps())["fixes"] == ["remove-migration-pte-ptep"]
    with pytest.raises(ValueError, match="fixes"):
        FindingRecord.from_json({**d, "fixes": "all"})
    with pytest.raises(ValueError, match="known_flaw"):
        FindingRecord.from_json({**d, "known_flaw": "yes"})
    with pytest.raises(ValueError, match="field key"):  # fixes edited in, key left: corrupt
        FindingRecord.from_json({**d, "fixes": fixed})


@pytest.mark.parametrize("argv", [
    ["stress", "--runs", "1", "--fix", "no-such-fix"],
    ["fuzz", "fuzz_scenario", "--seconds", "1", "--fix", "no-such-fix"],
    ["repro", str(KNOWN / "missing-get-new.json"), "--target", "fuzz_scenario",
     "--fix", "no-such-fix"],
    ["gate", "--fix", "no-such-fix"],
    ["nightly", "--minutes", "1", "--fix", "no-such-fix"],
])
def test_an_unknown_fix_is_a_one_line_usage_error(argv: list[str], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown fix 'no-such-fix'; known: all, " in err[0], err
    assert all(name in err[0] for name in FIXES)
    assert list(tmp_path.iterdir()) == []  # nothing run, nothing written


def test_fixes_none_contradicts_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stress", "--runs", "1", "--fixes", "none", "--fix", "all"]) == 2
    assert "--fixes none contradicts --fix" in capsys.readouterr().err


def test_fixes_lists_every_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fixes"]) == 0
    out = capsys.readouterr().out
    for f in FIXES.values():
        for text in (f.name, f.title, f.commit, f.date, f.breaks, *f.finding_kinds):
            assert text in out, text
        for req in f.requires:
            assert f"requires {req}" in out
    assert main(["fixes", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(FIXES)
    assert {r["name"]: r["requires"] for r in rows} == {
        f.name: list(f.requires) for f in FIXES.values()}


# -- nightly ------------------------------------------------------------------------------------


def test_nightly_labels_a_flaw_found_tonight_and_reports_it_as_known(tmp_path: Path) -> None:
    """A flaw's finding recorded without a label (a fuzz crash, a killed run's file) is
    labelled before the report, which shows it as known, not new."""
    rec = load(FLAWS / "copy-one-pte-mmlist.json")
    rec.known_flaw = None  # as a fuzz crash's file is before labelling
    with History(tmp_path / "h.sqlite") as h:
        night = h.start_night(budget_s=60, jobs=1, bugs=[], out_dir=str(tmp_path),
                              model_commit="test", tool_version="test")
        run = h.start_run(night=night, kind="fuzz", target="fuzz_scenario", seed=1, bugs=[],
                          jobs=1, budget_s=60, out_dir=str(tmp_path))
        h.record_finding(run, FLAWS / "copy-one-pte-mmlist.json", rec, hits=1)
        (row,) = h.findings()
        assert row["known_flaw"] is None
        labels = label_known_flaws(h, night)
        assert labels == [f"{rec.signature}: {FIXES['copy-one-pte-mmlist'].label()}"]
        (row,) = h.findings()
        assert row["known_flaw"] == FIXES["copy-one-pte-mmlist"].label()
        page, new, shown = render(h, night)
        assert new == [] and shown == [rec.key]
        assert "known: known flaw of V2 as posted: copy-one-pte-mmlist" in page
        assert "<th>upstream fixes</th><td>none (V2 as posted" in page
        assert h.trend_rows()[-1]["new"] == 0
        fixed = h.start_night(budget_s=60, jobs=1, bugs=[], out_dir=str(tmp_path),
                              model_commit="test", tool_version="test",
                              fixes=["remove-migration-pte-ptep"])
        page, _, _ = render(h, fixed)
        assert "<th>upstream fixes</th><td>remove-migration-pte-ptep</td>" in page


@pytest.mark.slow
def test_nightly_on_v2_reports_known_flaws_and_with_every_fix_nothing(tmp_path: Path) -> None:
    """Two short nights: on V2 as posted the flaws are found and labelled (exit 0: nothing
    new); with --fixes all the runs get the fixes (run.json) and find nothing."""
    def night(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "migfuzz.cli", "nightly", "--minutes",
                               "0.15", "--jobs", "2", "--out", str(out), *extra], cwd=tmp_path,
                              capture_output=True, text=True, timeout=180)

    v2 = night(tmp_path / "v2")
    assert v2.returncode == 0, v2.stdout + v2.stderr
    assert "0 new" in v2.stdout and "known flaw of V2 as posted" in v2.stdout
    with History(tmp_path / "v2" / "history.sqlite") as h:
        rows = h.findings()
        assert rows and all(r["known_flaw"] for r in rows)
    fixed = night(tmp_path / "fixed", "--fixes", "all")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    for spec in (tmp_path / "fixed").glob("runs/*/run.json"):
        assert json.loads(spec.read_text())["fixes"] == sorted(FIXES)
    with History(tmp_path / "fixed" / "history.sqlite") as h:
        assert h.findings() == []


def test_a_history_from_before_the_fixes_gets_their_columns(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "old.sqlite"
    with History(db) as h:
        h.db.execute("ALTER TABLE findings DROP COLUMN known_flaw")
        h.db.execute("ALTER TABLE nights DROP COLUMN fixes")
    with sqlite3.connect(db) as con:
        assert "known_flaw" not in {r[1] for r in con.execute("PRAGMA table_info(findings)")}
    with History(db) as h:
        assert "known_flaw" in {r[1] for r in h.query("PRAGMA table_info(findings)")}
        assert "fixes" in {r[1] for r in h.query("PRAGMA table_info(nights)")}


def test_a_fixed_campaign_counts_the_new_operations_it_ran(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The summary's operation counts (the Done-when of issue 10: with every fix, generated
    scenarios exercise mprotect, ranged munmap/mlock, mremap and swapoff, and find nothing);
    the same for any --jobs."""
    counts = []
    for jobs in ("1", "2"):
        rc, s = stress_json(["--runs", "120", "--jobs", jobs, "--scenario", "generated",
                             "--fixes", "all", "--out", str(tmp_path)], capsys)
        assert rc == 0 and s["findings"] == []
        counts.append(s["op_counts"])
    assert counts[0] == counts[1]
    for kind in ("mprotect", "munmap", "mlock", "mremap", "swapoff", "migrate"):
        assert counts[0].get(kind, 0) > 0, (kind, counts[0])
