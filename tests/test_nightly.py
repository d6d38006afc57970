"""migfuzz nightly: the plan, the history database, recovery after a kill, the HTML report,
and (one fast end-to-end test) kill -9 of a running nightly losing nothing it had found."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from migfuzz import nightly
from migfuzz._errors import UsageError
from migfuzz.cli import main
from migfuzz.findings import load, write_atomic
from migfuzz.fuzz import TARGETS as FUZZ_TARGETS
from migfuzz.fuzz import artifact_record
from migfuzz.history import History, RateComparison
from migfuzz.nightly import RESERVED, CorpusIndex, RunSpec, harvest, plan, recover
from migfuzz.nightly._supervisor import _exclusive
from migfuzz.report_html import (
    hold_bars,
    line_chart_svg,
    lock_class,
    lock_graph,
    lock_graph_svg,
    render,
    swimlane_svg,
    write_report,
)
from stress import Event
from target.kernel import LockClass, LockFields
from target.mm.locking import ANON_VMA_LOCK, LRU_LOCK, MMAP_SEM, PG_LOCKED, PTL

ROOT = Path(__file__).resolve().parent.parent
KNOWN = ROOT / "corpus" / "known"
QUICK_BUGS = ["unlock-before-remove", "page-lock-under-anon-vma"]


def run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


# -- the plan ---------------------------------------------------------------------------------

@pytest.mark.parametrize("jobs", [1, 2, 3, 4, 5, 6, 8, 16])
def test_plan_uses_the_jobs_and_stays_within_the_budget(jobs: int) -> None:
    T = 3600.0
    lanes = plan(jobs, T)
    assert sum(lane.width for lane in lanes) == jobs  # never more processes than --jobs
    for lane in lanes:
        assert sum(i.seconds for i in lane.queue) == pytest.approx(T)
        assert all(i.jobs == lane.width for i in lane.queue if i.kind == "stress")
    items = [i for lane in lanes for i in lane.queue]
    assert {i.target for i in items if i.kind == "fuzz"} == set(FUZZ_TARGETS)
    stress = sum(i.seconds * i.jobs for i in items if i.kind == "stress")
    assert stress >= jobs * T / 2 - 1e-6  # the stress portfolio keeps at least half
    if jobs == 2:  # a 2-core machine runs two things at a time
        assert len(lanes) == 2 and [lane.width for lane in lanes] == [1, 1]


def test_lanes_share_their_time_and_fill_what_is_left(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    n = nightly.Nightly(seconds=120, jobs=2, bugs=[], out=tmp_path, db=tmp_path / "h.sqlite",
                        report=tmp_path / "r")
    started: list[tuple[int, nightly.Item]] = []

    def start(idx: int, lane: nightly.Lane, item: nightly.Item) -> None:
        started.append((idx, item))
        lane.busy = True

    monkeypatch.setattr(n, "_start", start)
    n.deadline = 120.0
    lanes = plan(2, 120.0)

    def step(now: float) -> tuple[int, nightly.Item] | None:
        before = len(started)
        lanes[1].busy = False
        for i, lane in enumerate(lanes):
            n._maybe_start(i, lane, now)
        return started[-1] if len(started) > before else None

    first = step(0.0)
    assert [(i, it.kind, it.target, it.seconds, it.jobs) for i, it in started] == [
        (0, "stress", "portfolio", 120.0, 1), (1, "fuzz", "fuzz_preempt", 30.0, 1)]
    assert first is not None
    nxt = step(45.0)  # fuzz_preempt took 15 s more than planned: the next three share 75 s
    assert nxt is not None and (nxt[1].target, nxt[1].seconds) == ("fuzz_scenario", 25.0)
    nxt = step(70.0)  # on time: the next two share 50 s
    assert nxt is not None and (nxt[1].target, nxt[1].seconds) == ("fuzz_schedule", 25.0)
    nxt = step(75.0)  # fuzz_schedule stopped at once (a crash): the last one gets the rest
    assert nxt is not None and (nxt[1].target, nxt[1].seconds) == ("fuzz_sequential", 45.0)
    nxt = step(85.0)  # ... and stopped too: the lane runs another stress campaign
    assert nxt is not None and (nxt[1].kind, nxt[1].seconds) == ("stress", 35.0)
    assert step(110.0) is None and lanes[1].done  # 10 s left: not worth starting anything


# -- the history database ---------------------------------------------------------------------

def _night_and_run(h: History, out: Path, kind: str = "stress", target: str = "portfolio",
                   bugs: list[str] | None = None) -> tuple[int, int]:
    night = h.start_night(budget_s=60, jobs=2, bugs=bugs or [], out_dir=str(out),
                          model_commit="test", tool_version="test")
    run = h.start_run(night=night, kind=kind, target=target, seed=1, bugs=bugs or [], jobs=1,
                      budget_s=60, out_dir=str(out))
    return night, run


def test_history_is_wal_and_records_findings_idempotently(tmp_path: Path) -> None:
    rec = load(KNOWN / "unlock-before-remove.json")
    with History(tmp_path / "h.sqlite") as h:
        assert h.query("PRAGMA journal_mode")[0][0] == "wal"
        night, run = _night_and_run(h, tmp_path)
        assert h.record_finding(run, KNOWN / "unlock-before-remove.json", rec, hits=3)
        assert not h.record_finding(run, KNOWN / "unlock-before-remove.json", rec, hits=5)
        assert not h.record_finding(run, KNOWN / "unlock-before-remove.json", rec, hits=4)
        (row,) = h.findings()
        assert row["key"] == rec.key and row["hits"] == 5 and row["first_night"] == night
        r = h.run(run)
        assert r is not None and (r.findings, r.hits) == (1, 5)
        run2 = h.start_run(night=night, kind="fuzz", target="fuzz_schedule", seed=2, bugs=[],
                           jobs=1, budget_s=60, out_dir=str(tmp_path))
        h.record_finding(run2, tmp_path / "other.json", rec, hits=2)
        assert h.findings()[0]["hits"] == 7  # summed over the runs that saw it
        assert [int(k["hits"]) for k in h.night_keys(night)] == [7]
    # a second connection (another process) sees every committed row
    with History(tmp_path / "h.sqlite") as h2:
        assert len(h2.findings()) == 1 and len(h2.runs()) == 2


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    History(db).close()
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = '99' WHERE name = 'schema'")
    con.commit()
    con.close()
    assert run_main(["nightly", "--minutes", "1", "--db", str(db),
                     "--out", str(tmp_path / "o")]) == 2


def test_corpus_index_explains_known_bugs_only_with_their_bug() -> None:
    idx = CorpusIndex()
    rec = load(KNOWN / "missing-get-new.json")
    assert idx.match(rec) == "corpus/known/missing-get-new.json"
    more = load(KNOWN / "missing-get-new.json")
    more.bugs = sorted([*rec.bugs, "page-lock-under-anon-vma"])
    assert idx.match(more) == "corpus/known/missing-get-new.json"  # bug among tonight's
    faithful = load(KNOWN / "missing-get-new.json")
    faithful.bugs = []
    assert idx.match(faithful) is None  # on the faithful model it is a new finding
    # ... unless corpus/regressions has it: then it is a fixed finding come back
    back = load(ROOT / "corpus" / "regressions" / "unlock-before-remove.json")
    assert idx.match(back) == "corpus/regressions/unlock-before-remove.json"


# -- harvesting and recovery after a kill -----------------------------------------------------

def _fake_killed_night(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Night 1 died mid-run: a stress run with a finding file and a fuzz run with a crash
    artifact, neither recorded in the database."""
    out = tmp_path / "out"
    db = out / "history.sqlite"
    stress_dir = out / "runs" / "n0001-01-stress"
    fuzz_dir = out / "runs" / "n0001-02-fuzz-fuzz_schedule"
    clean_dir = out / "runs" / "n0001-03-fuzz-fuzz_schedule"  # (on the faithful model)
    with History(db) as h:
        night = h.start_night(budget_s=60, jobs=2, bugs=QUICK_BUGS, out_dir=str(out),
                              model_commit="test", tool_version="test")
        h.start_run(night=night, kind="stress", target="portfolio", seed=1, bugs=QUICK_BUGS,
                    jobs=1, budget_s=60, out_dir=str(stress_dir))
        h.start_run(night=night, kind="fuzz", target="fuzz_schedule", seed=2,
                    bugs=QUICK_BUGS, jobs=1, budget_s=60, out_dir=str(fuzz_dir))
        h.start_run(night=night, kind="fuzz", target="fuzz_schedule", seed=3, bugs=[],
                    jobs=1, budget_s=60, out_dir=str(clean_dir))
    stress_dir.mkdir(parents=True)
    known = load(KNOWN / "page-lock-under-anon-vma.json")
    known.bugs = list(QUICK_BUGS)
    write_atomic(stress_dir / known.file_name(), known.dumps())
    write_atomic(stress_dir / "status.json", json.dumps({"execs": 123, "seconds": 1.5,
                                                         "exec_per_s": 82.0}))
    arts = fuzz_dir / "fuzz-fuzz_schedule" / "artifacts"
    arts.mkdir(parents=True)
    (arts / "crash-da39a3ee5e6b4b0d3255bfef95601890afd80709").write_bytes(b"")
    clean = clean_dir / "fuzz-fuzz_schedule" / "artifacts"
    clean.mkdir(parents=True)
    (clean / "timeout-0000").write_bytes(b"")  # clean on the faithful model: no finding
    return out, db, fuzz_dir


