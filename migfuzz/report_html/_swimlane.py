"""The swimlane of a finding's interleaving: one lane per task, one row per traced event,
lock hold intervals as bars beside the events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..timeline import describe
from ._labels import lock_class
from ._svg import (
    EVENT_COLORS,
    Event,
    _color_for,
    _short,
    esc,
)

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


@dataclass(frozen=True)
class _Lanes:
    """The geometry of a swimlane: which rows are shown, where a row and a lane are."""

    first: int  # the first row shown (the last ``max_rows`` are)
    nrows: int
    ntasks: int
    maxcol: int  # bar columns per lane (nested holds)
    row_h: int = 18
    head: int = 40
    gutter: int = 58
    lane_w: int = 360
    bar_w: int = 7
    bar_gap: int = 3

    @property
    def top_note(self) -> int:
        return 18 if self.first else 0

    @property
    def width(self) -> int:
        return self.gutter + self.ntasks * self.lane_w + 12

    @property
    def height(self) -> int:
        return self.head + self.top_note + (self.nrows - self.first) * self.row_h + 16

    @property
    def ev_x0(self) -> int:
        return 10 + self.maxcol * (self.bar_w + self.bar_gap) + 8

    def y_of(self, i: int) -> float:
        return self.head + self.top_note + (i - self.first) * self.row_h + self.row_h / 2


def swimlane_svg(events: Sequence[Event], task_names: Sequence[str], *,
                 finding: str | None = None, max_rows: int = 160, uid: str = "s") -> str:
    """The interleaving as SVG: a lane per task, a row per event (time flows down), lock hold
    intervals as bars at the left of each lane, the finding marked across every lane."""
    rows = [e for e in events if e[2] != "switch"]
    bars = hold_bars(rows)
    g = _Lanes(max(0, len(rows) - max_rows), len(rows), max(1, len(task_names)),
               min(6, max((b.col for b in bars), default=-1) + 1))
    out = [f'<svg class="swimlane" xmlns="http://www.w3.org/2000/svg" width="{g.width}" '
           f'height="{g.height}" viewBox="0 0 {g.width} {g.height}" role="img" '
           f'aria-label="interleaving swimlane, {g.ntasks} tasks, {len(rows)} events">']
    out.append(f"<title>Interleaving: {g.ntasks} tasks, {len(rows)} events"
               f"{f' (last {len(rows) - g.first} shown)' if g.first else ''}</title>")
    out += _lane_heads(g, task_names)
    out += _switches(g, rows)
    out += _hold_rects(g, rows, bars, task_names)
    finding_y = _event_marks(g, rows, out)
    if finding_y is not None:
        out.append(f'<g class="finding-mark"><line x1="{g.gutter}" y1="{finding_y}" '
                   f'x2="{g.width - 12}" y2="{finding_y}" stroke="#d62728" '
                   f'stroke-width="1.5" stroke-dasharray="6 3"/>'
                   f'<title>{esc(finding or "finding")}</title></g>')
    out.append("</svg>")
    return "\n".join(out)


def _lane_heads(g: _Lanes, task_names: Sequence[str]) -> list[str]:
    out = []
    for t in range(g.ntasks):
        x = g.gutter + t * g.lane_w
        name = task_names[t] if t < len(task_names) else f"task{t}"
        out.append(f'<g class="lane" data-task="{esc(name)}">')
        out.append(f'<rect class="lane-bg" x="{x}" y="{g.head - 6}" width="{g.lane_w - 6}" '
                   f'height="{g.height - g.head}" '
                   f'fill="{"#f6f8fb" if t % 2 == 0 else "#fbf8f4"}" stroke="#d8dde6"/>')
        out.append(f'<text class="lane-title" x="{x + 8}" y="{g.head - 14}" '
                   f'font-weight="bold" font-size="14">{esc(name)}</text>')
        out.append("</g>")
    out.append(f'<text x="6" y="{g.head - 14}" font-size="11" fill="#555">step</text>')
    if g.first:
        out.append(f'<text x="{g.gutter + 8}" y="{g.head + 10}" font-size="11" fill="#555">'
                   f"\u2026 {g.first} earlier events not shown</text>")
    return out


def _switches(g: _Lanes, rows: Sequence[Event]) -> list[str]:
    """Context switches: a faint rule where the running task changes."""
    out = []
    prev_tid: int | None = None
    for i in range(g.first, len(rows)):
        tid = rows[i][1]
        if prev_tid is not None and tid != prev_tid:
            y = g.y_of(i) - g.row_h / 2
            out.append(f'<line class="switch" x1="{g.gutter}" y1="{y}" x2="{g.width - 12}" '
                       f'y2="{y}" stroke="#c9ced8" stroke-dasharray="3 3"/>')
        prev_tid = tid
    return out


def _hold_rects(g: _Lanes, rows: Sequence[Event], bars: Sequence[Bar],
                task_names: Sequence[str]) -> list[str]:
    """Lock hold intervals: a bar per hold, at the left of its task's lane."""
    out = []
    for b in bars:
        if b.end < g.first or b.col >= g.maxcol or not 0 <= b.tid < g.ntasks:
            continue
        s = max(b.start, g.first)
        x = g.gutter + b.tid * g.lane_w + 10 + b.col * (g.bar_w + g.bar_gap)
        y1 = g.y_of(s) - (g.row_h / 2 if b.start < g.first else 3)
        y2 = g.y_of(b.end) + (g.row_h / 2 if b.open_at_end else 3)
        cls = b.cls
        state = "still held when the run ended" if b.open_at_end else (
            f"released at step {rows[b.end][0]}")
        out.append(f'<rect class="hold" data-lock="{esc(b.lock)}" x="{x}" y="{y1:.1f}" '
                   f'width="{g.bar_w}" height="{max(4.0, y2 - y1):.1f}" rx="2" '
                   f'fill="{_color_for(cls)}" fill-opacity="0.75">'
                   f"<title>{esc(b.lock)} [{esc(cls)}] held by "
                   f"{esc(task_names[b.tid] if b.tid < len(task_names) else b.tid)} from "
                   f"step {rows[b.start][0]}, {esc(state)}</title></rect>")
    return out


def _event_marks(g: _Lanes, rows: Sequence[Event], out: list[str]) -> float | None:
    """A mark and a label per event shown, appended to ``out``; the finding's row, if shown."""
    last_step: int | None = None
    finding_y: float | None = None
    for i in range(g.first, len(rows)):
        step, tid, ev, f = rows[i]
        y = g.y_of(i)
        if step != last_step:
            out.append(f'<text class="step" x="{g.gutter - 8}" y="{y + 4}" font-size="11" '
                       f'text-anchor="end" fill="#666">{step}</text>')
        last_step = step
        lane = tid if 0 <= tid < g.ntasks else 0
        x = g.gutter + lane * g.lane_w + g.ev_x0
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
    return finding_y
