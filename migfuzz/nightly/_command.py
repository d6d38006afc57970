"""``migfuzz nightly``: its options and its run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from .._args import add_fix_arguments, fixes_of, jobs_count, non_negative_float, runs_count
from .._errors import UsageError
from .._term import on_terminal
from ..bugs import check_bugs
from ..campaign import connect_cluster, default_jobs
from ._plan import (
    DEFAULT_HOURS,
)
from ._summary import format_night, print_night_rich
from ._supervisor import Nightly

HELP = "time-boxed stress and fuzzing with history and an HTML report"


def configure(p: argparse.ArgumentParser) -> None:
    """The ``nightly`` options."""
    p.add_argument("--hours", type=non_negative_float, default=None, metavar="H",
                   help=f"budget in hours (added to --minutes; default {DEFAULT_HOURS:g} h)")
    p.add_argument("--minutes", type=non_negative_float, default=None, metavar="M",
                   help="budget in minutes (added to --hours)")
    p.add_argument("--runs", type=runs_count, default=None, metavar="N",
                   help="a reproducible night instead of a time budget: each stress run does "
                        "exactly N schedules and each fuzz run N executions, every lane's "
                        "queue once (no clock decides what runs)")
    p.add_argument("--jobs", type=jobs_count, default=None, metavar="N",
                   help=f"processes to use (default: os.cpu_count() = {default_jobs()})")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the stress runs' schedules on the workers of this Dask scheduler "
                        "(tcp://HOST:8786; the fuzz lanes stay on --jobs); needs pip install "
                        "'migfuzz[cluster]'")
    p.add_argument("--bug", action="append", default=[], metavar="NAME",
                   help="inject a catalog bug in every run (repeatable)")
    add_fix_arguments(p)
    p.add_argument("--out", default="nightly", metavar="DIR",
                   help="run directories (finding files, artifacts, logs) and the fuzz "
                        "corpora (default ./nightly)")
    p.add_argument("--db", default=None, metavar="PATH",
                   help="history database (default OUT/history.sqlite)")
    p.add_argument("--report", default=None, metavar="DIR",
                   help="HTML report directory (default OUT/report)")
    p.add_argument("--json", action="store_true",
                   help="print the night's summary as JSON on stdout (runs, findings, "
                        "migration rates and their drops, exit code)")


DESCRIPTION: str | None = (
               "Run the stress portfolio and the fuzz targets in parallel for a time budget "
               "(or, with --runs, a fixed number of schedules and executions per run); "
               "record every run and every finding that replays in a SQLite history; write a "
               "static HTML report (trends, new findings with their interleaving and lock "
               "graph; known flaws of V2 as posted labelled apart; migration rates per "
               "strategy and scenario across nights, a significant drop flagged). Exit 0: no "
               "new findings (a rate drop included); 1: new findings; 2: usage error; 3: "
               "harness error, or a run directory held a file that does not reproduce.")


def run(a: argparse.Namespace) -> int:
    bugs = check_bugs(a.bug)
    fixes = fixes_of(a)
    if a.runs is not None and (a.hours is not None or a.minutes is not None):
        raise UsageError("--runs replaces the time budget: not with --hours or --minutes")
    if a.hours is None and a.minutes is None:
        seconds = DEFAULT_HOURS * 3600
    else:
        seconds = (a.hours or 0.0) * 3600 + (a.minutes or 0.0) * 60
    if seconds <= 0:
        raise UsageError("the budget (--hours + --minutes) must be positive")
    if a.cluster is not None:  # unreachable, or no Dask: exit 2 before the night starts
        connect_cluster(a.cluster).close()
    out = Path(a.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {a.out}: cannot create: {exc.strerror or exc}") from None
    n = Nightly(seconds=seconds, runs=a.runs, jobs=a.jobs or default_jobs(), bugs=bugs,
                fixes=fixes, out=out,
                db=Path(a.db) if a.db else out / "history.sqlite",
                report=Path(a.report) if a.report else out / "report", cluster=a.cluster)
    summary = n.run()
    if a.json:
        print(json.dumps(summary.to_json(), indent=2))
    elif on_terminal(sys.stdout):  # a table of the runs on a terminal; lines in a log or CI
        print_night_rich(summary, Console(file=sys.stdout))
    else:
        print(format_night(summary))
    return summary.exit_code