def test_recovery_records_what_a_killed_night_left_on_disk(tmp_path: Path) -> None:
    out, db, fuzz_dir = _fake_killed_night(tmp_path)
    with History(db) as h:
        night2 = h.start_night(budget_s=60, jobs=2, bugs=QUICK_BUGS, out_dir=str(out),
                               model_commit="test", tool_version="test")
        logged: list[str] = []
        got = recover(h, night2, CorpusIndex(), logged.append)
        keys = {r["key"] for r in h.findings()}
        assert set(got.new_keys) == keys and len(got.files) == 3
        assert keys == {
            "lock-order-inversion in lock_page [PG_locked -> anon_vma->lock] "
            "+bugs:page-lock-under-anon-vma,unlock-before-remove",
            "migration-entry-leak in unlock_page "
            "+bugs:page-lock-under-anon-vma,unlock-before-remove"}
        assert {r.status for r in h.runs()} == {"killed"}
        assert h.runs()[0].execs == 123  # numbers from the run's last status
        (n1,) = [n for n in h.nights() if n["id"] != night2]
        assert n1["status"] == "killed"
        # the artifact became a replayable finding file in its run directory
        files = [p for p in fuzz_dir.glob("*.json") if p.name not in RESERVED]
        assert len(files) == 1 and load(files[0]).bugs == sorted(QUICK_BUGS)
        statuses = {Path(r["path"]).name: r["status"] for r in h.query("SELECT * FROM files")}
        assert statuses["timeout-0000"] == "no-finding"
        # idempotent: a second rescan records nothing and changes nothing
        before = [tuple(r) for r in h.query("SELECT * FROM findings ORDER BY key")]
        assert recover(h, night2, CorpusIndex(), logged.append).files == []
        assert [tuple(r) for r in h.query("SELECT * FROM findings ORDER BY key")] == before
        # both are explained by the corpus's known reproducers, and shown in the report
        page, new, shown = render(h, night2)
        assert new == [] and set(shown) == keys
        assert "found by night 1" not in page  # known ones get no article
        assert all(html.escape(k.split(" +bugs")[0]) in page for k in keys)


