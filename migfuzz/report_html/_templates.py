"""The report's Jinja2 environment: templates shipped as package data, autoescaped.

The templates live in ``migfuzz/report_html/templates/`` (package data in pyproject.toml, so an
installed migfuzz finds them through the package loader, not a path beside the source):
``page.html`` is the page, ``svg.html`` the diagrams as macros (``line_chart``, ``swimlane``,
``lock_graph``). Python computes the geometry (where a bar, an edge, a point goes); the
templates write the markup. Autoescaping is on for every template: a finding's message or a
task name is data, never markup.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2


def fmt_num(v: float) -> str:
    """A number for a chart label or a table cell: 1.2M, 35k, 1,234, 7.5."""
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    if v >= 100 or v == int(v):
        return f"{v:,.0f}"
    return f"{v:.1f}"


def short(text: str, n: int) -> str:
    """``text`` cut to ``n`` characters, an ellipsis marking the cut."""
    return text if len(text) <= n else text[: n - 1] + "\u2026"


@functools.cache
def env() -> jinja2.Environment:
    """The one environment (templates are compiled once per process)."""
    e = jinja2.Environment(
        loader=jinja2.PackageLoader("migfuzz.report_html", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the render, loudly
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    e.filters["num"] = fmt_num
    e.filters["short"] = short
    e.filters["f1"] = lambda v: f"{v:.1f}"
    e.filters["thousands"] = lambda v: f"{v:,}"
    e.filters["g"] = lambda v: f"{v:g}"
    return e


def macro(name: str, /, *args: Any, **kwargs: Any) -> str:
    """Call a macro of ``svg.html`` (a diagram) and return its markup."""
    module = env().get_template("svg.html").module
    return str(getattr(module, name)(*args, **kwargs))


def render_page(**context: Any) -> str:
    """The whole page (``page.html``)."""
    return env().get_template("page.html").render(**context)
