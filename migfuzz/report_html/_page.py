"""The page: a night's summary, trends, and each new finding with its diagrams. What it shows
is computed here; ``templates/page.html`` writes it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stress.workload import execution_task_names

from .. import __version__
from ..findings import FindingRecord, load, write_atomic
from ..history import (
    RATE_MIN_ATTEMPTS,
    RATE_MIN_DROP,
    RATE_Z,
    History,
    NightRates,
    RateComparison,
    RunRow,
    compare_rates,
)
from ..replay import check
from ._lockgraph import LockGraphPicture, lock_graph, lock_graph_picture
from ._svg import LineChart, line_chart
from ._swimlane import Swimlane, swimlane
from ._templates import render_page


@dataclass
class FindingView:
    row: sqlite3.Row
    new: bool
    hits_tonight: int
    file: str
    why_known: str = ""
    recovered_from: int | None = None
    hits_total: int = 0  # by the end of this night

    @property
    def anchor(self) -> str:
        """The id of its article (a hash: a signature is no HTML id)."""
        return f"f-{hashlib.sha256(str(self.row['key']).encode()).hexdigest()[:12]}"

    @property
    def bugs(self) -> list[str]:
        return list(json.loads(self.row["bugs"]))


def _best_file(hist: History, key: str, fallback: str,
               night: int | None = None) -> tuple[str, FindingRecord | None]:
    """The smallest reproducer among the files that recorded ``key`` (they all replay), by
    ``night`` and the nights before it if given (a later night's file is not that night's)."""
    best: tuple[tuple[int, int, int], str, FindingRecord] | None = None
    for s in hist.sightings(key):
        if night is not None and int(s["night"]) > night:
            continue
        try:
            rec = load(s["file"])
        except Exception:
            continue
        if best is None or rec.size() < best[0]:
            best = (rec.size(), str(s["file"]), rec)
    if best is None:
        try:
            return fallback, load(fallback)
        except Exception:
            return fallback, None
    return best[1], best[2]


def finding_views(hist: History, night: int) -> list[FindingView]:
    """This night's findings (seen by its runs, or recovered from a killed night that never
    reported them), each new or known, and why known: as they stood when that night ended,
    whatever later nights added (its report can be written again, ``migfuzz report``)."""
    tonight = {str(r["key"]): (int(r["hits"]), str(r["file"])) for r in hist.night_keys(night)}
    unreported = {str(r["key"]) for r in hist.unreported(night)
                  if int(r["first_night"]) <= night}
    keys = sorted(set(tonight) | unreported)
    total = hist.hits_through(night)
    views: list[FindingView] = []
    for row in hist.findings(keys):
        key = str(row["key"])
        hits, file = tonight.get(key, (0, str(row["file"])))
        if row["corpus_match"]:
            new, why = False, f"reproducer in {row['corpus_match']}"
        elif row["known_flaw"]:
            new, why = False, str(row["known_flaw"])
        elif row["reported_night"] is not None and int(row["reported_night"]) < night:
            new, why = False, (f"reported on night {row['reported_night']}, first seen "
                               f"{row['first_seen']}")
        else:
            new, why = True, ""
        rec_from = (int(row["first_night"]) if key not in tonight
                    and int(row["first_night"]) != night else None)
        if new:  # the file the article replays: the smallest reproducer of every sighting
            file = _best_file(hist, key, file, night)[0]
        views.append(FindingView(row, new, hits, file, why, rec_from, total.get(key, 0)))
    views.sort(key=lambda v: (not v.new, str(v.row["signature"])))
    return views


@dataclass
class Article:
    """A new finding's article: its facts, its replay and, from the replay's trace, its
    swimlane and lock-order graph (``page.html``)."""

    view: FindingView
    file: str
    attached: str = ""  # the copy beside the report, relative to it
    attach_error: str = ""
    unreadable: bool = False
    replay_error: str = ""
    status: str = ""
    tasks: int = 0
    ops: int = 0
    decisions: int = 0
    steps: int = 0
    swimlane: Swimlane | None = None
    graph: LockGraphPicture | None = None
    graph_note: str = ""


def _attach(attach: Path, file: str) -> tuple[str, str]:
    """Copy the finding file beside the report: (its link, relative to the report, or "";
    why it could not be copied, or "")."""
    try:
        write_atomic(attach / Path(file).name, Path(file).read_text(encoding="utf-8"))
        (attach / Path(file).name).chmod(0o644)
        return f"{attach.name}/{Path(file).name}", ""
    except OSError as exc:
        return "", str(exc)


_STATUS = {"drift-reproduced": "reproduced by re-search (the recorded schedule drifted)",
           "fixed": "NO LONGER REPRODUCES on today's model",
           "drift": "DRIFT: the recorded schedule does not replay"}


def _replayed(a: Article, rec: FindingRecord, idx: int) -> None:
    """The replay's verdict and, from its trace, the swimlane and the lock-order graph."""
    verdict = check(rec)
    shown = verdict.shown
    a.status = ("reproduced by an exact replay" + (
        "" if verdict.trace_matches else " (the trace differs from the recorded one: drift)")
        if verdict.status == "reproduced" else _STATUS.get(verdict.status, verdict.status))
    if shown is not None and shown.events is not None:
        names = execution_task_names(rec.scenario)
        a.tasks, a.ops = rec.scenario.size()
        a.decisions, a.steps = len(rec.schedule), shown.steps
        a.swimlane = swimlane(shown.events, names, finding=str(a.view.row["signature"]))
        g = lock_graph(shown.events, names, rec.kind, rec.details)
        a.graph, a.graph_note = lock_graph_picture(g, uid=f"g{idx}"), g.note


