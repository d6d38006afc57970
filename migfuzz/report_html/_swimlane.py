"""The swimlane of a finding's interleaving: one lane per task, one row per traced event,
lock hold intervals as bars beside the events. The geometry here, the markup in the
``swimlane`` macro of ``templates/svg.html``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..timeline import describe
from ._labels import lock_class
from ._svg import (
    EVENT_COLORS,
    Event,
    _color_for,
)
from ._templates import macro

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


@dataclass(frozen=True)
class _Hold:
    lock: str
    x: float
    y: float
    height: float
    fill: str
    title: str


@dataclass(frozen=True)
class _Mark:
    step: int
    step_label: bool  # the first event of its step: the step number in the gutter
    ev: str
    x: float
    y: float
    color: str
    label: str  # shortened to fit the lane; the full text is the title


@dataclass(frozen=True)
class Swimlane:
    """Where everything of a swimlane goes; ``templates/svg.html`` draws it."""

    g: _Lanes
    nrows: int
    lanes: list[tuple[int, str]]  # (x, task name)
    switches: list[float]  # the y of each context switch
    holds: list[_Hold]
    marks: list[_Mark]
    finding: str
    finding_y: float | None


def swimlane(events: Sequence[Event], task_names: Sequence[str], *,
             finding: str | None = None, max_rows: int = 160) -> Swimlane:
    """The geometry of the interleaving: a lane per task, a row per event (time flows down),
    lock hold intervals as bars at the left of each lane, the finding's row."""
    rows = [e for e in events if e[2] != "switch"]
    bars = hold_bars(rows)
    g = _Lanes(max(0, len(rows) - max_rows), len(rows), max(1, len(task_names)),
               min(6, max((b.col for b in bars), default=-1) + 1))
    lanes = [(g.gutter + t * g.lane_w, task_names[t] if t < len(task_names) else f"task{t}")
             for t in range(g.ntasks)]
    marks = _event_marks(g, rows)
    finding_y = next((m.y for m in reversed(marks) if m.ev == "finding"), None)
    return Swimlane(g, len(rows), lanes, _switches(g, rows),
                    _hold_rects(g, rows, bars, task_names), marks, finding or "finding",
                    finding_y)


def swimlane_svg(events: Sequence[Event], task_names: Sequence[str], *,
                 finding: str | None = None, max_rows: int = 160, uid: str = "s") -> str:
    """The interleaving as SVG (the ``swimlane`` macro); the finding marked across every lane.
    (``uid`` is accepted for symmetry with :func:`lock_graph_svg`; a swimlane defines no ids.)"""
    return macro("swimlane", swimlane(events, task_names, finding=finding,
                                      max_rows=max_rows))


def _switches(g: _Lanes, rows: Sequence[Event]) -> list[float]:
    """Context switches: a faint rule where the running task changes."""
    out = []
    prev_tid: int | None = None
    for i in range(g.first, len(rows)):
        tid = rows[i][1]
        if prev_tid is not None and tid != prev_tid:
            out.append(g.y_of(i) - g.row_h / 2)
        prev_tid = tid
    return out


def _hold_rects(g: _Lanes, rows: Sequence[Event], bars: Sequence[Bar],
                task_names: Sequence[str]) -> list[_Hold]:
    """Lock hold intervals: a bar per hold, at the left of its task's lane."""
    out = []
    for b in bars:
        if b.end < g.first or b.col >= g.maxcol or not 0 <= b.tid < g.ntasks:
            continue
        s = max(b.start, g.first)
        x = g.gutter + b.tid * g.lane_w + 10 + b.col * (g.bar_w + g.bar_gap)
        y1 = g.y_of(s) - (g.row_h / 2 if b.start < g.first else 3)
        y2 = g.y_of(b.end) + (g.row_h / 2 if b.open_at_end else 3)
        state = "still held when the run ended" if b.open_at_end else (
            f"released at step {rows[b.end][0]}")
        who = task_names[b.tid] if b.tid < len(task_names) else b.tid
        out.append(_Hold(b.lock, x, y1, max(4.0, y2 - y1), _color_for(b.cls),
                         f"{b.lock} [{b.cls}] held by {who} from step {rows[b.start][0]}, "
                         f"{state}"))
    return out


def _event_marks(g: _Lanes, rows: Sequence[Event]) -> list[_Mark]:
    """A mark and a label per event shown."""
    out: list[_Mark] = []
    last_step: int | None = None
    for i in range(g.first, len(rows)):
        step, tid, ev, f = rows[i]
        lane = tid if 0 <= tid < g.ntasks else 0
        out.append(_Mark(step, step != last_step, ev,
                         g.gutter + lane * g.lane_w + g.ev_x0, g.y_of(i),
                         EVENT_COLORS.get(ev, "#444"), describe(ev, f)))
        last_step = step
    return out
