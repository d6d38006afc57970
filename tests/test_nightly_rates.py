"""Migration rates across nights (issue 18): recorded by ``migfuzz nightly`` from the campaign
it ran, plotted by the report, and a drop against the previous night flagged.

The end-to-end test runs three reproducible nights (``--runs``: a fixed number of schedules
per stress run from each night's fixed seed, a fixed number of executions per fuzz run, no
wall clock in what is counted; the rates come from the stress run) into one database:
the faithful model twice (seed noise only: no flag), then a model whose ``migrate_page_add``
lost its ``page_mapcount(page) == 1`` case, so that ``sys_migrate_pages`` without
MPOL_MF_MOVE_ALL moves nothing. That mutant keeps every invariant and even the progress oracle
content (its quiescent migration uses MPOL_MF_MOVE_ALL): only the rate shows it. It reaches the
nightly's run processes the way any model change does, by what they import: a
``sitecustomize`` on their PYTHONPATH applies it before migfuzz starts.
"""

from __future__ import annotations

import html
import json
import os
import re
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import pytest

from migfuzz import nightly
from migfuzz.bugs import check_fixes
from migfuzz.campaign import Campaign, CampaignConfig
from migfuzz.cli import main
from migfuzz.findings import write_atomic
from migfuzz.history import (
    RATE_MIN_ATTEMPTS,
    RATE_Z,
    History,
    NightRates,
    compare_rates,
    two_proportion_z,
)
from migfuzz.nightly import CorpusIndex, NightSummary, format_night, recover
from migfuzz.report_html import render
from migfuzz.strategies import BASE_STRATEGIES

RUNS = 600  # schedules per night: ~1,000 pages per strategy, ~500 of generated scenarios

MUTANT = textwrap.dedent('''
    """Test-only model change: migrate_page_add without its page_mapcount(page) == 1 case."""
    import inspect

    from target.mm import mempolicy

    _src = inspect.getsource(mempolicy.migrate_page_add)
    assert " or page.mapcount == 1" in _src, "the mutated line moved"
    _ns = dict(vars(mempolicy))
    exec(_src.replace(" or page.mapcount == 1", ""), _ns)
    mempolicy.migrate_page_add = _ns["migrate_page_add"]
''')


