"""Small SVG helpers shared by the diagrams, and the trend plots (line charts)."""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Callable, Collection, Mapping, Sequence

from stress import Event as Event

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


# -- trend plots -----------------------------------------------------------------------------

def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10.0 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp  # pragma: no cover


def _series_svg(j: int, name: str, ys: Sequence[float | None], x_labels: Sequence[str],
                marks: Collection[tuple[str, str]], xp: Callable[[int], float],
                yp: Callable[[float], float], legend_x: float, ly: float) -> list[str]:
    """Series ``j`` of a line chart: its polylines (broken where a night has no value), a
    point per value (a red ring on a marked drop) and its legend entry at (legend_x, ly)."""
    out: list[str] = []
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
    out.append(f'<line x1="{legend_x + 12}" y1="{ly - 6}" x2="{legend_x + 26}" '
               f'y2="{ly - 6}" stroke="{color}" stroke-width="3"{dash}/>'
               f'<text x="{legend_x + 30}" y="{ly - 2}" font-size="11">'
               f"{esc(name)}</text></g>")
    return out


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
        out += _series_svg(j, name, ys, x_labels, marks, xp, yp, left + pw, top + 8 + 18 * j)
    if not vals:
        out.append(f'<text x="{left + pw / 2}" y="{top + ph / 2}" font-size="12" '
                   'text-anchor="middle" fill="#777">no data yet</text>')
    out.append("</svg>")
    return "\n".join(out)
