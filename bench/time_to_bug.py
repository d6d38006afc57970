"""Runs and time to first detection of every catalog bug, per strategy, grouped by depth.

    .venv/bin/python bench/time_to_bug.py [--seeds 5] [--runs 2000] [--fuzz-runs 5000]
                                          [--strategies ...] [--out bench/time_to_bug.md]

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
* ``fuzz...``: libFuzzer (bench/fuzz_time_to_bug.py has the details), executions as schedules:
  ``fuzz`` is fuzz_schedule from the committed seeds with interleaving feedback; ``-scenario``
  fuzzes fuzz_scenario instead (generated scenarios, not only canonical ones), ``-preempt``
  fuzz_preempt (the canonical scenarios' preemptions, one byte each), ``-empty``
  starts from an empty corpus without the dictionary, ``-nofb`` is plain code coverage.

Times are CPU seconds (the process's, its workers' and libFuzzer's, from ``wait4``), so a
shared machine's load does not enter them; fuzz times exclude the start-up (import and
instrumentation), which a long campaign pays once.

The depth column is the catalog's (``migfuzz bugs --measure``; a slow test asserts it). A bug
with a model-side check the kernel of the time did not have (``model_check``) gets a second
row without it (in-process strategies only: the other runs are subprocesses that cannot drop
the check).

Medians over seeds; a run that reaches the budget counts as the budget (shown with ">").
Results are appended to the table as they come, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_time_to_bug import fuzz, machine, run_cpu, startup_cpu

from migfuzz.bugs import _noop, check_fixes, injected
from migfuzz.campaign import CampaignConfig, plan_run
from migfuzz.strategies import make_scheduler
from stress.run import run_scenario
from target.bugs import CATALOG, HistoricalBug, inject

ROOT = Path(__file__).resolve().parent.parent
FIXES = tuple(check_fixes(["all"]))


def in_process(bug: str, strategy: str, seed: int, budget: int,
               without_check: bool = False) -> tuple[float, int, bool]:
    """(CPU seconds, runs, found) of one strategy on the mixed scenarios, at most ``budget``
    runs."""
    cfg = CampaignConfig(seed=seed, strategy=strategy, bugs=(bug,), fixes=FIXES,
                         members=(strategy,))
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


def fmt(values: list[float], found: int, seeds: int, budget: float, unit: str = "") -> str:
    med = statistics.median(values)
    spread = f"{min(values):.{1 if unit else 0}f}-{max(values):.{1 if unit else 0}f}"
    return (f"{'>' if med >= budget else ''}{med:.{1 if unit else 0}f}{unit} [{spread}] "
            f"({found}/{seeds})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=2000,
                    help="schedules per (bug, seed) for portfolio, random and pct")
    ap.add_argument("--fuzz-runs", type=int, default=5000,
                    help="libFuzzer's executions per (bug, seed)")
    ap.add_argument("--bugs", default=",".join(sorted(CATALOG, key=lambda b: CATALOG[b].depth)))
    ap.add_argument("--strategies", default="portfolio,random,pct,fuzz,fuzz-nofb,fuzz-empty,"
                    "fuzz-empty-nofb,fuzz-scenario,fuzz-scenario-nofb,fuzz-preempt,"
                    "fuzz-preempt-nofb,fuzz-preempt-empty,fuzz-preempt-empty-nofb",
                    help="comma-separated subset (the machine is shared: keep runs short)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "time_to_bug.md"))
    args = ap.parse_args()
    strats = args.strategies.split(",")
    out = Path(args.out)
    header = [
        "# Runs and time to first detection of each catalog bug", "",
        f"Machine: {machine()}.", "",
        f"Command: `.venv/bin/python bench/time_to_bug.py {' '.join(sys.argv[1:])}`", "",
        f"Every run with all upstream fixes of V2's flaws applied (`--fixes all`). Per strategy: "
        f"median schedules (libFuzzer: executions) to the first finding (any finding is the "
        f"bug's: the model with every fix has none) [min-max] (found/seeds) over {args.seeds} "
        f"seeds, at most {args.runs:,} schedules (libFuzzer: {args.fuzz_runs:,} executions) "
        f"each, and the median CPU seconds. `>`: the median run used its budget.", "",
        "| bug | depth | " + " | ".join(f"{s} schedules | {s} CPU s" for s in strats) + " |",
        "|---|---|" + "---|---|" * len(strats),
    ]
    out.write_text("\n".join(header) + "\n")
    tmp = ROOT / "build" / "ttb"
    rows = [(b, False) for b in args.bugs.split(",")]
    rows += [(b, True) for b in args.bugs.split(",") if CATALOG[b].model_check]
    startup: dict[tuple[str, str], float] = {}
    for bug, without in rows:
        cells: list[str] = []
        for strat in strats:
            if without and strat not in ("random", "pct", "pos", "cpct", "surw"):
                cells += ["n/a", "n/a"]
                continue
            budget = args.fuzz_runs if strat.startswith("fuzz") else args.runs
            times: list[float] = []
            runs: list[float] = []
            found = 0
            for seed in range(args.seeds):
                if strat == "portfolio":
                    t, n, ok = portfolio(bug, seed, args.runs, tmp / f"{bug}-{seed}")
                elif not strat.startswith("fuzz"):
                    t, n, ok = in_process(bug, strat, seed, args.runs, without)
                else:
                    target = ("fuzz_scenario" if "-scenario" in strat else
                              "fuzz_preempt" if "-preempt" in strat else "fuzz_schedule")
                    mode = "none" if strat.endswith("-nofb") else "all"
                    if (target, mode) not in startup:  # import + instrumentation, paid once
                        startup[target, mode] = startup_cpu(target, mode)
                    r = fuzz(target, seed, bug=bug, mode=mode, runs=budget,
                             seeds="-empty" not in strat)
                    t, n, ok = max(r.cpu - startup[target, mode], 0.0), r.executions, r.crashed
                times.append(t)
                runs.append(n if ok else budget)
                found += ok
                print(bug, strat, seed, f"{t:.1f}s", n, ok, flush=True)
            cells += [fmt(runs, found, args.seeds, budget), f"{statistics.median(times):.1f}"]
        b = CATALOG[bug]
        depth = b.depth_without_check if without else b.depth
        name = f"{bug} (without {b.model_check.split(':')[-1]})" if without else bug
        line = f"| {name} | {'>3' if depth is None else depth} | " + " | ".join(cells) + " |"
        with out.open("a") as fh:
            fh.write(line + "\n")
        print(line, flush=True)


if __name__ == "__main__":
    main()