def run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _night(out: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = run_main(["nightly", "--runs", str(RUNS), "--jobs", "1", "--fixes", "all",
                     "--out", str(out), "--json"])
    cap = capsys.readouterr()
    summary: dict[str, Any] = json.loads(cap.out)
    assert summary["exit_code"] == code, cap.err
    return summary


def _plot(page: str, kind: str) -> dict[str, dict[str, float]]:
    """The points of the report's rate chart for ``kind``: series -> night -> percent."""
    svg = re.search(rf'<svg class="trend rate-{kind}".*?</svg>', page, re.S)
    assert svg is not None, f"no rate chart per {kind}"
    out: dict[str, dict[str, float]] = {}
    for g in re.finditer(r'<g class="series" data-series="([^"]+)">(.*?)</g>', svg.group(0),
                         re.S):
        out[html.unescape(g.group(1))] = {
            x: float(y) for x, y in re.findall(r'<circle cx="[^"]+" cy="[^"]+" r="3.5" '
                                               r'fill="[^"]+" data-x="([^"]+)" '
                                               r'data-y="([^"]+)"', g.group(2))}
    return out


def _drop_rings(page: str, kind: str) -> list[str]:
    svg = re.search(rf'<svg class="trend rate-{kind}".*?</svg>', page, re.S)
    assert svg is not None
    return re.findall(r'<circle class="drop"[^>]*><title>([^<]+): dropped', svg.group(0))


def test_nightly_records_plots_and_flags_a_drop_of_the_migration_rate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "n"
    first = _night(out, capsys)
    second = _night(out, capsys)  # the same model again: seed noise only
    assert (first["exit_code"], second["exit_code"]) == (0, 0)
    assert first["rate_comparisons"] == [] and second["rate_drops"] == []
    compared = {f"{c['kind']}:{c['name']}": c for c in second["rate_comparisons"]}
    assert {"strategy:pct", "strategy:random"} <= {k for k, c in compared.items()
                                                   if c["z"] is not None}
    page2 = (out / "report" / "index.html").read_text()
    assert 'id="rate-drops" data-drops="0"' in page2 and 'class="drop"' not in page2

    mutant = tmp_path / "mutant"
    mutant.mkdir()
    (mutant / "sitecustomize.py").write_text(MUTANT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(mutant), os.environ.get("PYTHONPATH")) if p))
    third = _night(out, capsys)
    # no finding, no harness error: a rate drop alone leaves the exit status at 0
    assert third["exit_code"] == 0 and third["new"] == [] and third["known"] == 0
    drops = {f"{d['kind']}:{d['name']}": d for d in third["rate_drops"]}
    assert {"strategy:pct", "strategy:random", "scenario:generated"} <= set(drops)
    assert "scenario:migrate-vs-mremap" not in drops  # MPOL_MF_MOVE_ALL only: unchanged
    for d in drops.values():
        assert d["previous_night"] == second["night"] and d["z"] <= -RATE_Z
        assert d["previous_rate"] - d["rate"] >= 0.05

    with History(out / "history.sqlite") as h:
        # the database holds what each night's campaign counted, nothing recomputed ...
        for s in (first, second, third):
            (run,) = [r for r in h.runs(s["night"]) if r.kind == "stress"]
            assert run.execs == RUNS
            result = json.loads((Path(run.out_dir) / "result.json").read_text())
            assert h.night_migrations(s["night"]) == {
                k: tuple(v) for k, v in result["migrations"].items()}
            assert {k: {"attempted": a, "moved": m, "rate": round(m / a, 4)}
                    for k, (a, m) in h.night_migrations(s["night"]).items()} == {
                f"{kind}:{name}": r for kind in ("strategy", "scenario")
                for name, r in s["migration"][f"by_{kind}"].items()}
        # ... and that count is the campaign's own: the same seed and runs in this process
        (run1,) = [r for r in h.runs(first["night"]) if r.kind == "stress"]
        cfg = CampaignConfig(seed=run1.seed, runs=RUNS, strategy="portfolio",
                             executor="direct", fixes=tuple(check_fixes(["all"])),
                             out=str(tmp_path / "again"), members=BASE_STRATEGIES)
        again = Campaign(cfg).run().migrations
        assert h.night_migrations(first["night"]) == {k: tuple(v) for k, v in again.items()}
        counts = {s["night"]: h.night_migrations(s["night"]) for s in (first, second, third)}
        text = format_night(NightSummary(
            third["night"], out / "history.sqlite", None, migrations=counts[third["night"]],
            rates=compare_rates(h.migration_trend(), third["night"])))
    assert f"RATE DROP  strategy pct: {drops['strategy:pct']['previous_rate']:.0%}" in text
    assert text.count("RATE DROP") == len(drops)

    page = (out / "report" / "index.html").read_text()
    flag = re.search(r'<tr id="rate-drops" class="flag" data-drops="(\d+)">(.*?)</tr>', page,
                     re.S)
    assert flag is not None and int(flag.group(1)) == len(drops)
    assert "strategy pct" in flag.group(2)
    plot = _plot(page, "strategy")
    assert set(plot) == {"pct", "random"}
    for name, points in plot.items():
        assert points == {str(n): pytest.approx(100 * m / a) for n, c in counts.items()
                          for a, m in [c[f"strategy:{name}"]]}
    assert sorted(_drop_rings(page, "strategy")) == ["pct", "random"]
    assert "generated" in _drop_rings(page, "scenario")
    assert _plot(page, "scenario")["migrate-vs-mremap"] == {
        str(n): 100.0 for n in counts}
    rows = dict(re.findall(r'<tr data-series="([^"]+)" data-dropped="(\d)"', page))
    assert {k for k, v in rows.items() if v == "1"} == set(drops)


