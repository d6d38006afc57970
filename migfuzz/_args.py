"""argparse value types shared by every subcommand: one message style for every bad number."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

from ._errors import UsageError
from ._finding_schema import MAX_STEPS

N = TypeVar("N", int, float)


def _number(parse: Callable[[str], N], ok: Callable[[N], bool],
            what: str) -> Callable[[str], N]:
    def convert(text: str) -> N:
        try:
            v = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    return convert


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: v > 0 and math.isfinite(v),
                         "a positive number of seconds")
non_negative_float = _number(float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0")


def add_fix_arguments(p: argparse.ArgumentParser, default: str = "none") -> None:
    """``--fix NAME`` (repeatable) and ``--fixes all|none``: the upstream fixes of V2's real
    flaws to apply (``migfuzz fixes``); ``default`` is what neither option gives."""
    p.add_argument("--fix", action="append", default=[], metavar="NAME",
                   help="apply the upstream fix of a known flaw of V2 (repeatable; `all` for "
                        "every one; see `migfuzz fixes`)")
    p.add_argument("--fixes", choices=("all", "none"), default=None,
                   help=f"all: every upstream fix; none: V2 as posted (default {default})")
    p.set_defaults(fixes_default=default)


def fixes_of(a: argparse.Namespace) -> list[str]:
    """The fixes the options ask for, validated and closed under requirements (sorted)."""
    from .bugs import check_fixes

    if a.fixes == "none" and a.fix:
        raise UsageError("--fixes none contradicts --fix")
    if a.fix:
        return check_fixes([*a.fix, *(["all"] if a.fixes == "all" else [])])
    return check_fixes(["all"] if (a.fixes or a.fixes_default) == "all" else [])


def bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    """An integer in [lo, hi]: flags that size work or memory are bounded (see BOUNDS)."""
    return _number(int, lambda v: lo <= v <= hi, f"an integer from {lo} to {hi:,}")


MAX_JOBS = 64
"""``--jobs``: more processes than this on any machine we run on only adds load."""

MAX_SEARCH_RUNS = 10_000
"""``minimize --search-runs``: each is a full run per candidate."""

MAX_RUNS = 10**9
MAX_SECONDS = 7 * 86400.0

jobs_count = bounded_int(1, MAX_JOBS)
search_runs_count = bounded_int(0, MAX_SEARCH_RUNS)
runs_count = bounded_int(1, MAX_RUNS)
seconds_budget = _number(float, lambda v: 0 < v <= MAX_SECONDS and math.isfinite(v),
                         f"a positive number of seconds up to {MAX_SECONDS:g}")
max_steps_count = bounded_int(1, MAX_STEPS)

EXECUTORS = ("trio", "direct")
"""``--executor``: the stress service's (trio) and the fuzzers' (direct)."""