def _article(hist: History, night: int, v: FindingView, idx: int,
             attach: Path | None) -> Article:
    # (v.file is that file already)
    file, rec = _best_file(hist, str(v.row["key"]), v.file, night)
    a = Article(v, file)
    if attach is not None and rec is not None:  # the report travels without the run dirs
        a.attached, a.attach_error = _attach(attach, file)
    if rec is None:
        a.unreadable = True
        return a
    try:
        _replayed(a, rec, idx)
    except Exception as exc:
        a.replay_error = f"{type(exc).__name__}: {exc}"
    return a


def _rate_series(trend: Sequence[NightRates], kind: str) -> dict[str, list[float | None]]:
    """Percent of pages moved per night, one series per strategy or scenario (``kind``)."""
    names = sorted({k.partition(":")[2] for n in trend for k in n.counts
                    if k.partition(":")[0] == kind})
    out: dict[str, list[float | None]] = {}
    for name in names:
        vals: list[float | None] = []
        for n in trend:
            attempted, moved = n.counts.get(f"{kind}:{name}", (0, 0))
            vals.append(100.0 * moved / attempted if attempted else None)
        out[name] = vals
    return out


def _charts(hist: History, night: int, rates: Sequence[RateComparison]) -> list[LineChart]:
    """The trend plots: exec/s, coverage, findings and the migration rates, across nights."""
    rows = [r for r in hist.trend_rows() if r["night"] <= night][-60:]
    labels = [str(r["night"]) for r in rows]
    rate_names = sorted({k for r in rows for k in r["rate"]})
    cov_names = sorted({k for r in rows for k in r["coverage"]})
    rate = {k: [r["rate"].get(k) for r in rows] for k in rate_names}
    cov = {k: [r["coverage"].get(k) for r in rows] for k in cov_names}
    found = {"signatures seen": [float(r["seen"]) for r in rows],
             "new signatures": [float(r["new"]) for r in rows]}
    shown = {int(r["night"]) for r in rows}
    trend = [n for n in hist.migration_trend() if n.night in shown]
    return [line_chart("Executions per second, per process", labels, rate,
                       y_label="exec/s (stress: schedules/s)"),
            line_chart("Fuzz coverage (libFuzzer cov)", labels, cov, y_label="edges"),
            line_chart("Findings per night", labels, found, y_label="signatures"),
            *(line_chart(f"Migration rate per {kind}", labels, _rate_series(trend, kind),
                         y_label="% of pages moved", css_class=f"trend rate-{kind}",
                         y_max=100.0, marks={(c.series.partition(":")[2], str(night))
                                             for c in rates if c.dropped
                                             and c.series.startswith(f"{kind}:")})
              for kind in ("strategy", "scenario"))]


