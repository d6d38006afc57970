"""Runs and time to first detection of every catalog bug, per strategy, grouped by depth.

    .venv/bin/python bench/time_to_bug.py [--seeds 5] [--runs 400] [--fuzz-runs 500]
                                          [--bugs A,B] [--strategies ...]
                                          [--out bench/time_to_bug.md]

Every run has all upstream fixes of V2's real flaws applied (``--fixes all``), so the first
finding is the injected bug's and not one of the flaws every scenario family can show: the
model with every fix has no finding in 20,000 runs (bench/flaws.md), so any finding is a
detection of the bug, whatever its kind (a bug often shows first as another kind than its
catalog entry's, nr-refs-constant as no-progress for instance).
Strategies, each with a fresh process state per (bug, seed):

* ``portfolio``: the default ``migfuzz stress --bug BUG --fixes all -x --seed S --runs N``
  (2 jobs, trio executor, mixed canonical/generated scenarios, random + PCT), as a user runs
  it; schedules are the campaign's ``runs``.
* ``random``, ``pct``, ``pos``, ``cpct``, ``surw``: one process, direct executor, the same
  mixed scenarios, one strategy (``pos``: partial order sampling, ``cpct``: conflict-aware
  PCT, ``surw``: selectively uniform random walk; bench/strategies.py measures them all on
  every catalog bug, grouped by kind, into bench/strategies.md).
* ``fuzz...``: libFuzzer, one run of ``bench/fuzz_time_to_bug.fuzz`` per (bug, seed), the
  bug injected and every fix applied, over all canonical scenarios as ``migfuzz fuzz`` runs
  the target (not pinned to the bug's scenario), executions as schedules (budget
  ``--fuzz-runs``; libFuzzer runs every seed whatever the budget): ``fuzz`` is fuzz_schedule
  from its committed seeds (corpus/fuzz_schedule) and the dictionary, with interleaving
  feedback; ``-scenario`` fuzzes fuzz_scenario instead (generated scenarios, not only
  canonical ones), ``-preempt`` fuzz_preempt (the canonical scenarios' preemptions, one byte
  each; its committed seeds are every canonical scenario started by each of its tasks, no
  preemption), ``-empty`` starts from an empty corpus without the dictionary, ``-nofb`` is
  plain code coverage. Below the table: the inputs each fuzz column's libFuzzer found in its
  corpus directories at start, so a column that did not get its corpus shows.

Times are CPU seconds (the process's, its workers' and libFuzzer's, from ``wait4``), so a
shared machine's load does not enter them; fuzz times exclude the start-up (import and
instrumentation, measured by a one-execution run from an empty corpus), which a long campaign
pays once, and include the replay of the seeds.

The depth column is the catalog's (``migfuzz bugs --measure``; a slow test asserts it). A bug
with a model-side check the kernel of the time did not have (``model_check``) gets a second
row without it (in-process strategies only: the other runs are subprocesses that cannot drop
the check).

Medians over seeds; a run that reaches the budget counts as the budget (shown with ">").
The table is rewritten (atomically) after each row, so an interrupted run keeps what it
measured; the start and end times and the load average after each row are written with it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_time_to_bug import fuzz, machine, run_cpu, spread, startup_cpu

from migfuzz._files import write_atomic
from migfuzz.bugs import _noop, check_fixes, injected
from migfuzz.campaign import CampaignConfig, plan_run
from migfuzz.strategies import make_scheduler
from stress.run import run_scenario
from target.bugs import CATALOG, HistoricalBug, inject

ROOT = Path(__file__).resolve().parent.parent
FIXES = tuple(check_fixes(["all"]))
IN_PROCESS = ("random", "pct", "pos", "cpct", "surw")
"""Strategies run in this process (the only ones that can drop a model-side check)."""


def in_process(bug: str, strategy: str, seed: int, budget: int,
               without_check: bool = False,
               members: tuple[str, ...] | None = None) -> tuple[float, int, bool]:
    """(CPU seconds, runs, found) of one strategy on the mixed scenarios, at most ``budget``
    runs; ``members``: a portfolio's (bench/strategies.py), else the strategy alone."""
    cfg = CampaignConfig(seed=seed, strategy=strategy, bugs=(bug,), fixes=FIXES,
                         members=members or (strategy,))
    check = CATALOG[bug].model_check
    t0 = time.process_time()
    with contextlib.ExitStack() as stack:
        if without_check:
            stack.enter_context(inject([HistoricalBug(f"no {check}", 0, "", "", "", (), "",
                                                      "", {check: _noop}, 0)]))
        stack.enter_context(injected([bug], FIXES))
        for runs in range(1, budget + 1):
            scenario, spec = plan_run(cfg, runs - 1)
            sched = make_scheduler(spec)
            sched.new_execution()
            out = run_scenario(scenario, sched, executor="direct")
            if out.finding is not None:
                return time.process_time() - t0, runs, True
    return time.process_time() - t0, budget, False