def _plant(run_dir: Path) -> tuple[str, str]:
    """Two *.json a night did not find in ``run_dir``: a valid finding file whose finding does
    not fire (its bug taken out, key and all), and one edited after it was written. Returns
    (the first's key, the edited one's name)."""
    gone = load(KNOWN / "get-after-unlock.json")
    gone.bugs = []
    write_atomic(run_dir / "stray.json", gone.dumps())
    edited = json.loads((KNOWN / "get-after-unlock.json").read_text())
    edited["signature"] = "use-after-free in put_page"
    write_atomic(run_dir / "edited.json", json.dumps(edited))
    return gone.key, "edited.json"


def test_a_json_in_a_run_directory_is_a_finding_only_if_it_reproduces(tmp_path: Path) -> None:
    out, db, _ = _fake_killed_night(tmp_path)
    stress_dir = out / "runs" / "n0001-01-stress"
    stray_key, edited = _plant(stress_dir)
    with History(db) as h:
        night2 = h.start_night(budget_s=60, jobs=2, bugs=QUICK_BUGS, out_dir=str(out),
                               model_commit="test", tool_version="test")
        got = recover(h, night2, CorpusIndex(), lambda s: None)
        keys = {r["key"] for r in h.findings()}
        assert stray_key not in keys and all("put_page" not in k for k in keys)
        assert len(keys) == 2  # the genuine finding file and the artifact still count
        rejected = sorted(got.rejected)
        assert len(rejected) == 2
        assert rejected[0].startswith(f"{stress_dir / edited}: field signature:")
        assert rejected[1].startswith(f"{stress_dir / 'stray.json'}: does not reproduce "
                                      "(fixed): all 50 recorded decisions replay exactly "
                                      "and the finding does not fire")
        statuses = {Path(r["path"]).name: r["status"] for r in h.query("SELECT * FROM files")}
        assert statuses["stray.json"].startswith("invalid: does not reproduce (fixed)")
        assert statuses[edited].startswith("invalid: field signature")
        # recorded once: the next rescan neither replays nor lists them again
        assert recover(h, night2, CorpusIndex(), lambda s: None).rejected == []
    summary = nightly.NightSummary(night2, db, None, rejected=got.rejected)
    assert summary.exit_code == 3
    text = nightly.format_night(summary)
    assert "not findings: 2 file(s) in the run directories did not load or did not " \
           "reproduce" in text and "stray.json: does not reproduce (fixed)" in text
    assert summary.to_json()["rejected"] == got.rejected
    assert summary.to_json()["exit_code"] == 3
    # a rate drop changes no exit status: 3 stays 3, and alone it leaves 0
    drop = RateComparison("strategy:pct", night2, 1000, 100, night2 - 1, 1000, 900, -40.0)
    assert drop.dropped
    assert nightly.NightSummary(night2, db, None, rejected=got.rejected,
                                rates=[drop]).exit_code == 3
    assert nightly.NightSummary(night2, db, None, rates=[drop]).exit_code == 0