# -- the comparison ---------------------------------------------------------------------------

def _n(night: int, counts: dict[str, tuple[int, int]], fixes: str = '["all"]') -> NightRates:
    return NightRates(night, "[]", fixes, counts)


def test_a_drop_needs_significance_size_and_enough_pages() -> None:
    base = {"strategy:a": (1000, 900), "strategy:b": (1000, 900), "strategy:c": (50, 50),
            "scenario:x": (10**6, 900_000)}
    trend = [_n(1, base), _n(2, {"strategy:a": (1000, 700),  # 90% -> 70%: a drop
                                 "strategy:b": (1000, 880),  # 2 points: noise
                                 "strategy:c": (50, 0),  # too few pages to compare
                                 "scenario:x": (10**6, 890_000)})]  # tiny, "significant"
    got = {c.series: c for c in compare_rates(trend, 2)}
    assert got["strategy:a"].dropped and got["strategy:a"].z == pytest.approx(
        two_proportion_z(700, 1000, 900, 1000))
    assert not got["strategy:b"].dropped and got["strategy:b"].z is not None
    assert got["strategy:c"].z is None and not got["strategy:c"].dropped
    assert got["scenario:x"].z is not None and got["scenario:x"].z < -RATE_Z
    assert not got["scenario:x"].dropped  # 1 point is not worth a flag
    rise = compare_rates([_n(1, {"strategy:a": (1000, 700)}),
                          _n(2, {"strategy:a": (1000, 900)})], 2)
    assert rise[0].z is not None and rise[0].z > 0 and not rise[0].dropped
    assert RATE_MIN_ATTEMPTS <= 1000


def test_the_baseline_is_the_latest_night_of_the_same_variant_with_that_series() -> None:
    trend = [_n(1, {"strategy:a": (1000, 900)}),
             _n(2, {"strategy:a": (1000, 500)}, fixes="[]"),  # another variant: skipped
             _n(3, {}),  # a night without stress counts: skipped
             _n(4, {"strategy:a": (20, 20)}),  # killed early: too few pages to be a baseline
             _n(5, {"strategy:a": (1000, 600), "strategy:new": (1000, 100)})]
    (c,) = compare_rates(trend, 5)  # strategy:new has no baseline yet
    assert (c.series, c.prev_night, c.dropped) == ("strategy:a", 1, True)
    assert compare_rates(trend, 2) == [] and compare_rates(trend, 9) == []
    (few,) = compare_rates(trend, 4)
    assert (few.prev_night, few.z) == (1, None)  # tonight has too few: shown, not judged
    (only,) = compare_rates([_n(1, {"strategy:a": (20, 20)}),
                             _n(2, {"strategy:a": (1000, 100)})], 2)
    assert (only.prev_night, only.z, only.dropped) == (1, None, False)


# -- the database ---------------------------------------------------------------------------

