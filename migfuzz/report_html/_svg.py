"""Small SVG helpers shared by the diagrams, and the trend plots (line charts): their geometry
here, their markup in the ``line_chart`` macro of ``templates/svg.html``."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from stress import Event as Event

from ._templates import fmt_num, macro

# -- small SVG helpers -----------------------------------------------------------------------

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f", "#d62728"]

EVENT_COLORS = {
    "op": "#111111", "lock": "#1f5fbf", "unlock": "#7fa7e0", "get_page": "#2e8b57",
    "put_page": "#8fbc8f", "mapcount": "#b8860b", "pte": "#8b4513", "alloc": "#6a5acd",
    "free": "#9370db", "store": "#008b8b", "dma": "#c71585", "finding": "#d62728",
}


def _color_for(name: str) -> str:
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    return PALETTE[h % (len(PALETTE) - 1)]  # never the finding's red


_fmt_num = fmt_num  # (the name the page module has always imported)


# -- trend plots -----------------------------------------------------------------------------

def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10.0 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp  # pragma: no cover


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    night: str  # the x label
    value: float
    dropped: bool  # a red ring: a flagged rate drop


@dataclass(frozen=True)
class ChartSeries:
    name: str
    color: str
    dashed: bool  # more series than colours: the second round of colours is dashed
    segments: list[str]  # polyline point lists, broken where a night has no value
    points: list[ChartPoint]
    legend_x: float
    legend_y: float


@dataclass(frozen=True)
class LineChart:
    """Where everything of a line plot goes; ``templates/svg.html`` draws it."""

    title: str
    css_class: str
    w: int
    h: int
    left: int
    top: int
    pw: int
    ph: int
    y_label: str
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    series: list[ChartSeries]
    empty: bool


def _series(j: int, name: str, ys: Sequence[float | None], x_labels: Sequence[str],
            marks: Collection[tuple[str, str]], xp: Callable[[int], float],
            yp: Callable[[float], float], legend_x: float, ly: float) -> ChartSeries:
    """Series ``j`` of a line chart: its polylines, a point per value, its legend entry."""
    segments: list[str] = []
    seg: list[str] = []
    for i, v in enumerate(ys):
        if v is None:
            if len(seg) > 1:
                segments.append(" ".join(seg))
            seg = []
            continue
        seg.append(f"{xp(i):.1f},{yp(v):.1f}")
    if len(seg) > 1:
        segments.append(" ".join(seg))
    points = [ChartPoint(xp(i), yp(v), x_labels[i], v, (name, x_labels[i]) in marks)
              for i, v in enumerate(ys) if v is not None]
    return ChartSeries(name, PALETTE[j % len(PALETTE)], j >= len(PALETTE), segments, points,
                       legend_x, ly)


def line_chart(title: str, x_labels: Sequence[str],
               series: Mapping[str, Sequence[float | None]], *, y_label: str = "",
               css_class: str = "trend", y_max: float | None = None,
               marks: Collection[tuple[str, str]] = ()) -> LineChart:
    """The geometry of a line plot, one line per series, x = nights; the plot grows taller
    when the legend needs it."""
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

    step = max(1, math.ceil(n / 10))
    return LineChart(
        title, css_class, w, h, left, top, pw, ph, y_label,
        [(yp(ymax * k / 4), fmt_num(ymax * k / 4)) for k in range(5)],
        [(xp(i), lab) for i, lab in enumerate(x_labels) if i % step == 0 or i == n - 1],
        [_series(j, name, ys, x_labels, marks, xp, yp, left + pw, top + 8 + 18 * j)
         for j, (name, ys) in enumerate(series.items())],
        not vals)


def line_chart_svg(title: str, x_labels: Sequence[str],
                   series: Mapping[str, Sequence[float | None]], *, y_label: str = "",
                   css_class: str = "trend", y_max: float | None = None,
                   marks: Collection[tuple[str, str]] = ()) -> str:
    """A line plot as SVG (the ``line_chart`` macro). Each point carries its values
    (``data-x``, ``data-y``); ``marks`` ((series, x label) pairs) get a red ring."""
    return macro("line_chart", line_chart(title, x_labels, series, y_label=y_label,
                                          css_class=css_class, y_max=y_max, marks=marks))