def test_harvest_skips_files_it_has_read(tmp_path: Path) -> None:
    _, db, _ = _fake_killed_night(tmp_path)
    with History(db) as h:
        run = h.runs()[0]
        assert len(harvest(h, run, CorpusIndex()).files) == 1
        assert harvest(h, run, CorpusIndex()).files == []
        # a rewrite (a campaign flushing a new hit count) is read again
        f = next(p for p in Path(run.out_dir).glob("*.json") if p.name not in RESERVED)
        rec = load(f)
        rec.hits = 40
        write_atomic(f, rec.dumps())
        assert harvest(h, run, CorpusIndex()).new_keys == []
        assert h.findings()[0]["hits"] == 40


# -- the report -------------------------------------------------------------------------------

def _db_with_a_new_finding(tmp_path: Path, name: str = "page-lock-under-anon-vma") -> tuple[
        History, int]:
    """A night whose stress run saved ``name``'s known reproducer, recorded as not explained
    by the corpus, as a new finding would be."""
    h = History(tmp_path / "h.sqlite")
    night, run = _night_and_run(h, tmp_path)
    rec = load(KNOWN / f"{name}.json")
    path = tmp_path / rec.file_name()
    write_atomic(path, rec.dumps())
    h.record_finding(run, path, rec, hits=4, corpus_match=None)
    h.update_run(run, execs=1000, seconds=10.0, exec_per_s=100.0, status="findings")
    h.end_night(night, "done")
    return h, night


