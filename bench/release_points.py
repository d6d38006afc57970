"""What the scheduling point after every release costs: off against on, side by side.

Each round runs, for every canonical scenario, the same random-walk seeds with the points
after releases off and then on (the order alternates between rounds, so machine noise hits
both alike), on the default stress executor. Reports decisions per schedule and the median
schedules/s of each, and the ratios. Never a pass/fail: a table for bench/release_points.md.

    .venv/bin/python bench/release_points.py [--rounds 3] [--runs 60] [--executor trio]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from stress_throughput import machine  # bench/ is on sys.path when run as a script

from stress.run import run_scenario
from stress.scenarios import CANONICAL, canonical
from stress.schedulers import RandomScheduler
from target.kernel import Released


def cell(name: str, executor: str, seeds: range, points: bool) -> tuple[float, float]:
    """(schedules/s, decisions per schedule) with the points after releases on or off."""
    Released.enabled = points
    try:
        sc = canonical(name)
        decisions = 0
        t0 = time.perf_counter()
        for seed in seeds:
            sched = RandomScheduler(seed)
            sched.new_execution()
            decisions += len(run_scenario(sc, sched, executor=executor).schedule)
        return len(seeds) / (time.perf_counter() - t0), decisions / len(seeds)
    finally:
        Released.enabled = True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=60, help="executions per cell per round")
    p.add_argument("--executor", choices=("trio", "direct"), default="trio")
    a = p.parse_args(argv)
    rates: dict[tuple[str, bool], list[float]] = {}
    dec: dict[tuple[str, bool], float] = {}
    for r in range(a.rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        seeds = range(r * a.runs, (r + 1) * a.runs)
        for name in CANONICAL:
            for on in order:
                rate, d = cell(name, a.executor, seeds, on)
                rates.setdefault((name, on), []).append(rate)
                dec[(name, on)] = d
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    print(f"machine: {machine()}\ncommand: `.venv/bin/python bench/release_points.py "
          f"--rounds {a.rounds} --runs {a.runs} --executor {a.executor}`\n")
    print("| scenario | decisions off | decisions on | schedules/s off | schedules/s on "
          "| on/off |\n|---|---:|---:|---:|---:|---:|")
    for name in CANONICAL:
        off, on = statistics.median(rates[(name, False)]), statistics.median(rates[(name, True)])
        print(f"| {name} | {dec[(name, False)]:.0f} | {dec[(name, True)]:.0f} | {off:,.0f} "
              f"| {on:,.0f} | {on / off:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