def test_a_database_from_before_the_migrations_table_is_upgraded(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    with History(db) as h:
        night = h.start_night(budget_s=60, jobs=1, bugs=[], out_dir=str(tmp_path),
                              model_commit="old", tool_version="old")
        h.start_run(night=night, kind="stress", target="portfolio", seed=1, bugs=[], jobs=1,
                    budget_s=60, out_dir=str(tmp_path))
        h.end_night(night, "done")
    con = sqlite3.connect(db)
    con.execute("DROP TABLE migrations")  # the layout an older migfuzz wrote
    con.commit()
    con.close()
    with History(db) as h:
        assert h.night_migrations(night) == {}
        assert [n.counts for n in h.migration_trend()] == [{}]
        page, _, _ = render(h, night)
        assert "No migration rate to compare yet" in page
        night2 = h.start_night(budget_s=60, jobs=1, bugs=[], out_dir=str(tmp_path),
                               model_commit="new", tool_version="new")
        run2 = h.start_run(night=night2, kind="stress", target="portfolio", seed=2, bugs=[],
                           jobs=1, budget_s=60, out_dir=str(tmp_path))
        h.record_migrations(run2, {"strategy:pct": [10, 7]})
        h.record_migrations(run2, {"strategy:pct": [20, 15]})  # a later report replaces
        assert h.night_migrations(night2) == {"strategy:pct": (20, 15)}
        assert h.query("SELECT value FROM meta WHERE name = 'schema'")[0][0] == "1"


def test_counts_of_a_killed_run_are_recovered_and_malformed_ones_ignored(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    with History(out / "history.sqlite") as h:
        night = h.start_night(budget_s=60, jobs=1, bugs=[], out_dir=str(out),
                              model_commit="test", tool_version="test")
        dirs = [out / "runs" / f"n0001-0{i}-stress" for i in (1, 2)]
        for i, d in enumerate(dirs):
            h.start_run(night=night, kind="stress", target="portfolio", seed=i, bugs=[],
                        jobs=1, budget_s=60, out_dir=str(d))
            d.mkdir(parents=True)
        # the last status file of a run killed midway, as _NightlyCampaign writes it
        write_atomic(dirs[0] / "status.json", json.dumps(
            {"execs": 40, "seconds": 1.0, "exec_per_s": 40.0,
             "migrations": {"strategy:pct": [30, 21], "scenario:generated": [30, 21]}}))
        write_atomic(dirs[1] / "status.json", json.dumps(
            {"execs": 40, "migrations": {"strategy:pct": [3, 9]}}))  # moved > attempted
        night2 = h.start_night(budget_s=60, jobs=1, bugs=[], out_dir=str(out),
                               model_commit="test", tool_version="test")
        recover(h, night2, CorpusIndex(), lambda _: None)
        assert h.night_migrations(night) == {"strategy:pct": (30, 21),
                                             "scenario:generated": (30, 21)}
        for bad in ({"migrations": "x"}, {"migrations": {"pct": [1, 1]}},
                    {"migrations": {"strategy:pct": [1]}}, {"migrations": {"a:b": [1.5, 1]}}):
            nightly.record_migrations(h, h.runs(night)[1].id, bad)
        assert h.query("SELECT COUNT(*) FROM migrations WHERE run = ?",
                       (h.runs(night)[1].id,))[0][0] == 0


def test_runs_option_bounds_every_planned_run_and_fills_nothing(tmp_path: Path) -> None:
    """--runs keeps the lanes of a time budget (stress and fuzz), each run bounded by N
    schedules or executions instead of seconds, and a lane whose queue is done stays done."""
    for jobs in (1, 2, 6):
        timed = nightly.plan(jobs, 600.0)
        counted = nightly.plan(jobs, 0.0, runs=50)
        assert [[(i.kind, i.target, i.jobs) for i in ln.queue] for ln in counted] == \
            [[(i.kind, i.target, i.jobs) for i in ln.queue] for ln in timed]
        assert {i.runs for ln in counted for i in ln.queue} == {50}
        assert {i.runs for ln in timed for i in ln.queue} == {None}
    lane = nightly.plan(2, 0.0, runs=50)[1]
    n = nightly.Nightly(seconds=600, jobs=2, bugs=[], out=tmp_path, db=tmp_path / "h.sqlite",
                        report=tmp_path / "r", runs=50)
    assert n.seconds == 0.0  # no time budget: nothing is shared by the clock
    started: list[nightly.Item] = []
    n._start = lambda idx, ln, it: started.append(it)  # type: ignore[method-assign]
    n.deadline = float("inf")
    targets = [i.target for i in lane.queue]
    while not lane.done:
        n._maybe_start(1, lane, now=10.0)
    assert [(i.kind, i.target, i.runs) for i in started] == [("fuzz", t, 50) for t in targets]
    # the queue ran once, in order: nothing fills the lane however early it ended
    n._maybe_start(1, lane, now=10.0)
    assert len(started) == len(targets)