def test_report_has_summary_trends_and_diagrams_of_new_findings(tmp_path: Path) -> None:
    h, night = _db_with_a_new_finding(tmp_path)
    index, new, shown = write_report(h, night, tmp_path / "report")
    assert len(new) == 1 and new == shown
    page = index.read_text()
    assert (tmp_path / "report" / f"night-{night:04d}.html").read_text() == page
    assert '<table id="summary-table">' in page and '<table id="runs">' in page
    assert page.count('class="trend"') == 3
    assert '<svg class="swimlane"' in page
    lanes = re.findall(r'<g class="lane" data-task="([^"]+)"', page)
    assert lanes == ["user", "migrator"]
    assert 'class="hold"' in page and 'class="finding-mark"' in page
    assert '<svg class="lock-graph"' in page
    inv = re.search(r'<g class="edge inverting" data-src="([^"]+)" data-dst="([^"]+)"', page)
    assert inv is not None
    assert (html.unescape(inv.group(1)), html.unescape(inv.group(2))) == (
        "anon_vma->lock", "PG_locked")
    file = load(KNOWN / "page-lock-under-anon-vma.json").file_name()
    assert f"migfuzz repro {tmp_path / file}" in page
    # self-contained: no scripts, nothing fetched from anywhere
    assert "<script" not in page.lower()
    urls = re.findall(r"(?:https?:)?//[^\s\"'<>)]+", page)
    assert set(urls) <= {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched
    assert not re.search(r"""(?<![\w-])(?:src|href)=["'](?!#|night-|findings/)""", page)
    copy = tmp_path / "report" / "findings" / file
    assert load(copy).key == new[0] and f'href="findings/{file}"' in page
    # a second night: the same key is known now, and has no article of its own
    h.mark_reported(shown, night)
    night2, run2 = _night_and_run(h, tmp_path)
    rec = load(KNOWN / "page-lock-under-anon-vma.json")
    h.record_finding(run2, tmp_path / file, rec, hits=1)
    page2, new2, _ = render(h, night2)
    assert new2 == [] and "known: reported on night 1" in page2
    assert '<svg class="swimlane"' not in page2
    h.close()


def _lk(step: int, tid: int, ev: str, cls: LockClass, **f: Any) -> Event:
    return Event(step, tid, ev, LockFields(cls, **f))


def test_swimlane_bars_follow_lock_and_unlock() -> None:
    ev = [_lk(1, 0, "lock", MMAP_SEM, lock="mm1.mmap_sem", read=True),
          _lk(2, 0, "lock", PTL, lock="mm1.ptl[0]"),
          Event(3, 1, "op", {"op": "migrate 1 0 1 0"}),
          _lk(4, 0, "unlock", PTL, lock="mm1.ptl[0]"),
          _lk(5, 1, "lock", PG_LOCKED, lock="page3.PG_locked", trylock=True),
          Event(6, 1, "finding", {"kind": "deadlock"})]
    bars = {(b.tid, b.lock): b for b in hold_bars(ev)}
    assert bars[(0, "mm1.ptl[0]")].cls == "pte_lock"  # the class the event carries
    assert (bars[(0, "mm1.ptl[0]")].start, bars[(0, "mm1.ptl[0]")].end) == (1, 3)
    assert bars[(0, "mm1.ptl[0]")].col == 1 and bars[(0, "mm1.mmap_sem")].col == 0
    assert bars[(0, "mm1.mmap_sem")].open_at_end and bars[(1, "page3.PG_locked")].open_at_end
    svg = swimlane_svg(ev, ["user", "migrator"], finding="deadlock in x", max_rows=3)
    assert svg.count('<g class="lane"') == 2 and "3 earlier events not shown" in svg
    assert 'class="finding-mark"' in svg


def test_lock_graph_edges_classes_and_the_inverting_edge() -> None:
    assert lock_class(_lk(1, 0, "lock", PG_LOCKED, lock="page12.PG_locked")) == "PG_locked"
    assert lock_class(_lk(1, 0, "lock", ANON_VMA_LOCK, lock="anon_vma3.lock")) == "anon_vma->lock"
    assert lock_class(_lk(1, 0, "lock", PTL, lock="mm2.ptl[1]")) == "pte_lock"
    assert lock_class(Event(1, 0, "op", {"op": "x"})) == "?"
    ev = [_lk(1, 0, "lock", MMAP_SEM, lock="mm1.mmap_sem", read=True),
          _lk(2, 0, "lock", ANON_VMA_LOCK, lock="anon_vma1.lock"),
          _lk(3, 0, "lock", LRU_LOCK, lock="node0.lru_lock", trylock=True),  # no edge *to* it
          _lk(4, 0, "lock", PTL, lock="mm1.ptl[0]")]
    details = {"classes": ["PG_locked", "anon_vma->lock"],
               "new_dependency": "anon_vma->lock -> PG_locked: user at step 5 ...",
               "existing_chain": ["PG_locked -> anon_vma->lock: documented in mm/rmap.c"]}
    g = lock_graph(ev, ["user"], "lock-order-inversion", details)
    edges = {(e.src, e.dst): e.role for e in g.edges}
    assert edges[("mm->mmap_sem", "anon_vma->lock")] == "observed"
    assert ("anon_vma->lock", "zone->lru_lock") not in edges
    assert edges[("zone->lru_lock", "pte_lock")] == "observed"  # a trylocked lock is a source
    assert edges[("anon_vma->lock", "PG_locked")] == "inverting"
    assert edges[("PG_locked", "anon_vma->lock")] == "documented"
    svg = lock_graph_svg(g, uid="t")
    assert 'class="edge inverting"' in svg and 'class="node involved"' in svg
    assert "no locks" in lock_graph_svg(lock_graph([], [], "deadlock", {}))


def test_line_chart_handles_gaps_and_single_nights() -> None:
    svg = line_chart_svg("x", ["1"], {"a": [5.0]})
    assert svg.count("<circle") == 1 and "<polyline" not in svg
    svg = line_chart_svg("x", ["1", "2", "3"], {"a": [1.0, None, 3.0], "b": [None] * 3})
    assert svg.count("<circle") == 2 and "<polyline" not in svg
    assert "no data yet" in line_chart_svg("x", [], {})


# -- the command ------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["nightly", "--minutes", "0"], "must be positive"),
    (["nightly", "--hours", "-1"], "expected a number >= 0"),
    (["nightly", "--jobs", "0"], "expected an integer from 1 to 64"),
    (["nightly", "--runs", "0"], "argument --runs: expected an integer from 1 to"),
    (["nightly", "--bug", "no-such-bug"], "unknown bug no-such-bug"),
])
def test_usage_errors(argv: list[str], message: str, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_one_nightly_per_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "h.sqlite"
    with _exclusive(db):
        assert run_main(["nightly", "--minutes", "1", "--db", str(db),
                         "--out", str(tmp_path / "o")]) == 2
    assert "another migfuzz nightly is running" in capsys.readouterr().err


# -- end to end -------------------------------------------------------------------------------

def _nightly_cmd(out: Path, minutes: float, *bugs: str) -> list[str]:
    cmd = [sys.executable, "-m", "migfuzz.cli", "nightly", "--minutes", str(minutes),
           "--jobs", "2", "--out", str(out)]
    for b in bugs:
        cmd += ["--bug", b]
    return cmd


def _nightly_runs_cmd(out: Path, runs: int, *more: str) -> list[str]:
    """A night of one job bounded by runs, not time: what it runs depends on no clock."""
    return [sys.executable, "-m", "migfuzz.cli", "nightly", "--runs", str(runs), "--jobs", "1",
            "--out", str(out), *more]


def _found_on_disk(out: Path) -> dict[str, str]:
    """Every finding that exists on disk: finding files and (decoded) crash artifacts."""
    found: dict[str, str] = {}
    for f in out.glob("runs/*/*.json"):
        if f.name not in RESERVED:
            rec = load(f)
            found[rec.key] = rec.signature
    for a in out.glob("runs/*/fuzz-*/artifacts/*"):
        spec = json.loads((a.parents[2] / "run.json").read_text())
        rec = artifact_record(a.read_bytes(), spec["target"], spec["bugs"], str(a),
                              fixes=spec.get("fixes", []))
        if rec is not None:
            found[rec.key] = rec.signature
    return found


def test_kill_9_midway_then_rerun_loses_nothing(tmp_path: Path) -> None:
    """kill -9 of the whole process group once the stress campaign has saved a finding and
    libFuzzer has written a crash artifact; the next nightly has every one of them in its
    database and its report."""
    out = tmp_path / "n"
    log = (tmp_path / "first.log").open("wb")
    proc = subprocess.Popen(_nightly_cmd(out, 0.5, *QUICK_BUGS), cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        t_end = time.monotonic() + 40
        while time.monotonic() < t_end:
            files = [f for f in out.glob("runs/*/*.json") if f.name not in RESERVED]
            arts = list(out.glob("runs/*/fuzz-*/artifacts/crash-*"))
            if files and arts:
                break
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            time.sleep(0.05)
        else:
            pytest.fail("no finding within 40 s: " + (tmp_path / "first.log").read_text())
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    found = _found_on_disk(out)
    assert found, "the bugs are found in the first second"
    second = subprocess.run(_nightly_cmd(out, 0.05, *QUICK_BUGS), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode in (0, 1), second.stdout + second.stderr
    with History(out / "history.sqlite") as h:
        keys = {r["key"] for r in h.findings()}
        assert set(found) <= keys, (set(found) - keys, second.stderr)
        first_night, second_night = h.nights()
        assert first_night["status"] == "killed" and second_night["status"] == "done"
        assert {r.status for r in h.runs(int(first_night["id"]))} == {"killed"}
        for key in found:
            (row,) = h.findings([key])
            assert Path(row["file"]).is_file()
    page = (out / "report" / "index.html").read_text()
    for sig in found.values():
        assert html.escape(sig) in page


@pytest.mark.slow
def test_short_nightly_on_the_faithful_model_is_clean(tmp_path: Path) -> None:
    """One job, every upstream fix, 200 runs per run (no clock decides what runs): the stress
    portfolio, then each fuzz target; no findings, exit 0."""
    out = tmp_path / "n"
    res = subprocess.run(_nightly_runs_cmd(out, 200, "--fixes", "all"), cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    with History(out / "history.sqlite") as h:
        runs = h.runs()
        assert [r.kind for r in runs] == ["stress"] + ["fuzz"] * len(FUZZ_TARGETS)
        assert [r.target for r in runs][1:] == list(FUZZ_TARGETS)
        assert {r.status for r in runs} == {"ok"}
        assert [r.execs for r in runs] == [200] * len(runs) and h.findings() == []
        assert all(r.coverage for r in runs if r.kind == "fuzz")
    page = (out / "report" / "index.html").read_text()
    assert "No findings tonight." in page and "0 new" in page
    assert not list(out.glob("runs/*/fuzz-*/corpus"))  # merged into OUT/corpus, removed


@pytest.mark.slow
def test_a_nightly_lists_files_that_do_not_reproduce_and_records_none(tmp_path: Path) -> None:
    """A killed night's run directory holding a stray and an edited finding file: the next
    nightly replays them, records neither, lists both and exits 3."""
    out, db, _ = _fake_killed_night(tmp_path)
    stray_key, edited = _plant(out / "runs" / "n0001-01-stress")
    res = subprocess.run(_nightly_runs_cmd(out, 10, "--fixes", "all"), cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 3, res.stdout + res.stderr
    assert "not findings: 2 file(s) in the run directories did not load or did not " \
           "reproduce" in res.stdout
    assert "stray.json: does not reproduce (fixed)" in res.stdout
    assert f"{edited}: field signature:" in res.stdout
    with History(db) as h:
        keys = {r["key"] for r in h.findings()}
    assert stray_key not in keys and len(keys) == 2


def test_runs_replaces_the_time_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    assert run_main(["nightly", "--runs", "5", "--minutes", "1",
                     "--out", str(tmp_path / "o")]) == 2
    assert "--runs replaces the time budget" in capsys.readouterr().err



def _run_spec(tmp_path: Path) -> RunSpec:
    return RunSpec(run=1, night=1, kind=nightly.RunKind.FUZZ, target="fuzz_schedule",
                   seconds=5.0, runs=None, jobs=1, bugs=(), fixes=(), seed=7,
                   db=str(tmp_path / "h.sqlite"), out_dir=str(tmp_path), corpus=str(tmp_path),
                   parent=os.getpid(), started=0.0)


@pytest.mark.parametrize("edit, problem", [
    (lambda d: d.update(seed="7"), "field 'seed' must be an integer, got '7'"),
    (lambda d: d.update(kind="bake"), "field 'kind' must be one of stress, fuzz"),
    (lambda d: d.pop("out_dir"), "field 'out_dir' is missing"),
    (lambda d: d.update(runs=0), "field 'runs' must be null or an integer >= 1"),
    (lambda d: d.update(extra=1), "unknown field 'extra'"),
], ids=["seed-a-string", "kind-unknown", "out-dir-missing", "runs-zero", "extra-field"])
def test_a_child_refuses_a_bad_run_spec(tmp_path: Path, edit: Callable[[dict[str, Any]], Any],
                                        problem: str) -> None:
    d = _run_spec(tmp_path).to_json()
    assert RunSpec.from_json(json.loads(json.dumps(d)), "run.json") == _run_spec(tmp_path)
    edit(d)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(d))
    with pytest.raises(UsageError, match=re.escape(f"{path}: ")) as info:
        nightly.child_main([str(path)])  # before it does anything: no file is written
    assert problem in str(info.value) and os.listdir(tmp_path) == ["run.json"]


@pytest.mark.slow
def test_a_bad_run_spec_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({**_run_spec(tmp_path).to_json(), "seed": "7"}))
    r = subprocess.run([sys.executable, "-m", "migfuzz.nightly", str(path)],
                       cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"migfuzz nightly: error: {path}: field 'seed'")
