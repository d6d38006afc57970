"""``migfuzz gate``: its options and its run."""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from stress.workload import load_scenario_file

from .._args import add_fix_arguments, fixes_of, positive_float, positive_int
from .._errors import UsageError
from ..bugs import check_bugs
from ..campaign import default_jobs
from ..findings import write_atomic
from ..report import fixes_text
from ._gate import run_gate
from ._plan import (
    CORPUS,
    DEFAULT_BUDGET,
    DFS_PREEMPTION_BOUND,
    STRESS_RUNS_PER_SECOND,
    USER_DFS_MAX_EXECUTIONS,
    GateConfig,
)
from ._report import format_summary, junit_xml

HELP = "pre-merge gate: a bounded, deterministic verdict"
DESCRIPTION: str | None = (
    "Replay the known-bug reproducers and regressions, explore the tiny scenarios "
    "exhaustively (DPOR, preemption bound 2), check that each known flaw of V2 is found without "
    "its upstream fix and gone with every fix (corpus/flaws), then stress a fixed number of "
    "runs from fixed seeds; every part but the flaws runs with every fix by default. Exit 0: "
    "pass; 1: findings; 2: usage error or unusable corpus file; 3: harness error.")


def configure(p: argparse.ArgumentParser) -> None:
    """The ``gate`` options."""
    seconds, count = positive_float, positive_int
    p.add_argument("--budget", type=seconds, default=DEFAULT_BUDGET, metavar="SECONDS",
                   help=f"size of the gate as wall time on the reference machine (default "
                        f"{DEFAULT_BUDGET:g}); converted into a fixed number of stress runs "
                        f"({STRESS_RUNS_PER_SECOND}/s), never compared with the clock, so the "
                        "verdict does not depend on the machine or --jobs")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report (atomically)")
    p.add_argument("--bug", action="append", default=[], metavar="NAME",
                   help="inject a catalog bug into the regression, dfs and stress parts "
                        "(repeatable): the gate must then fail")
    add_fix_arguments(p, default="all")
    p.add_argument("--jobs", type=count, default=None, metavar="N",
                   help=f"stress worker processes (default: os.cpu_count() = {default_jobs()})")
    p.add_argument("--corpus", default=str(CORPUS), metavar="DIR",
                   help="corpus with known/, regressions/ and flaws/ (default: the project's "
                        "corpus/)")
    p.add_argument("--out", default="findings", metavar="DIR",
                   help="directory for finding files of what the gate finds (default "
                        "./findings)")
    p.add_argument("--scenario", metavar="FILE",
                   help="a scenario file (JSON, docs/scenarios.md): the dfs part explores it "
                        f"too (preemption bound {DFS_PREEMPTION_BOUND}, at most "
                        f"{USER_DFS_MAX_EXECUTIONS:,} schedules) and the stress part runs it "
                        "in every run, instead of the mixed scenarios")


def run(a: argparse.Namespace) -> int:
    user = None if a.scenario is None else load_scenario_file(a.scenario)  # names the field
    cfg = GateConfig(budget=a.budget, bugs=tuple(check_bugs(a.bug)), fixes=tuple(fixes_of(a)),
                     jobs=a.jobs or default_jobs(), corpus=Path(a.corpus), out=a.out,
                     scenario_file=a.scenario, scenario_data=None if user is None else user.dumps())
    if not cfg.corpus.is_dir():
        raise UsageError(f"--corpus {cfg.corpus}: no such directory")
    junit = Path(a.junit) if a.junit else None
    for what, d in (("--out", Path(a.out)), ("--junit", junit.parent if junit else None)):
        try:  # fail now, not after minutes of work
            if d is not None:
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{what}: cannot create {d}: {exc.strerror or exc}") from None
    print(f"migfuzz gate: budget {cfg.budget:g} s, bugs {', '.join(cfg.bugs) or 'none'}, "
          f"fixes {fixes_text(cfg.fixes)}, "
          f"{'scenario ' + a.scenario + ', ' if a.scenario else ''}"
          f"{cfg.jobs} job(s), corpus {cfg.corpus} -> {cfg.out}/", file=sys.stderr)
    try:
        result = run_gate(cfg, progress=sys.stderr)
    except (UsageError, KeyboardInterrupt):
        raise
    except Exception:  # a bug in the gate itself: exit 3, with the traceback
        traceback.print_exc()
        print("migfuzz: error: harness error in the gate (not a finding)", file=sys.stderr)
        return 3
    if junit is not None:
        try:
            write_atomic(junit, junit_xml(result))
        except OSError as exc:
            print(f"migfuzz: error: --junit {junit}: cannot write: {exc.strerror or exc}",
                  file=sys.stderr)
            print(format_summary(result))
            return 3
    print(format_summary(result, str(junit) if junit else None))
    return result.exit_code

