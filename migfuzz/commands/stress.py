"""``migfuzz stress``: run a stress campaign and save findings."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from stress import DEFAULT_MAX_STEPS
from stress.scenarios import CANONICAL, canonical
from stress.workload import load_scenario_file

from .._args import (
    EXECUTORS,
    MAX_JOBS,
    add_fix_arguments,
    fixes_of,
    jobs_count,
    max_steps_count,
    non_negative_int,
    runs_count,
    seconds_budget,
)
from .._term import on_terminal
from ..bugs import check_bugs
from ..campaign import SCENARIO_MODES, Campaign, CampaignConfig, connect_cluster, default_jobs
from ..report import fixes_text, format_summary, print_summary_rich, strategies_line
from ..strategies import BASE_STRATEGIES, STRATEGIES, check_strategy

HELP = "run a stress campaign and save findings"
DESCRIPTION: str | None = (
    "Run the model under many schedules; save one finding file per distinct signature; label "
    "each finding a known flaw of V2 as posted explains (by replaying it with that flaw's "
    "upstream fix). Exit 0: no findings, or only known flaws; 1: a finding no known flaw "
    "explains; 2: usage error; 3: harness error.")


def configure(p: argparse.ArgumentParser) -> None:
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=seconds_budget, metavar="N",
                        help="run for N seconds (default: 60 unless --runs is given)")
    budget.add_argument("--runs", type=runs_count, metavar="N",
                        help="run exactly N schedules (deterministic for a given --seed)")
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                   help="campaign seed (default 0)")
    p.add_argument("--strategy", choices=STRATEGIES, default="portfolio",
                   help="scheduling strategy (default: portfolio, alternating random and pct; "
                        "pos: partial order sampling, cpct: conflict-aware PCT; dpor: "
                        "source-set DPOR, each run a search of its scenario, at most 2,000 "
                        "executions with at most 2 preemptions)")
    p.add_argument("--executor", choices=EXECUTORS, default="trio",
                   help="run each execution in this executor (default trio)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=jobs_count, default=None, metavar="N",
                       help=f"worker processes, at most {MAX_JOBS} (default: os.cpu_count() = "
                            f"{default_jobs()})")
    where.add_argument("--cluster", metavar="ADDRESS",
                       help="run on the workers of this Dask scheduler (tcp://HOST:8786) "
                            "instead of local processes; needs pip install 'migfuzz[cluster]'")
    p.add_argument("--scenario", metavar="NAME|FILE",
                   help="a canonical scenario (see `migfuzz scenarios`), or `generated` "
                        "(a new scenario per run), `canonical` (all canonical ones), `mixed` "
                        "(default: half canonical, half generated), or a scenario file "
                        "(JSON; docs/scenarios.md) that every run runs")
    p.add_argument("--bug", action="append", default=[], metavar="NAME",
                   help="inject a catalog bug (repeatable)")
    add_fix_arguments(p)
    p.add_argument("--out", default="findings", metavar="DIR",
                   help="directory for finding files (default ./findings)")
    p.add_argument("--max-steps", type=max_steps_count, default=DEFAULT_MAX_STEPS, metavar="N",
                   help=f"scheduling points before a run is a livelock "
                        f"(default {DEFAULT_MAX_STEPS})")
    p.add_argument("-x", "--exitfirst", action="store_true",
                   help="stop at the first finding")
    p.add_argument("--json", action="store_true",
                   help="print a machine-readable summary on stdout (the table goes to stderr)")


def run(a: argparse.Namespace) -> int:
    check_strategy(a.strategy)
    scenario_data = None
    if a.scenario is not None and a.scenario not in SCENARIO_MODES:
        if a.scenario not in CANONICAL and (a.scenario.endswith(".json")
                                            or Path(a.scenario).is_file()):
            user = load_scenario_file(a.scenario)  # ScenarioError names file and field
            scenario_data, a.scenario = user.dumps(), user.name
        else:
            canonical(a.scenario)  # ScenarioError names the valid ones
    bugs = check_bugs(a.bug)
    fixes = fixes_of(a)
    Path(a.out).mkdir(parents=True, exist_ok=True)  # checked writable by check_outputs
    client = connect_cluster(a.cluster) if a.cluster is not None else None
    # (on a cluster, ``jobs`` is only reported: its workers when the campaign starts)
    jobs = len(client.nthreads()) if client is not None else a.jobs or default_jobs()
    seconds = a.seconds if a.seconds is not None or a.runs is not None else 60.0
    cfg = CampaignConfig(
        seed=a.seed, runs=a.runs, seconds=seconds, strategy=a.strategy,
        executor=a.executor, jobs=jobs, scenario=a.scenario,
        scenario_data=scenario_data,
        bugs=tuple(bugs), fixes=tuple(fixes), out=a.out, max_steps=a.max_steps,
        exitfirst=a.exitfirst,
        members=BASE_STRATEGIES, cluster=a.cluster,
    )
    where = (f"cluster {a.cluster} ({jobs} workers)" if client is not None
             else f"{jobs} job{'s' if jobs != 1 else ''}")
    budget = f"{cfg.runs:,} runs" if cfg.runs is not None else f"{cfg.seconds:g} s"
    print(f"migfuzz stress: {budget}, seed {cfg.seed}, strategy "
          f"{strategies_line(cfg.strategy, cfg.members)}"
          f", executor {cfg.executor}, {where}, "
          f"scenarios {cfg.scenario or 'mixed'}, bugs {', '.join(bugs) or 'none'}, "
          f"fixes {fixes_text(fixes)} -> "
          f"{cfg.out}/", file=sys.stderr)
    summary = Campaign(cfg, progress=sys.stderr, client=client).run()
    if a.json:
        print(format_summary(summary), file=sys.stderr)
        print(json.dumps(summary.to_json(), indent=2))
    elif on_terminal(sys.stdout):  # tables on a terminal; today's lines in a log or CI
        print_summary_rich(summary, Console(file=sys.stdout))
    else:
        print(format_summary(summary))
    # A Ctrl-C'd campaign is not a clean one, whatever it found before.
    return 130 if summary.interrupted else summary.exit_code