def portfolio(bug: str, seed: int, budget: int, out_dir: Path) -> tuple[float, int, bool]:
    """(CPU seconds, runs, found) of the default ``migfuzz stress`` with ``budget`` runs (its
    worker processes included)."""
    cmd = [sys.executable, "-m", "migfuzz.cli", "stress", "--bug", bug, "--fixes", "all",
           "-x", "--seed", str(seed), "--runs", str(budget), "--out", str(out_dir), "--json"]
    stdout, _, cpu = run_cpu(cmd)
    try:
        summary = json.loads(stdout)
    except ValueError:  # no JSON: a failed run
        return cpu, 0, False
    found = bool(summary.get("findings"))
    return cpu, int(summary.get("runs", 0)), found


def bad(message: str) -> NoReturn:
    """Bad input: one line, exit code 2."""
    print(f"bench: {message}", file=sys.stderr)
    raise SystemExit(2)


FUZZ_TARGETS = {"": "fuzz_schedule", "-scenario": "fuzz_scenario", "-preempt": "fuzz_preempt"}
"""The fuzz target of each ``fuzz...`` strategy name's infix."""


def fuzz_terms(strategy: str) -> tuple[str, str, bool]:
    """(target, feedback mode, from the committed seeds) of a ``fuzz...`` strategy name."""
    parts = strategy.split("-")[1:]
    unknown = set(parts) - {"scenario", "preempt", "empty", "nofb"}
    if strategy.split("-")[0] != "fuzz" or unknown:
        bad(f"unknown strategy {strategy!r}")
    target = next((t for k, t in FUZZ_TARGETS.items() if k and k[1:] in parts), "fuzz_schedule")
    return target, "none" if "nofb" in parts else "all", "empty" not in parts


def label(strategy: str) -> str:
    """A column's name: the strategy, or a fuzz strategy's target and corpus."""
    if not strategy.startswith("fuzz"):
        return strategy
    target, mode, seeds = fuzz_terms(strategy)
    return (f"{target} {'seeds' if seeds else 'empty'}"
            f"{' no feedback' if mode == 'none' else ''}")


def unit(strategy: str) -> str:
    return "executions" if strategy.startswith("fuzz") else "schedules"


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def utc() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def measure(bug: str, strat: str, seed: int, budget: int, without: bool,
            startup: dict[tuple[str, str], float],
            loaded: dict[str, set[int]]) -> tuple[float, int, bool]:
    """(CPU seconds, schedules or executions, found) of one (bug, strategy, seed)."""
    if strat == "portfolio":
        return portfolio(bug, seed, budget, ROOT / "build" / "ttb" / f"{bug}-{seed}")
    if not strat.startswith("fuzz"):
        return in_process(bug, strat, seed, budget, without)
    target, mode, seeds = fuzz_terms(strat)
    if (target, mode) not in startup:  # import + instrumentation, paid once
        startup[target, mode] = startup_cpu(target, mode)
    r = fuzz(target, seed, bug=bug, mode=mode, runs=budget, seeds=seeds)
    loaded.setdefault(strat, set()).add(r.seed_inputs)
    return max(r.cpu - startup[target, mode], 0.0), r.executions, r.crashed


