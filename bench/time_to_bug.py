"""Time and schedules to first detection of every catalog bug, per strategy.

    .venv/bin/python bench/time_to_bug.py [--seeds 5] [--budget 120] [--strategies ...]
                                          [--out bench/time_to_bug.md]

Strategies, each with a fresh process state per (bug, seed):

* ``portfolio``: the default ``migfuzz stress --bug BUG -x --seed S --seconds BUDGET`` (2 jobs,
  trio executor, mixed canonical/generated scenarios, random + PCT), as a user runs it;
  time is the wall time of the command.
* ``random``, ``pct``: one process, direct executor, the same mixed scenarios, one strategy.
* ``dfs``: the bug's depth (``migfuzz bugs --measure``): exhaustive DFS of its canonical
  scenario at preemption bounds 0, 1, ..., reported as "depth/schedules at that bound".
* ``fuzz``, ``fuzz-nofb``: libFuzzer on fuzz_schedule from the committed seeds, with and without
  interleaving feedback (bench/fuzz_time_to_bug.py has the details).

Rows are grouped by depth. A bug with a model-side check the kernel of the time did not have
(``model_check``) gets a second row without it (in-process strategies and dfs only: the fuzz
targets run in a subprocess that cannot drop the check).

Medians over seeds; a run that reaches the budget counts as the budget (shown with ">").
Results are appended to the table as they come, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_time_to_bug import fuzz, machine

from migfuzz.bugs import _noop, injected, measure_depth
from migfuzz.campaign import CampaignConfig, plan_run
from migfuzz.strategies import make_scheduler
from stress.run import run_scenario
from target.bugs import CATALOG, HistoricalBug, inject

ROOT = Path(__file__).resolve().parent.parent


def in_process(bug: str, strategy: str, seed: int, budget: float,
               without_check: bool = False) -> tuple[float, int, bool]:
    cfg = CampaignConfig(seed=seed, strategy=strategy, bugs=(bug,), members=(strategy,))
    t0 = time.monotonic()
    runs = 0
    check = CATALOG[bug].model_check
    with contextlib.ExitStack() as stack:
        if without_check:
            stack.enter_context(inject([HistoricalBug(f"no {check}", 0, "", "", "", (), "",
                                                      "", {check: _noop}, 0)]))
        stack.enter_context(injected([bug]))
        while time.monotonic() - t0 < budget:
            scenario, spec = plan_run(cfg, runs)
            sched = make_scheduler(spec)
            sched.new_execution()
            out = run_scenario(scenario, sched, executor="direct")
            runs += 1
            if out.finding is not None:
                return time.monotonic() - t0, runs, True
    return budget, runs, False


def portfolio(bug: str, seed: int, budget: float, out_dir: Path) -> tuple[float, int, bool]:
    cmd = [sys.executable, "-m", "migfuzz.cli", "stress", "--bug", bug, "-x", "--seed",
           str(seed), "--seconds", str(budget), "--out", str(out_dir), "--json"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=budget + 120)
    elapsed = time.monotonic() - t0
    runs = 0
    with contextlib.suppress(ValueError, AttributeError):  # no JSON: a failed run, 0 runs
        runs = int(json.loads(proc.stdout).get("runs", 0))
    return elapsed, runs, proc.returncode == 1


def dfs(bug: str, without_check: bool) -> str:
    if without_check:
        # Not re-measured here: bound 3 alone is ~100,000 executions (minutes); the catalog's
        # claim is asserted by tests/test_known_bugs.py::test_depth_is_what_the_catalog_claims.
        return "none <= 3 (catalog, slow test)"
    r = measure_depth(bug, without_check=without_check)
    return (f"{r.bound}/{r.executions}" if r.bound is not None else
            f"none <= 3 ({r.executions:,}{'' if r.exhaustive else ', capped'})")


def fmt(times: list[float], found: int, seeds: int, budget: float) -> str:
    med = statistics.median(times)
    return f"{'>' if med >= budget else ''}{med:.1f} ({found}/{seeds})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=float, default=120.0)
    ap.add_argument("--bugs", default=",".join(sorted(CATALOG, key=lambda b: CATALOG[b].depth)))
    ap.add_argument("--strategies", default="portfolio,random,pct,fuzz,fuzz-nofb",
                    help="comma-separated subset (the machine is shared: keep runs short)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "time_to_bug.md"))
    args = ap.parse_args()
    strats = args.strategies.split(",")
    out = Path(args.out)
    header = [
        "# Time to first detection of each catalog bug", "",
        f"Machine: {machine()}.", "",
        f"Command: `.venv/bin/python bench/time_to_bug.py --seeds {args.seeds} "
        f"--budget {args.budget:g} --strategies {args.strategies}`", "",
        f"Median seconds to the first finding over {args.seeds} seeds (found/seeds), "
        f"{args.budget:g} s budget each; `>` = the median run hit the budget. Schedules: "
        "median schedules run until the finding. dfs: depth/schedules explored at that bound "
        "(exhaustive DFS of the bug's canonical scenario, bounds 0, 1, ...).", "",
        "| bug | depth | " + " | ".join(f"{s} s | schedules" for s in strats) + " | dfs |",
        "|---|---|" + "---|---|" * len(strats) + "---|",
    ]
    out.write_text("\n".join(header) + "\n")
    tmp = ROOT / "build" / "ttb"
    rows = [(b, False) for b in args.bugs.split(",")]
    rows += [(b, True) for b in args.bugs.split(",") if CATALOG[b].model_check]
    for bug, without in rows:
        row: dict[str, str] = {}
        for strat in strats:
            if without and strat not in ("random", "pct"):
                row[strat], row[strat + ":runs"] = "n/a", ""
                continue
            times: list[float] = []
            runs: list[int] = []
            found = 0
            for seed in range(args.seeds):
                if strat == "portfolio":
                    t, n, ok = portfolio(bug, seed, args.budget, tmp / f"{bug}-{seed}")
                elif strat in ("random", "pct"):
                    t, n, ok = in_process(bug, strat, seed, args.budget, without)
                else:
                    t, ok, _ = fuzz("fuzz_schedule", int(args.budget), seed, bug=bug,
                                    feedback=strat == "fuzz")
                    n = 0
                times.append(t if ok else args.budget)
                runs.append(n)
                found += ok
                print(bug, strat, seed, f"{t:.1f}s", n, ok, flush=True)
            row[strat] = fmt(times, found, args.seeds, args.budget)
            row[strat + ":runs"] = f"{statistics.median(runs):.0f}"
        b = CATALOG[bug]
        depth = b.depth_without_check if without else b.depth
        name = f"{bug} (without {b.model_check.split(':')[-1]})" if without else bug
        line = (f"| {name} | {'>3' if depth is None else depth} | "
                + " | ".join(f"{row[s]} | {row[s + ':runs']}" for s in strats)
                + f" | {dfs(bug, without)} |")
        with out.open("a") as fh:
            fh.write(line + "\n")
        print(line, flush=True)


if __name__ == "__main__":
    main()
