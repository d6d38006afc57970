"""The nightly HTML report: one static page per night, SVG drawn here, nothing external.

The page has no scripts and no external URLs (stylesheet inline, diagrams inline SVG), so it
can be archived as a CI artifact, mailed, or opened from a file system years later:

* summary: this night's runs (kind, target, execs, exec/s, coverage, status) and findings,
  new versus known (seen on an earlier night, or explained by ``corpus/known`` /
  ``corpus/regressions``);
* trends across nights, from the history database: exec/s per process, fuzz coverage,
  findings per night, and the migration rate (pages moved / pages attempted by the stress
  runs' ``migrate`` operations) per strategy and per scenario, as line plots; a drop of a rate
  against the previous night (:func:`migfuzz.history.compare_rates`) is a red flag row in the
  summary, a red ring on the chart and a row of the rates table;
* each new finding: the command that reproduces it, its interleaving as a *swimlane* (one
  lane per task, one row per traced event, lock hold intervals as bars beside the events, the
  finding marked across the lanes), and its *lock-order graph* (lock classes as nodes, the
  acquired-while-holding edges the replay observed per task, and for a lock-order finding the
  inverting edge in red with the existing chain it closes).

The diagrams come from a traced exact replay of the finding file (:func:`migfuzz.replay.check`,
the same replay ``migfuzz repro`` prints as text); a replay that fails is reported in place of
its diagrams, never by failing the report. Lock events name lock *instances*
(``mm1.ptl[0]``); the graph is over lock *classes* (``pte_lock``), which every lock event
carries (:func:`lock_class`): nothing is guessed from names.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stress import Event
from stress.workload import execution_task_names

from . import __version__
from .findings import FindingRecord, load, write_atomic
from .history import (
    RATE_MIN_ATTEMPTS,
    RATE_MIN_DROP,
    RATE_Z,
    History,
    NightRates,
    RateComparison,
    RunRow,
    compare_rates,
)
from .replay import check
from .timeline import describe

# -- lock classes ----------------------------------------------------------------------------


def lock_class(ev: Event) -> str:
    """The lockdep class of the lock a ``lock``/``unlock`` event names, as the event carries
    it (``page12.PG_locked`` -> ``PG_locked``); "?" for an event without one."""
    cls = ev.lock_class
    return cls.name if cls is not None else "?"


def _strip_subclass(name: str) -> str:
    return re.sub(r"/\d+$", "", name.strip())


def _documented_ranks() -> dict[str, int]:
    """Depth of each class in the mm/rmap.c lock-ordering tree (mmap_sem 0, PG_locked 1...)."""
    try:
        import target.mm.locking  # noqa: F401  (declares the order)
        from target.kernel import DOCUMENTED_ORDER
    except ImportError:  # pragma: no cover - the model is part of this package
        return {}
    parents: dict[str, set[str]] = {}
    for (a, _), (b, _) in DOCUMENTED_ORDER:
        parents.setdefault(b, set()).add(a)
        parents.setdefault(a, set())
    ranks: dict[str, int] = {}

    def rank(c: str, seen: frozenset[str] = frozenset()) -> int:
        if c in ranks:
            return ranks[c]
        ps = [p for p in parents.get(c, ()) if p not in seen]
        r = 1 + max((rank(p, seen | {c}) for p in ps), default=-1)
        ranks[c] = r
        return r

    for c in parents:
        rank(c)
    return ranks


# -- small SVG helpers -----------------------------------------------------------------------

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f", "#d62728"]

EVENT_COLORS = {
    "op": "#111111", "lock": "#1f5fbf", "unlock": "#7fa7e0", "get_page": "#2e8b57",
    "put_page": "#8fbc8f", "mapcount": "#b8860b", "pte": "#8b4513", "alloc": "#6a5acd",
    "free": "#9370db", "store": "#008b8b", "dma": "#c71585", "finding": "#d62728",
}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _color_for(name: str) -> str:
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    return PALETTE[h % (len(PALETTE) - 1)]  # never the finding's red


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _fmt_num(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    if v >= 100 or v == int(v):
        return f"{v:,.0f}"
    return f"{v:.1f}"


# -- swimlane --------------------------------------------------------------------------------

@dataclass
class Bar:
    tid: int
    col: int
    start: int
    end: int
    lock: str
    open_at_end: bool = False
    cls: str = "?"  # the lock's class, from its lock event


def hold_bars(rows: Sequence[Event]) -> list[Bar]:
    """Lock hold intervals per task, as (row of the lock event, row of the unlock event)."""
    bars: list[Bar] = []
    open_: dict[int, dict[str, Bar]] = {}
    for i, row in enumerate(rows):
        _, tid, ev, f = row
        lock = str(f.get("lock", "?"))
        held = open_.setdefault(tid, {})
        if ev == "lock":
            used = {b.col for b in held.values()}
            col = next(c for c in range(len(used) + 1) if c not in used)
            held[lock] = Bar(tid, col, i, i, lock, cls=lock_class(row))
        elif ev == "unlock" and lock in held:
            b = held.pop(lock)
            b.end = i
            bars.append(b)
    last = len(rows) - 1
    for held in open_.values():
        for b in held.values():
            b.end = last
            b.open_at_end = True
            bars.append(b)
    return sorted(bars, key=lambda b: (b.tid, b.start, b.col))


def swimlane_svg(events: Sequence[Event], task_names: Sequence[str], *,
                 finding: str | None = None, max_rows: int = 160, uid: str = "s") -> str:
    """The interleaving as SVG: a lane per task, a row per event (time flows down), lock hold
    intervals as bars at the left of each lane, the finding marked across every lane."""
    rows = [e for e in events if e[2] != "switch"]
    bars = hold_bars(rows)
    first = max(0, len(rows) - max_rows)
    shown = rows[first:]
    ntasks = max(1, len(task_names))
    maxcol = min(6, max((b.col for b in bars), default=-1) + 1)
    row_h, head, gutter, lane_w = 18, 40, 58, 360
    bar_w, bar_gap = 7, 3
    ev_x0 = 10 + maxcol * (bar_w + bar_gap) + 8
    top_note = 18 if first else 0
    width = gutter + ntasks * lane_w + 12
    height = head + top_note + len(shown) * row_h + 16

    def y_of(i: int) -> float:
        return head + top_note + (i - first) * row_h + row_h / 2

    out = [f'<svg class="swimlane" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="interleaving swimlane, {ntasks} tasks, {len(rows)} events">']
    out.append(f"<title>Interleaving: {ntasks} tasks, {len(rows)} events"
               f"{f' (last {len(shown)} shown)' if first else ''}</title>")
    for t in range(ntasks):
        x = gutter + t * lane_w
        name = task_names[t] if t < len(task_names) else f"task{t}"
        out.append(f'<g class="lane" data-task="{esc(name)}">')
        out.append(f'<rect class="lane-bg" x="{x}" y="{head - 6}" width="{lane_w - 6}" '
                   f'height="{height - head}" fill="{"#f6f8fb" if t % 2 == 0 else "#fbf8f4"}" '
                   'stroke="#d8dde6"/>')
        out.append(f'<text class="lane-title" x="{x + 8}" y="{head - 14}" font-weight="bold" '
                   f'font-size="14">{esc(name)}</text>')
        out.append("</g>")
    out.append(f'<text x="6" y="{head - 14}" font-size="11" fill="#555">step</text>')
    if first:
        out.append(f'<text x="{gutter + 8}" y="{head + 10}" font-size="11" fill="#555">'
                   f"\u2026 {first} earlier events not shown</text>")
    # context switches: a faint rule where the running task changes
    prev_tid: int | None = None
    for i in range(first, len(rows)):
        tid = rows[i][1]
        if prev_tid is not None and tid != prev_tid:
            y = y_of(i) - row_h / 2
            out.append(f'<line class="switch" x1="{gutter}" y1="{y}" x2="{width - 12}" '
                       f'y2="{y}" stroke="#c9ced8" stroke-dasharray="3 3"/>')
        prev_tid = tid
    # lock hold bars
    for b in bars:
        if b.end < first or b.col >= maxcol or not 0 <= b.tid < ntasks:
            continue
        s = max(b.start, first)
        x = gutter + b.tid * lane_w + 10 + b.col * (bar_w + bar_gap)
        y1 = y_of(s) - (row_h / 2 if b.start < first else 3)
        y2 = y_of(b.end) + (row_h / 2 if b.open_at_end else 3)
        cls = b.cls
        state = "still held when the run ended" if b.open_at_end else (
            f"released at step {rows[b.end][0]}")
        out.append(f'<rect class="hold" data-lock="{esc(b.lock)}" x="{x}" y="{y1:.1f}" '
                   f'width="{bar_w}" height="{max(4.0, y2 - y1):.1f}" rx="2" '
                   f'fill="{_color_for(cls)}" fill-opacity="0.75">'
                   f"<title>{esc(b.lock)} [{esc(cls)}] held by "
                   f"{esc(task_names[b.tid] if b.tid < len(task_names) else b.tid)} from "
                   f"step {rows[b.start][0]}, {esc(state)}</title></rect>")
    # events
    last_step: int | None = None
    finding_y: float | None = None
    for i in range(first, len(rows)):
        step, tid, ev, f = rows[i]
        y = y_of(i)
        if step != last_step:
            out.append(f'<text class="step" x="{gutter - 8}" y="{y + 4}" font-size="11" '
                       f'text-anchor="end" fill="#666">{step}</text>')
        last_step = step
        lane = tid if 0 <= tid < ntasks else 0
        x = gutter + lane * lane_w + ev_x0
        label = describe(ev, f)
        color = EVENT_COLORS.get(ev, "#444")
        out.append(f'<g class="ev ev-{esc(ev)}" data-step="{step}">')
        if ev == "finding":
            finding_y = y
            out.append(f'<path d="M{x} {y - 7} L{x + 7} {y} L{x} {y + 7} L{x - 7} {y} Z" '
                       f'fill="{color}"/>')
        elif ev == "op":
            out.append(f'<rect x="{x - 4}" y="{y - 4}" width="8" height="8" fill="{color}"/>')
        else:
            out.append(f'<circle cx="{x}" cy="{y}" r="4" fill="{color}"/>')
        weight = ' font-weight="bold"' if ev in ("op", "finding") else ""
        out.append(f'<text x="{x + 9}" y="{y + 4}" font-size="11.5" '
                   f'font-family="DejaVu Sans Mono, monospace" fill="{color}"{weight}>'
                   f"{esc(_short(label, 44))}</text>")
        out.append(f"<title>step {step}: {esc(label)}</title></g>")
    if finding_y is not None:
        out.append(f'<g class="finding-mark"><line x1="{gutter}" y1="{finding_y}" '
                   f'x2="{width - 12}" y2="{finding_y}" stroke="#d62728" stroke-width="1.5" '
                   f'stroke-dasharray="6 3"/><title>{esc(finding or "finding")}</title></g>')
    out.append("</svg>")
    return "\n".join(out)


# -- lock-order graph ------------------------------------------------------------------------

@dataclass
class Edge:
    src: str
    dst: str
    count: int = 0
    witness: str = ""
    tasks: set[str] = field(default_factory=set)
    role: str = "observed"  # observed | inverting | chain | documented
    text: str = ""  # how the finding names it, with lockdep subclasses (``PG_locked/1``)


@dataclass
class LockGraphData:
    nodes: list[str]
    edges: list[Edge]
    involved: set[str]
    note: str = ""


def observed_lock_graph(events: Sequence[Event], task_names: Sequence[str]) -> dict[
        tuple[str, str], Edge]:
    """Acquired-while-holding edges between lock classes, per task, from lock/unlock events.

    Like lockdep, an acquisition by trylock adds no edge *to* the lock (it cannot wait), but
    once held it is the source of edges like any other lock.
    """
    held: dict[int, list[tuple[str, str]]] = {}  # per task: (instance, class), innermost last
    edges: dict[tuple[str, str], Edge] = {}
    for event in events:
        step, tid, ev, f = event
        if ev not in ("lock", "unlock"):
            continue
        name = str(f.get("lock", "?"))
        stack = held.setdefault(tid, [])
        if ev == "unlock":
            for i in range(len(stack) - 1, -1, -1):
                if stack[i][0] == name:
                    del stack[i]
                    break
            continue
        task = task_names[tid] if 0 <= tid < len(task_names) else str(tid)
        dst = lock_class(event)
        if not f.get("trylock"):
            for h, src in stack:
                e = edges.setdefault((src, dst), Edge(src, dst))
                if e.count == 0:
                    e.witness = f"{task} at step {step}: {name} while holding {h}"
                e.count += 1
                e.tasks.add(task)
        stack.append((name, dst))
    return edges


def _edge_of_text(text: str) -> tuple[str, str, str] | None:
    """``"A/1 -> B: where"`` -> (A, B, where)."""
    head, _, where = text.partition(": ")
    a, sep, b = head.partition(" -> ")
    if not sep:
        return None
    return _strip_subclass(a), _strip_subclass(b), where


def lock_graph(events: Sequence[Event], task_names: Sequence[str], kind: str,
               details: dict[str, Any]) -> LockGraphData:
    edges = observed_lock_graph(events, task_names)
    involved = {_strip_subclass(str(c)) for c in details.get("classes") or []}
    note = ""
    if kind == "lock-order-inversion":
        new = _edge_of_text(str(details.get("new_dependency", "")))
        if new is not None:
            a, b, where = new
            e = edges.setdefault((a, b), Edge(a, b))
            e.role = "inverting"
            e.witness = f"new dependency {details.get('new_dependency')}"
            e.text = str(details.get("new_dependency", "")).partition(": ")[0]
            note = f"the new dependency {e.text} ({where})"
        for text in details.get("existing_chain") or []:
            old = _edge_of_text(str(text))
            if old is None:
                continue
            a, b, where = old
            seen = edges.get((a, b))
            if seen is None:
                edges[(a, b)] = Edge(a, b, role="documented" if "documented" in where
                                     else "chain", witness=str(text))
            elif seen.role == "observed":
                seen.role = "chain"
    nodes = sorted({e.src for e in edges.values()} | {e.dst for e in edges.values()}
                   | involved)
    return LockGraphData(nodes, list(edges.values()), involved, note)


def lock_graph_svg(g: LockGraphData, *, uid: str = "g") -> str:
    """Lock classes as boxes ranked by the documented order (mm/rmap.c: outermost on top), so
    an edge pointing upwards goes against it; the inverting edge is red and thick."""
    if not g.nodes:
        return ('<svg class="lock-graph" xmlns="http://www.w3.org/2000/svg" width="420" '
                'height="40" role="img" aria-label="lock-order graph: no locks taken">'
                '<text x="10" y="24" font-size="13">no locks were taken in this run</text>'
                "</svg>")
    ranks = _documented_ranks()
    rank: dict[str, int] = {n: ranks[n] for n in g.nodes if n in ranks}
    for _ in range(len(g.nodes)):  # the others below what they were taken under
        for e in g.edges:
            if e.role in ("observed", "chain") and e.dst not in ranks and e.src != e.dst:
                r = rank.get(e.src, 0) + 1
                if rank.get(e.dst, -1) < r <= len(g.nodes) + len(ranks):
                    rank[e.dst] = r
    for n in g.nodes:
        rank.setdefault(n, 0)
    used = sorted(set(rank.values()))
    level = {r: i for i, r in enumerate(used)}
    rows: dict[int, list[str]] = {}
    for n in sorted(g.nodes):
        rows.setdefault(level[rank[n]], []).append(n)
    box_h, row_gap, col_gap = 30, 70, 40
    widths = {n: 16 + 7.4 * len(n) for n in g.nodes}
    row_w = {r: sum(widths[n] for n in ns) + col_gap * (len(ns) - 1) for r, ns in rows.items()}
    inner = max(row_w.values())
    margin = 60 + 26 * max(0, len(rows) - 1)  # room for the arcs of long downward edges
    width = margin + inner + 260
    height = 30 + len(rows) * (box_h + row_gap) + 20
    pos: dict[str, tuple[float, float]] = {}
    for r, ns in rows.items():
        x = margin + (inner - row_w[r]) / 2
        y: float = 30 + r * (box_h + row_gap)
        for n in ns:
            pos[n] = (x, y)
            x += widths[n] + col_gap
    style = {
        "observed": ("#4a5568", "1.6", "", "obs"),
        "chain": ("#dd8a0b", "2.4", "", "chain"),
        "documented": ("#999999", "1.4", ' stroke-dasharray="5 4"', "doc"),
        "inverting": ("#d62728", "3.2", "", "inv"),
    }
    out = [f'<svg class="lock-graph" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
           f'height="{height}" viewBox="0 0 {width:.0f} {height}" role="img" '
           f'aria-label="lock-order graph, {len(g.nodes)} lock classes, {len(g.edges)} edges">',
           "<title>Lock classes and the acquired-while-holding edges of this run</title>",
           "<defs>"]
    for color, _, _, tag in style.values():
        out.append(f'<marker id="arrow-{tag}-{uid}" viewBox="0 0 10 10" refX="9" refY="5" '
                   f'markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" '
                   'orient="auto-start-reverse">'
                   f'<path d="M0 0 L10 5 L0 10 z" fill="{color}"/></marker>')
    out.append("</defs>")
    order = {"documented": 0, "observed": 1, "chain": 2, "inverting": 3}
    for e in sorted(g.edges, key=lambda e: (order[e.role], e.src, e.dst)):
        color, sw, dash, tag = style[e.role]
        (x1, y1), (x2, y2) = pos[e.src], pos[e.dst]
        w1, w2 = widths[e.src], widths[e.dst]
        if e.src == e.dst:
            cx, cy = x1 + w1, y1 + box_h / 2
            d = (f"M{cx} {cy - 8} C{cx + 60} {cy - 40} {cx + 60} {cy + 40} {cx + 2} {cy + 8}")
            lx, ly = cx + 50, cy + 4
        elif y2 > y1 and y2 - y1 <= box_h + row_gap:  # one rank down: with the order
            sx, sy, tx, ty = x1 + w1 / 2, y1 + box_h, x2 + w2 / 2, y2
            d = f"M{sx:.1f} {sy:.1f} L{tx:.1f} {ty:.1f}"
            lx, ly = (sx + tx) / 2 + 6, (sy + ty) / 2 + 4
        elif y2 > y1:  # several ranks down: an arc on the left, wider the further it goes
            span = (y2 - y1) / (box_h + row_gap)
            sx, sy = x1, y1 + box_h / 2
            tx, ty = x2, y2 + box_h / 2
            bulge = min(sx, tx) - 18 - 26 * span
            d = (f"M{sx:.1f} {sy:.1f} C{bulge:.1f} {sy:.1f} {bulge:.1f} {ty:.1f} "
                 f"{tx - 2:.1f} {ty:.1f}")
            lx, ly = bulge + 0.25 * (min(sx, tx) - bulge) - 14, (sy + ty) / 2 + 4
        else:  # upwards or sideways: against the order, an arc on the right
            sx, sy = x1 + w1, y1 + box_h / 2
            tx, ty = x2 + w2, y2 + box_h / 2
            bulge = max(sx, tx) + 40 + 26 * abs(sy - ty) / (box_h + row_gap)
            d = (f"M{sx:.1f} {sy:.1f} C{bulge:.1f} {sy:.1f} {bulge:.1f} {ty:.1f} "
                 f"{tx + 2:.1f} {ty:.1f}")
            lx, ly = bulge - 0.25 * (bulge - max(sx, tx)) + 4, (sy + ty) / 2 + 4
        label = {"inverting": f"{e.text or 'new edge'}: inverts the order",
                 "chain": "existing order", "documented": "documented"}.get(
                     e.role, f"\u00d7{e.count}")
        if e.role in ("inverting", "chain") and e.count:
            label += f" (\u00d7{e.count})"
        title = (f"{e.src} -> {e.dst}: {e.role}"
                 + (f", observed {e.count}x ({', '.join(sorted(e.tasks))})" if e.count else "")
                 + (f"; {e.witness}" if e.witness else ""))
        out.append(f'<g class="edge {e.role}" data-src="{esc(e.src)}" data-dst="{esc(e.dst)}">'
                   f'<path d="{d}" fill="none" stroke="{color}" stroke-width="{sw}"{dash} '
                   f'marker-end="url(#arrow-{tag}-{uid})"/>'
                   f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="11" fill="{color}">'
                   f"{esc(label)}</text><title>{esc(title)}</title></g>")
    for n in g.nodes:
        x, y = pos[n]
        hot = n in g.involved
        out.append(f'<g class="node{" involved" if hot else ""}" data-class="{esc(n)}">'
                   f'<rect x="{x:.1f}" y="{y}" width="{widths[n]:.1f}" height="{box_h}" rx="6" '
                   f'fill="{"#fde8e8" if hot else "#eef2f8"}" '
                   f'stroke="{"#d62728" if hot else "#4a5568"}" '
                   f'stroke-width="{2 if hot else 1.2}"/>'
                   f'<text x="{x + widths[n] / 2:.1f}" y="{y + 19}" font-size="12.5" '
                   f'text-anchor="middle" font-family="DejaVu Sans Mono, monospace">{esc(n)}'
                   f"</text><title>lock class {esc(n)}</title></g>")
    out.append("</svg>")
    return "\n".join(out)


# -- trend plots -----------------------------------------------------------------------------

def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10.0 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp  # pragma: no cover


def line_chart_svg(title: str, x_labels: Sequence[str],
                   series: Mapping[str, Sequence[float | None]], *, y_label: str = "",
                   css_class: str = "trend", y_max: float | None = None,
                   marks: Collection[tuple[str, str]] = ()) -> str:
    """A line plot, one line per series, x = nights; gaps where a night has no value. Each
    point carries its values (``data-x``, ``data-y``); ``marks`` ((series, x label) pairs)
    get a red ring. The plot grows taller when the legend needs it."""
    # (the legend sets the right margin and, with many series, the height)
    left, top, bottom = 64, 34, 44
    right = max(150, 40 + round(6.6 * max((len(k) for k in series), default=0)))
    w = left + 306 + right
    h = max(250, top + 18 * len(series) + bottom)
    pw, ph = w - left - right, h - top - bottom
    vals = [v for s in series.values() for v in s if v is not None]
    ymax = y_max if y_max is not None else _nice_max(max(vals, default=0.0))
    n = len(x_labels)

    def xp(i: int) -> float:
        return left + (pw / 2 if n <= 1 else pw * i / (n - 1))

    def yp(v: float) -> float:
        return top + ph - ph * v / ymax

    out = [f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" width="{w}" '
           f'height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{esc(title)}">',
           f"<title>{esc(title)}</title>",
           f'<text x="{left}" y="18" font-size="13" font-weight="bold">{esc(title)}</text>']
    for k in range(5):
        tick = ymax * k / 4
        y = yp(tick)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" '
                   f'stroke="#e3e6ec"/><text x="{left - 6}" y="{y + 4:.1f}" font-size="10.5" '
                   f'text-anchor="end" fill="#555">{_fmt_num(tick)}</text>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#888"/>'
               f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" '
               'stroke="#888"/>')
    if y_label:
        out.append(f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" '
                   f'font-size="11" text-anchor="middle" fill="#555">{esc(y_label)}</text>')
    step = max(1, math.ceil(n / 10))
    for i, lab in enumerate(x_labels):
        if i % step == 0 or i == n - 1:
            out.append(f'<text x="{xp(i):.1f}" y="{top + ph + 16}" font-size="10.5" '
                       f'text-anchor="middle" fill="#555">{esc(lab)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 6}" font-size="11" text-anchor="middle" '
               'fill="#555">night</text>')
    for j, (name, ys) in enumerate(series.items()):
        color = PALETTE[j % len(PALETTE)]
        # more series than colours: the second round of colours is dashed
        dash = ' stroke-dasharray="6 3"' if j >= len(PALETTE) else ""
        out.append(f'<g class="series" data-series="{esc(name)}">')
        seg: list[str] = []
        for i, v in enumerate(ys):
            if v is None:
                if len(seg) > 1:
                    out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} '
                               f'points="{" ".join(seg)}"/>')
                seg = []
                continue
            seg.append(f"{xp(i):.1f},{yp(v):.1f}")
        if len(seg) > 1:
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} '
                       f'points="{" ".join(seg)}"/>')
        for i, v in enumerate(ys):
            if v is not None:
                out.append(f'<circle cx="{xp(i):.1f}" cy="{yp(v):.1f}" r="3.5" fill="{color}" '
                           f'data-x="{esc(x_labels[i])}" data-y="{v:g}">'
                           f"<title>{esc(name)}, night {esc(x_labels[i])}: {_fmt_num(v)}"
                           "</title></circle>")
                if (name, x_labels[i]) in marks:
                    out.append(f'<circle class="drop" cx="{xp(i):.1f}" cy="{yp(v):.1f}" r="8" '
                               'fill="none" stroke="#d62728" stroke-width="2.5">'
                               f"<title>{esc(name)}: dropped on night {esc(x_labels[i])}"
                               "</title></circle>")
        ly = top + 8 + 18 * j
        out.append(f'<line x1="{left + pw + 12}" y1="{ly - 6}" x2="{left + pw + 26}" '
                   f'y2="{ly - 6}" stroke="{color}" stroke-width="3"{dash}/>'
                   f'<text x="{left + pw + 30}" y="{ly - 2}" font-size="11">'
                   f"{esc(name)}</text></g>")
    if not vals:
        out.append(f'<text x="{left + pw / 2}" y="{top + ph / 2}" font-size="12" '
                   'text-anchor="middle" fill="#777">no data yet</text>')
    out.append("</svg>")
    return "\n".join(out)


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
        try:
            write_atomic(attach / Path(file).name, Path(file).read_text(encoding="utf-8"))
            (attach / Path(file).name).chmod(0o644)
            parts.append(f'<p class="sub">A copy travels with this report: <a href="'
                         f'{esc(attach.name)}/{esc(Path(file).name)}">{esc(attach.name)}/'
                         f"{esc(Path(file).name)}</a> (<code>migfuzz repro</code> it from "
                         "the report's directory).</p>")
        except OSError as exc:
            parts.append(f'<p class="warn">Could not copy the finding file into the report: '
                         f"{esc(exc)}</p>")
    if rec is None:
        parts.append('<p class="warn">The finding file cannot be read any more; no replay.</p>')
        parts.append("</article>")
        return "\n".join(parts)
    try:
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
                shown.events, names, finding=str(row["signature"]), uid=f"s{idx}")
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
    stress = [r for r in runs if r.kind == "stress"]
    fuzz = [r for r in runs if r.kind == "fuzz"]
    by_status: dict[str, int] = {}
    for r in runs:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    bugs = ", ".join(json.loads(n["bugs"])) or "none (the faithful model)"
    fixes = ", ".join(json.loads(n["fixes"] or "[]")) or (
        "none (V2 as posted: its known flaws are found, and labelled)")
    recovered = sorted({v.recovered_from for v in views if v.recovered_from is not None})
    title = f"migfuzz nightly \u2014 night {night}"
    p = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
         f"<header><h1>{esc(title)}</h1>",
         f'<p class="sub">{esc(n["started"])} \u2013 {esc(n["ended"] or "running")}, '
         f"migfuzz {esc(n['tool_version'])}, model commit <code>{esc(n['model_commit'])}"
         f"</code>, history <code>{esc(hist.path)}</code></p></header>",
         '<section id="summary"><h2>Summary</h2>',
         '<table id="summary-table"><tbody>',
         f"<tr><th>status</th><td class=\"status-{esc(n['status'])}\">{esc(n['status'])}"
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
    p.append("</tbody></table>")
    p.append("<h3>Runs</h3>")
    p.append(_runs_table(runs))
    p.append("</section>")
    p.append('<section id="trends"><h2>Trends across nights</h2>')
    p.append(_trends(hist, night, rates))
    p.append("</section>")
    p.append('<section id="findings"><h2>Findings</h2>')
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