def row(bug: str, without: bool, strats: list[str], args: argparse.Namespace,
        startup: dict[tuple[str, str], float], loaded: dict[str, set[int]]) -> str:
    """One table row: per strategy, schedules (executions) and median CPU seconds."""
    cells: list[str] = []
    for strat in strats:
        if without and strat not in IN_PROCESS:
            cells += ["n/a", "n/a"]
            continue
        budget = args.fuzz_runs if strat.startswith("fuzz") else args.runs
        times: list[float] = []
        runs: list[float] = []
        found = 0
        for seed in range(args.seeds):
            t, n, ok = measure(bug, strat, seed, budget, without, startup, loaded)
            times.append(t)
            runs.append(n if ok else budget)
            found += ok
            print(bug, strat, seed, f"{t:.1f}s", n, ok, flush=True)
        cells += [spread(runs, found, args.seeds, ",.0f"), f"{statistics.median(times):.1f}"]
    b = CATALOG[bug]
    depth = b.depth_without_check if without else b.depth
    name = f"{bug} (without {b.model_check.split(':')[-1]})" if without else bug
    return f"| {name} | {'>3' if depth is None else depth} | " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=400,
                    help="schedules per (bug, seed) for portfolio and the in-process strategies")
    ap.add_argument("--fuzz-runs", type=int, default=500,
                    help="libFuzzer's executions per (bug, seed)")
    ap.add_argument("--bugs", default=",".join(sorted(CATALOG, key=lambda b: CATALOG[b].depth)))
    ap.add_argument("--strategies", default="portfolio,random,pct,fuzz,fuzz-empty,fuzz-preempt,"
                    "fuzz-preempt-empty",
                    help="comma-separated (the machine is shared: keep runs short)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "time_to_bug.md"))
    args = ap.parse_args()
    strats = args.strategies.split(",")
    for s in strats:
        if s.startswith("fuzz"):
            fuzz_terms(s)
        elif s not in ("portfolio", *IN_PROCESS):
            bad(f"unknown strategy {s!r}")
    bugs = args.bugs.split(",")
    unknown = [b for b in bugs if b not in CATALOG]
    if unknown:
        bad(f"unknown bug {unknown[0]!r}")
    out = Path(args.out)
    header = [
        "# Runs and time to first detection of each catalog bug", "",
        f"Machine: {machine()}; started {utc()}, load average {load()} (1/5/15 min).", "",
        f"Command: `.venv/bin/python bench/time_to_bug.py {' '.join(sys.argv[1:])}`", "",
        f"Every run with all upstream fixes of V2's flaws applied (`--fixes all`). Per column: "
        f"median schedules (libFuzzer: executions) to the first finding (any finding is the "
        f"bug's: the model with every fix has none) [min-max] (found/seeds) over {args.seeds} "
        f"seeds, at most {args.runs:,} schedules (libFuzzer: {args.fuzz_runs:,} executions) "
        f"each, a run without a find counted as its budget, and the median CPU seconds. `>`: "
        f"the median run used its budget.", "",
        "| bug | depth | " + " | ".join(f"{label(s)} {unit(s)} | {label(s)} CPU s"
                                        for s in strats) + " |",
        "|---|---|" + "---|---|" * len(strats),
    ]
    rows = [(b, False) for b in bugs] + [(b, True) for b in bugs if CATALOG[b].model_check]
    startup: dict[tuple[str, str], float] = {}
    loaded: dict[str, set[int]] = {}
    lines: list[str] = []
    loads = [load()]
    for bug, without in rows:
        lines.append(row(bug, without, strats, args, startup, loaded))
        loads.append(load())
        print(lines[-1], flush=True)
        write_atomic(out, "\n".join([*header, *lines, *footer(startup, loaded, loads)]) + "\n")


def footer(startup: dict[tuple[str, str], float], loaded: dict[str, set[int]],
           loads: list[str]) -> list[str]:
    """What the table's run was: when it ended, the load beside it, the fuzzers' start-up
    CPU seconds (subtracted) and the inputs each fuzz column's libFuzzer read at start."""
    lines = ["", f"Last row written {utc()}; load average after each row (1/5/15 min): "
             + ", ".join(loads) + "."]
    if startup:
        lines += ["", "Fuzzer start-up CPU seconds (import and instrumentation, subtracted): "
                  + ", ".join(f"{t} {'no feedback' if m == 'none' else 'feedback'} {c:.1f}"
                              for (t, m), c in startup.items()) + "."]
    if loaded:
        lines += ["", "Inputs in libFuzzer's corpus directories at start, per column: "
                  + ", ".join(f"{label(s)} {'/'.join(map(str, sorted(n)))}"
                              for s, n in loaded.items()) + "."]
    return lines


if __name__ == "__main__":
    main()
