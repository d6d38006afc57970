"""Time and schedules to first detection of every catalog bug, per strategy.

    .venv/bin/python bench/time_to_bug.py [--seeds 5] [--budget 120] [--out bench/time_to_bug.md]

Strategies, each with a fresh process state per (bug, seed):

* ``portfolio``: the default ``migfuzz stress --bug BUG -x --seed S --seconds BUDGET`` (2 jobs,
  trio executor, mixed canonical/generated scenarios, random + PCT), as a user runs it;
  time is the wall time of the command.
* ``random``, ``pct``: one process, direct executor, the same mixed scenarios, one strategy.
* ``dfs``: preemption-bounded exhaustive search (bound 2) of the bug's own canonical scenario
  (one run: it is deterministic), reported as schedules explored until the first finding.
* ``fuzz``, ``fuzz-nofb``: libFuzzer on fuzz_schedule from the committed seeds, with and without
  interleaving feedback (bench/fuzz_time_to_bug.py has the details).

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

from migfuzz.bugs import injected
from migfuzz.campaign import CampaignConfig, plan_run
from migfuzz.strategies import make_scheduler
from stress.run import run_scenario
from stress.scenarios import canonical
from stress.schedulers import DFSScheduler
from target.bugs import CATALOG

ROOT = Path(__file__).resolve().parent.parent


def in_process(bug: str, strategy: str, seed: int, budget: float) -> tuple[float, int, bool]:
    cfg = CampaignConfig(seed=seed, strategy=strategy, bugs=(bug,), members=(strategy,))
    t0 = time.monotonic()
    runs = 0
    with injected([bug]):
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


def dfs(bug: str) -> tuple[int, bool]:
    scenario = canonical(CATALOG[bug].scenario)
    sched = DFSScheduler(preemption_bound=2, max_executions=20_000)
    n = 0
    with injected([bug]):
        while sched.new_execution():
            n += 1
            if run_scenario(scenario, sched, executor="direct").finding is not None:
                return n, True
    return n, False


def fmt(times: list[float], found: int, seeds: int, budget: float) -> str:
    med = statistics.median(times)
    return f"{'>' if med >= budget else ''}{med:.1f} ({found}/{seeds})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=float, default=120.0)
    ap.add_argument("--bugs", default=",".join(CATALOG))
    ap.add_argument("--out", default=str(ROOT / "bench" / "time_to_bug.md"))
    args = ap.parse_args()
    out = Path(args.out)
    header = [
        "# Time to first detection of each catalog bug", "",
        f"Machine: {machine()}.", "",
        f"Command: `.venv/bin/python bench/time_to_bug.py --seeds {args.seeds} "
        f"--budget {args.budget:g}`", "",
        f"Median seconds to the first finding over {args.seeds} seeds (found/seeds), "
        f"{args.budget:g} s budget each; `>` = the median run hit the budget. Schedules: "
        "median schedules run until the finding. dfs: schedules explored (bound 2) on the "
        "bug's canonical scenario until the first finding.", "",
        "| bug | portfolio (2 jobs) s | schedules | random s | schedules | pct s | schedules "
        "| dfs | fuzz s | fuzz, no feedback s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    out.write_text("\n".join(header) + "\n")
    tmp = ROOT / "build" / "ttb"
    for bug in args.bugs.split(","):
        row: dict[str, str] = {}
        for strat in ("portfolio", "random", "pct", "fuzz", "fuzz-nofb"):
            times: list[float] = []
            runs: list[int] = []
            found = 0
            for seed in range(args.seeds):
                if strat == "portfolio":
                    t, n, ok = portfolio(bug, seed, args.budget, tmp / f"{bug}-{seed}")
                elif strat in ("random", "pct"):
                    t, n, ok = in_process(bug, strat, seed, args.budget)
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
        n_dfs, ok_dfs = dfs(bug)
        row["dfs"] = f"{n_dfs}" if ok_dfs else f"not found in {n_dfs}"
        line = (f"| {bug} | {row['portfolio']} | {row['portfolio:runs']} | {row['random']} | "
                f"{row['random:runs']} | {row['pct']} | {row['pct:runs']} | {row['dfs']} | "
                f"{row['fuzz']} | {row['fuzz-nofb']} |")
        with out.open("a") as fh:
            fh.write(line + "\n")
        print(line, flush=True)


if __name__ == "__main__":
    main()