def _summary(n: sqlite3.Row, runs: Sequence[RunRow], views: Sequence[FindingView],
             rates: Sequence[RateComparison]) -> dict[str, object]:
    """What the summary table shows: the night's variant, runs, counts and flags."""
    by_status: dict[str, int] = {}
    for r in runs:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    return {
        "budget": f"{float(n['budget_s']) / 60:,.1f} min on {n['jobs']} "
                  f"job{'s' if n['jobs'] != 1 else ''}",
        "bugs": ", ".join(json.loads(n["bugs"])) or "none (the faithful model)",
        "fixes": ", ".join(json.loads(n["fixes"] or "[]")) or (
            "none (V2 as posted: its known flaws are found, and labelled)"),
        "by_status": sorted(by_status.items()),
        "stress_execs": sum(r.execs for r in runs if r.kind == "stress"),
        "fuzz_execs": sum(r.execs for r in runs if r.kind == "fuzz"),
        "drops": [c for c in rates if c.dropped],
        "compared": sum(c.z is not None for c in rates),
        "recovered": sorted({v.recovered_from for v in views if v.recovered_from is not None}),
    }


def render(hist: History, night: int, *, archive: Sequence[tuple[int, str]] | None = None,
           attach: Path | None = None) -> tuple[str, list[str], list[str]]:
    """The report page of ``night`` as it stood when the night ended (what later nights
    added is left out); returns (html, keys shown as new, every key shown). ``archive``:
    the links to earlier nights' pages (default: those whose report was written)."""
    n = hist.night(night)
    if n is None:
        raise ValueError(f"no night {night} in {hist.path}")
    runs = hist.runs(night)
    views = finding_views(hist, night)
    rates = compare_rates(hist.migration_trend(), night)
    new = [v for v in views if v.new]
    if archive is None:  # the earlier nights whose report was written, latest first
        archive = [(int(r["id"]), f"night-{int(r['id']):04d}.html") for r in hist.query(
            "SELECT id FROM nights WHERE id < ? AND report IS NOT NULL ORDER BY id DESC "
            "LIMIT 60", (night,))]
    page = render_page(
        title=f"migfuzz nightly \u2014 night {night}", n=n, history=str(hist.path),
        runs=runs, views=views, rates=rates, charts=_charts(hist, night, rates),
        articles=[_article(hist, night, v, i, attach) for i, v in enumerate(new)],
        archive=archive, version=__version__, rate_min_attempts=RATE_MIN_ATTEMPTS,
        rate_min_drop=RATE_MIN_DROP, rate_z=RATE_Z, **_summary(n, runs, views, rates))
    return page, [str(v.row["key"]) for v in new], [str(v.row["key"]) for v in views]


def write_report(hist: History, night: int, directory: str | Path, *,
                 index: bool = True) -> tuple[Path, list[str], list[str]]:
    """Write ``night-NNNN.html`` and (``index``) ``index.html`` into ``directory``, each
    atomically, and beside them ``findings/`` (a copy of each new finding's file); returns
    (the page written last, keys shown as new, every key shown)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    page, new, shown = render(hist, night, attach=d / "findings")
    names = [f"night-{night:04d}.html"] + (["index.html"] if index else [])
    for name in names:
        write_atomic(d / name, page)
        (d / name).chmod(0o644)  # a report is for reading (mkstemp makes 0600 files)
    return d / names[-1], new, shown
