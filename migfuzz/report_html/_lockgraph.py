"""The lock-order graph of a finding: lock classes as nodes, the acquired-while-holding
edges the replay observed per task, a lock-order finding's inverting edge in red. The layout
here, the markup in the ``lock_graph`` macro of ``templates/svg.html``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._labels import lock_class
from ._svg import Event
from ._templates import macro


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


_BOX_H, _ROW_GAP = 30, 70  # a class's box, and the gap between ranks


def _layout(g: LockGraphData) -> tuple[dict[str, tuple[float, float]], dict[str, float],
                                       float, int]:
    """(box position, box width) per class, and the picture's width and height: classes
    ranked by the documented order, the others below what they were taken under."""
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
    box_h, row_gap, col_gap = _BOX_H, _ROW_GAP, 40
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
    return pos, widths, width, height


def _edge_path(src: tuple[float, float], dst: tuple[float, float], w1: float, w2: float,
               loop: bool) -> tuple[str, float, float]:
    """The SVG path of an edge between two boxes, and where its label goes."""
    (x1, y1), (x2, y2) = src, dst
    box_h, row_gap = _BOX_H, _ROW_GAP
    if loop:
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
    return d, lx, ly


# role -> (colour, stroke width, dashed, marker tag)
_STYLE = {
    "observed": ("#4a5568", "1.6", False, "obs"),
    "chain": ("#dd8a0b", "2.4", False, "chain"),
    "documented": ("#999999", "1.4", True, "doc"),
    "inverting": ("#d62728", "3.2", False, "inv"),
}
_ROLE_ORDER = {"documented": 0, "observed": 1, "chain": 2, "inverting": 3}


@dataclass(frozen=True)
class _DrawnEdge:
    edge: Edge
    d: str  # the SVG path
    lx: float  # where the label goes
    ly: float
    color: str
    width: str
    dashed: bool
    tag: str
    label: str
    title: str


@dataclass(frozen=True)
class _DrawnNode:
    name: str
    x: float
    y: float
    w: float
    involved: bool


@dataclass(frozen=True)
class LockGraphPicture:
    """Where everything of a lock-order graph goes; ``templates/svg.html`` draws it."""

    uid: str
    width: float
    height: int
    box_h: int
    markers: list[tuple[str, str]]  # (tag, colour)
    edges: list[_DrawnEdge]
    nodes: list[_DrawnNode]


def _drawn_edge(e: Edge, pos: dict[str, tuple[float, float]],
                widths: dict[str, float]) -> _DrawnEdge:
    color, sw, dashed, tag = _STYLE[e.role]
    d, lx, ly = _edge_path(pos[e.src], pos[e.dst], widths[e.src], widths[e.dst],
                           e.src == e.dst)
    label = {"inverting": f"{e.text or 'new edge'}: inverts the order",
             "chain": "existing order", "documented": "documented"}.get(
                 e.role, f"\u00d7{e.count}")
    if e.role in ("inverting", "chain") and e.count:
        label += f" (\u00d7{e.count})"
    title = (f"{e.src} -> {e.dst}: {e.role}"
             + (f", observed {e.count}x ({', '.join(sorted(e.tasks))})" if e.count else "")
             + (f"; {e.witness}" if e.witness else ""))
    return _DrawnEdge(e, d, lx, ly, color, sw, dashed, tag, label, title)


def lock_graph_picture(g: LockGraphData, *, uid: str = "g") -> LockGraphPicture | None:
    """The layout of the graph (None: no locks were taken)."""
    if not g.nodes:
        return None
    pos, widths, width, height = _layout(g)
    edges = [_drawn_edge(e, pos, widths)
             for e in sorted(g.edges, key=lambda e: (_ROLE_ORDER[e.role], e.src, e.dst))]
    nodes = [_DrawnNode(n, *pos[n], widths[n], n in g.involved) for n in g.nodes]
    return LockGraphPicture(uid, width, height, _BOX_H,
                            [(tag, color) for color, _, _, tag in _STYLE.values()],
                            edges, nodes)


def lock_graph_svg(g: LockGraphData, *, uid: str = "g") -> str:
    """Lock classes as boxes ranked by the documented order (mm/rmap.c: outermost on top), so
    an edge pointing upwards goes against it; the inverting edge is red and thick (the
    ``lock_graph`` macro)."""
    return macro("lock_graph", lock_graph_picture(g, uid=uid))
