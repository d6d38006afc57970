"""The page: a night's summary, trends, and each new finding with its diagrams."""

from __future__ import annotations

import hashlib
import json
import re
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
from ._lockgraph import (
    lock_graph,
    lock_graph_svg,
)
from ._svg import (
    _fmt_num,
    esc,
    line_chart_svg,
)
from ._swimlane import swimlane_svg

# -- the page --------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px 32px;
       color: #1d232e; max-width: 1500px; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { border-bottom: 2px solid #e3e6ec;
padding-bottom: 4px; margin-top: 36px; } h3 { margin-bottom: 6px; }
table { border-collapse: collapse; font-size: 13.5px; margin: 8px 0 16px; }
th, td { border: 1px solid #d8dde6; padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: #eef2f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.sub { color: #5a6270; font-size: 13.5px; }
.new { color: #b3131b; font-weight: bold; } .known { color: #5a6270; }
.status-ok, .status-done { color: #1d7a36; } .status-findings { color: #b3131b; }
.status-error, .status-killed { color: #b3131b; font-weight: bold; }
.status-interrupted { color: #a35d00; }
pre.repro { background: #1d232e; color: #f3f5f8; padding: 8px 12px; border-radius: 6px;
            overflow-x: auto; font-size: 13px; }
article.finding { border: 1px solid #d8dde6; border-radius: 8px; padding: 4px 18px 14px;
                  margin: 18px 0; }
.diagram { overflow-x: auto; border: 1px solid #eef0f4; padding: 6px; margin: 8px 0; }
.trends { display: flex; flex-wrap: wrap; gap: 12px; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 14px;
           font-size: 13.5px; } dl.facts dt { color: #5a6270; } dl.facts dd { margin: 0; }
.warn { color: #a35d00; }
tr.flag th, tr.flag td { background: #fde8e8; border-color: #d62728; }
"""


@dataclass
class FindingView:
    row: sqlite3.Row
    new: bool
    hits_tonight: int
    file: str
    why_known: str = ""
    recovered_from: int | None = None


def _best_file(hist: History, key: str, fallback: str) -> tuple[str, FindingRecord | None]:
    """The smallest reproducer among the files that recorded ``key`` (they all replay)."""
    best: tuple[tuple[int, int, int], str, FindingRecord] | None = None
    for s in hist.sightings(key):
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
    reported them), each new or known, and why known."""
    tonight = {str(r["key"]): (int(r["hits"]), str(r["file"])) for r in hist.night_keys(night)}
    unreported = {str(r["key"]) for r in hist.unreported(night)}
    keys = sorted(set(tonight) | unreported)
    views: list[FindingView] = []
    for row in hist.findings(keys):
        key = str(row["key"])
        hits, file = tonight.get(key, (0, str(row["file"])))
        if row["corpus_match"]:
            new, why = False, f"reproducer in {row['corpus_match']}"
        elif row["known_flaw"]:
            new, why = False, str(row["known_flaw"])
        elif row["reported_night"] is not None and int(row["reported_night"]) != night:
            new, why = False, (f"reported on night {row['reported_night']}, first seen "
                               f"{row['first_seen']}")
        else:
            new, why = True, ""
        rec_from = (int(row["first_night"]) if key not in tonight
                    and int(row["first_night"]) != night else None)
        if new:  # the file the article replays: the smallest reproducer of every sighting
            file = _best_file(hist, key, file)[0]
        views.append(FindingView(row, new, hits, file, why, rec_from))
    views.sort(key=lambda v: (not v.new, str(v.row["signature"])))
    return views


def _attach(attach: Path, file: str) -> str:
    """Copy the finding file beside the report; the paragraph that says so (or why not)."""
    try:
        write_atomic(attach / Path(file).name, Path(file).read_text(encoding="utf-8"))
        (attach / Path(file).name).chmod(0o644)
        return (f'<p class="sub">A copy travels with this report: <a href="'
                f'{esc(attach.name)}/{esc(Path(file).name)}">{esc(attach.name)}/'
                f"{esc(Path(file).name)}</a> (<code>migfuzz repro</code> it from "
                "the report's directory).</p>")
    except OSError as exc:
        return (f'<p class="warn">Could not copy the finding file into the report: '
                f"{esc(exc)}</p>")


def _replayed(rec: FindingRecord, signature: str, idx: int) -> list[str]:
    """The replay's verdict and, from its trace, the swimlane and the lock-order graph."""
    parts: list[str] = []
    verdict = check(rec)
    shown = verdict.shown
    status = {"reproduced": "reproduced by an exact replay"
              + ("" if verdict.trace_matches else " (the trace differs from the recorded "
                 "one: drift)"),
              "drift-reproduced": "reproduced by re-search (the recorded schedule drifted)",
              "fixed": "NO LONGER REPRODUCES on today's model",
              "drift": "DRIFT: the recorded schedule does not replay"}.get(
                  verdict.status, verdict.status)
    parts.append(f'<p class="sub">Replay: {esc(status)}.</p>')
    if shown is not None and shown.events is not None:
        names = execution_task_names(rec.scenario)
        tasks, ops = rec.scenario.size()
        parts.append(f"<h4>Interleaving ({tasks} tasks, {ops} operations, "
                     f"{len(rec.schedule)} decisions, {shown.steps} steps)</h4>")
        parts.append('<figure class="diagram swimlane-figure">' + swimlane_svg(
            shown.events, names, finding=signature, uid=f"s{idx}")
            + "<figcaption class=\"sub\">One lane per task, time flows down; bars: "
            "locks held; dashed rules: context switches; red diamond and line: the "
            "finding.</figcaption></figure>")
        g = lock_graph(shown.events, names, rec.kind, rec.details)
        parts.append("<h4>Lock-order graph</h4>")
        parts.append('<figure class="diagram lock-graph-figure">'
                     + lock_graph_svg(g, uid=f"g{idx}")
                     + '<figcaption class="sub">Lock classes ranked by the documented '
                     "order (mm/rmap.c: outer locks on top); arrows: acquired while "
                     "holding, as observed in this replay"
                     + (f"; red: {esc(g.note)}" if g.note else "")
                     + ".</figcaption></figure>")
    return parts


def _finding_article(hist: History, v: FindingView, idx: int,
                     attach: Path | None = None) -> str:
    row = v.row
    key = str(row["key"])
    file, rec = _best_file(hist, key, v.file)  # (v.file is that file already)
    anchor = f"f-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    parts = [f'<article class="finding" id="{anchor}">',
             f"<h3>{esc(row['signature'])}</h3>",
             f'<p class="sub">{esc(row["message"])}</p>',
             '<dl class="facts">',
             f"<dt>kind</dt><dd>{esc(row['kind'])}</dd>",
             f"<dt>bugs injected</dt><dd>{esc(', '.join(json.loads(row['bugs'])) or 'none')}"
             "</dd>",
             f"<dt>hits</dt><dd>{int(row['hits']):,} in total, {v.hits_tonight:,} tonight</dd>",
             f"<dt>first seen</dt><dd>{esc(row['first_seen'])} (night {row['first_night']}, "
             f"run {row['first_run']})</dd>",
             f"<dt>finding file</dt><dd><code>{esc(file)}</code></dd>"]
    if v.recovered_from is not None:
        parts.append(f"<dt>recovered</dt><dd>found by night {v.recovered_from}, which ended "
                     "before writing its report</dd>")
    parts.append("</dl>")
    parts.append(f'<pre class="repro"><code>migfuzz repro {esc(file)}</code></pre>')
    if attach is not None and rec is not None:  # the report travels without the run dirs
        parts.append(_attach(attach, file))
    if rec is None:
        parts.append('<p class="warn">The finding file cannot be read any more; no replay.</p>')
        parts.append("</article>")
        return "\n".join(parts)
    try:
        parts += _replayed(rec, str(row["signature"]), idx)
    except Exception as exc:
        parts.append(f'<p class="warn">Replay failed: {esc(type(exc).__name__)}: '
                     f"{esc(exc)}</p>")
    parts.append("</article>")
    return "\n".join(parts)


def _runs_table(runs: Sequence[RunRow]) -> str:
    rows = ['<table id="runs"><thead><tr><th>run</th><th>kind</th><th>target / strategy</th>'
            "<th>started</th><th>seconds</th><th>jobs</th><th>execs</th><th>exec/s</th>"
            "<th>coverage</th><th>findings</th><th>hits</th><th>seed</th><th>status</th>"
            "</tr></thead><tbody>"]
    for r in runs:
        eps = "" if r.exec_per_s is None else _fmt_num(r.exec_per_s)
        cov = "" if not r.coverage else f"{r.coverage:,}"
        secs = "" if r.seconds is None else f"{r.seconds:,.0f}"
        note = f"<br><span class=\"sub\">{esc(r.note)}</span>" if r.note else ""
        rows.append(f"<tr><td class=\"num\">{r.id}</td><td>{esc(r.kind)}</td>"
                    f"<td>{esc(r.target)}</td><td>{esc(r.started)}</td>"
                    f'<td class="num">{secs}</td><td class="num">{r.jobs}</td>'
                    f'<td class="num">{r.execs:,}</td><td class="num">{eps}</td>'
                    f'<td class="num">{cov}</td><td class="num">{r.findings}</td>'
                    f'<td class="num">{r.hits:,}</td><td class="num">{r.seed}</td>'
                    f'<td class="status-{esc(r.status)}">{esc(r.status)}{note}</td></tr>')
    rows.append("</tbody></table>")
    return "\n".join(rows)


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


def _rates_table(rates: Sequence[RateComparison]) -> str:
    if not rates:
        return ('<p class="sub" id="rates">No migration rate to compare yet: tonight or every '
                "earlier night of the same bugs and fixes has no stress run counts.</p>")
    rows = ['<table id="rates"><thead><tr><th>series</th><th>previous night</th>'
            "<th>rate</th><th>moved / attempted</th><th>tonight</th>"
            "<th>moved / attempted</th><th>z</th><th>verdict</th></tr></thead><tbody>"]
    for c in rates:
        kind, _, name = c.series.partition(":")
        if c.dropped:
            verdict = '<span class="new">DROP</span>'
        elif c.z is None:
            verdict = f'<span class="known">not compared (&lt; {RATE_MIN_ATTEMPTS} pages)</span>'
        else:
            verdict = '<span class="known">no drop</span>'
        rows.append(f'<tr data-series="{esc(c.series)}" data-dropped="{int(c.dropped)}"'
                    + (' class="flag"' if c.dropped else "") + ">"
                    f"<td>{esc(kind)} {esc(name)}</td><td class=\"num\">{c.prev_night}</td>"
                    f'<td class="num">{c.prev_rate:.1%}</td>'
                    f'<td class="num">{c.prev_moved:,} / {c.prev_attempted:,}</td>'
                    f'<td class="num">{c.rate:.1%}</td>'
                    f'<td class="num">{c.moved:,} / {c.attempted:,}</td>'
                    f'<td class="num">{"" if c.z is None else f"{c.z:+.1f}"}</td>'
                    f"<td>{verdict}</td></tr>")
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _trends(hist: History, night: int, rates: Sequence[RateComparison]) -> str:
    rows = hist.trend_rows()[-60:]
    labels = [str(r["night"]) for r in rows]
    rate_names = sorted({k for r in rows for k in r["rate"]})
    cov_names = sorted({k for r in rows for k in r["coverage"]})
    rate = {k: [r["rate"].get(k) for r in rows] for k in rate_names}
    cov = {k: [r["coverage"].get(k) for r in rows] for k in cov_names}
    found = {"signatures seen": [float(r["seen"]) for r in rows],
             "new signatures": [float(r["new"]) for r in rows]}
    shown = {int(r["night"]) for r in rows}
    trend = [n for n in hist.migration_trend() if n.night in shown]
    charts = "".join(
        line_chart_svg(f"Migration rate per {kind}", labels, _rate_series(trend, kind),
                       y_label="% of pages moved", css_class=f"trend rate-{kind}",
                       y_max=100.0, marks={(c.series.partition(":")[2], str(night))
                                           for c in rates if c.dropped
                                           and c.series.startswith(f"{kind}:")})
        for kind in ("strategy", "scenario"))
    return ('<div class="trends">'
            + line_chart_svg("Executions per second, per process", labels, rate,
                             y_label="exec/s (stress: schedules/s)")
            + line_chart_svg("Fuzz coverage (libFuzzer cov)", labels, cov, y_label="edges")
            + line_chart_svg("Findings per night", labels, found, y_label="signatures")
            + charts + "</div>"
            + "<h3>Migration rates against the previous night</h3>"
            + '<p class="sub">Pages the stress runs\' <code>migrate</code> operations moved / '
            "the pages they found on the source node, per strategy and per scenario, against "
            "the latest earlier night with the same bugs and fixes (and at least "
            f"{RATE_MIN_ATTEMPTS} pages of that series). A drop: at least "
            f"{RATE_MIN_DROP:.0%} lower with a two-proportion z of at most -{RATE_Z:g} and at "
            f"least {RATE_MIN_ATTEMPTS} pages on each night (pages of one run move or stay "
            "together: seed noise alone came to z = -3.95, bench/rate_noise.md).</p>"
            + _rates_table(rates))


def _summary_rows(n: sqlite3.Row, runs: Sequence[RunRow], views: Sequence[FindingView],
                  rates: Sequence[RateComparison]) -> list[str]:
    """The rows of the summary table: the night's variant, runs, counts and flags."""
    new = [v for v in views if v.new]
    stress = [r for r in runs if r.kind == "stress"]
    fuzz = [r for r in runs if r.kind == "fuzz"]
    by_status: dict[str, int] = {}
    for r in runs:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    bugs = ", ".join(json.loads(n["bugs"])) or "none (the faithful model)"
    fixes = ", ".join(json.loads(n["fixes"] or "[]")) or (
        "none (V2 as posted: its known flaws are found, and labelled)")
    recovered = sorted({v.recovered_from for v in views if v.recovered_from is not None})
    p = [f"<tr><th>status</th><td class=\"status-{esc(n['status'])}\">{esc(n['status'])}"
         "</td></tr>",
         f"<tr><th>budget</th><td>{float(n['budget_s']) / 60:,.1f} min on {n['jobs']} "
         f"job{'s' if n['jobs'] != 1 else ''}</td></tr>",
         f"<tr><th>bugs injected</th><td>{esc(bugs)}</td></tr>",
         f"<tr><th>upstream fixes</th><td>{esc(fixes)}</td></tr>",
         f"<tr><th>runs</th><td>{len(runs)} ("
         + ", ".join(f"{v} {esc(k)}" for k, v in sorted(by_status.items())) + ")</td></tr>",
         f"<tr><th>stress schedules</th><td class=\"num\">"
         f"{sum(r.execs for r in stress):,}</td></tr>",
         f"<tr><th>fuzz executions</th><td class=\"num\">{sum(r.execs for r in fuzz):,}"
         "</td></tr>",
         f"<tr><th>findings</th><td><span class=\"new\" id=\"new-count\">{len(new)} new"
         f"</span>, <span class=\"known\">{len(views) - len(new)} known</span></td></tr>"]
    drops = [c for c in rates if c.dropped]
    if drops:  # the flag row: what a reader of the summary must not miss
        p.append(f'<tr id="rate-drops" class="flag" data-drops="{len(drops)}"><th>migration '
                 f'rate drop</th><td><span class="new">{len(drops)} series migrated '
                 "significantly less than on the previous night</span> "
                 '(<a href="#rates">rates</a>)<ul>'
                 + "".join(f"<li>{esc(c.text())}</li>" for c in drops) + "</ul></td></tr>")
    elif rates:
        p.append(f'<tr id="rate-drops" data-drops="0"><th>migration rates</th><td>no drop '
                 f"against the previous night ({sum(c.z is not None for c in rates)} series "
                 'compared, <a href="#rates">rates</a>)</td></tr>')
    if recovered:
        p.append(f"<tr><th>recovered</th><td>findings of night(s) "
                 f"{', '.join(map(str, recovered))}, which ended before reporting</td></tr>")
    return p


def _findings_table(views: Sequence[FindingView]) -> list[str]:
    """Every finding of the night, new first, with the command that reproduces it."""
    p: list[str] = []
    if views:
        p.append('<table id="findings-table"><thead><tr><th>signature</th><th>bugs</th>'
                 "<th>hits tonight</th><th>total hits</th><th>status</th><th>reproduce</th>"
                 "</tr></thead><tbody>")
        for v in views:
            key = str(v.row["key"])
            anchor = f"f-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
            sig = (f'<a href="#{anchor}">{esc(v.row["signature"])}</a>' if v.new
                   else esc(v.row["signature"]))
            state = ('<span class="new">new</span>' if v.new
                     else f'<span class="known">known: {esc(v.why_known)}</span>')
            p.append(f"<tr><td>{sig}</td><td>{esc(', '.join(json.loads(v.row['bugs'])))}</td>"
                     f'<td class="num">{v.hits_tonight:,}</td>'
                     f'<td class="num">{int(v.row["hits"]):,}</td><td>{state}</td>'
                     f"<td><code>migfuzz repro {esc(v.file)}</code></td></tr>")
        p.append("</tbody></table>")
    else:
        p.append("<p>No findings tonight.</p>")
    return p


def render(hist: History, night: int, *, archive: Sequence[tuple[int, str]] = (),
           attach: Path | None = None) -> tuple[
        str, list[str], list[str]]:
    """The report page of ``night``; returns (html, keys shown as new, every key shown)."""
    n = hist.night(night)
    if n is None:
        raise ValueError(f"no night {night} in {hist.path}")
    runs = hist.runs(night)
    views = finding_views(hist, night)
    rates = compare_rates(hist.migration_trend(), night)
    new = [v for v in views if v.new]
    title = f"migfuzz nightly \u2014 night {night}"
    p = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
         f"<header><h1>{esc(title)}</h1>",
         f'<p class="sub">{esc(n["started"])} \u2013 {esc(n["ended"] or "running")}, '
         f"migfuzz {esc(n['tool_version'])}, model commit <code>{esc(n['model_commit'])}"
         f"</code>, history <code>{esc(hist.path)}</code></p></header>",
         '<section id="summary"><h2>Summary</h2>',
         '<table id="summary-table"><tbody>']
    p += _summary_rows(n, runs, views, rates)
    p.append("</tbody></table>")
    p.append("<h3>Runs</h3>")
    p.append(_runs_table(runs))
    p.append("</section>")
    p.append('<section id="trends"><h2>Trends across nights</h2>')
    p.append(_trends(hist, night, rates))
    p.append("</section>")
    p.append('<section id="findings"><h2>Findings</h2>')
    p += _findings_table(views)
    for i, v in enumerate(new):
        p.append(_finding_article(hist, v, i, attach))
    p.append("</section>")
    if archive:
        p.append('<section id="archive"><h2>Earlier nights</h2><ul>')
        for nid, href in archive:
            p.append(f'<li><a href="{esc(href)}">night {nid}</a></li>')
        p.append("</ul></section>")
    p.append(f'<footer class="sub"><p>Written by migfuzz {esc(__version__)} '
             "<code>migfuzz nightly</code>. Replay any finding with the command shown; the "
             "page has no scripts and no external resources.</p></footer>")
    p.append("</body></html>")
    return ("\n".join(p) + "\n", [str(v.row["key"]) for v in new],
            [str(v.row["key"]) for v in views])


def write_report(hist: History, night: int, directory: str | Path) -> tuple[
        Path, list[str], list[str]]:
    """Write ``night-NNNN.html`` and ``index.html`` (the latest night) into ``directory``,
    each atomically; returns (index path, keys shown as new, every key shown)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    archive = sorted((int(m.group(1)), p.name) for p in d.glob("night-*.html")
                     if (m := re.fullmatch(r"night-(\d+)\.html", p.name))
                     and int(m.group(1)) != night)
    page, new, shown = render(hist, night, archive=archive[::-1][:60],
                              attach=d / "findings")
    for name in (f"night-{night:04d}.html", "index.html"):
        write_atomic(d / name, page)
        (d / name).chmod(0o644)  # a report is for reading (mkstemp makes 0600 files)
    return d / "index.html", new, shown
