"""Stress throughput: schedules/s of each executor on each canonical scenario, side by side.

One run measures both executors in interleaved rounds (round r: scenario by scenario, direct
then trio, or trio then direct on odd rounds), each cell doing the *same* executions (random
walk seeds r*N .. r*N+N-1) on both executors, so that machine noise hits both alike. Reports
the median over rounds and the ratio trio/direct. Never a pass/fail: a table for
bench/stress_throughput.md.

    .venv/bin/python bench/stress_throughput.py [--rounds 5] [--runs 100] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from stress.run import run_scenario
from stress.scenarios import CANONICAL, canonical
from stress.schedulers import RandomScheduler

EXECUTORS = ("direct", "trio")
HERE = Path(__file__).resolve().parent


def cell(name: str, executor: str, seeds: range) -> tuple[float, float]:
    """(schedules/s, decisions per schedule) of ``seeds`` random walks on one executor."""
    sc = canonical(name)
    decisions = 0
    t0 = time.perf_counter()
    for seed in seeds:
        sched = RandomScheduler(seed)
        sched.new_execution()
        out = run_scenario(sc, sched, executor=executor)
        decisions += len(out.schedule)
    dt = time.perf_counter() - t0
    return len(seeds) / dt, decisions / len(seeds)


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"nproc {os.cpu_count()}, {cpu}, Python {platform.python_version()} "
            f"({platform.python_implementation()}), {platform.system()} "
            f"{platform.release()}; model commit {commit}; {date}; load average {load} "
            "(a shared machine: compare ratios, not absolute rates)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=100, help="executions per cell per round")
    p.add_argument("--scenario", action="append", choices=list(CANONICAL),
                   help="only these scenarios (repeatable; default all)")
    p.add_argument("--write", action="store_true", help="write bench/stress_throughput.md")
    a = p.parse_args(argv)
    names = a.scenario or list(CANONICAL)
    rates: dict[tuple[str, str], list[float]] = {}
    dec: dict[str, float] = {}
    for r in range(a.rounds):
        order = EXECUTORS if r % 2 == 0 else EXECUTORS[::-1]
        seeds = range(r * a.runs, (r + 1) * a.runs)
        for name in names:
            for ex in order:
                rate, d = cell(name, ex, seeds)
                rates.setdefault((name, ex), []).append(rate)
                dec[name] = d
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)

    cmd = ("`.venv/bin/python bench/stress_throughput.py"
           f" --rounds {a.rounds} --runs {a.runs}"
           + "".join(f" --scenario {n}" for n in (a.scenario or [])) + "`")
    lines = [
        "| scenario | decisions/schedule | direct schedules/s | trio schedules/s "
        "| trio/direct | trio cost per schedule |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        d = statistics.median(rates[(name, "direct")])
        t = statistics.median(rates[(name, "trio")])
        extra_us = (1 / t - 1 / d) * 1e6
        lines.append(f"| {name} | {dec[name]:.0f} | {d:,.0f} | {t:,.0f} | {t / d:.2f} "
                     f"| +{extra_us:,.0f} µs |")
    table = "\n".join(lines)
    print(f"machine: {machine()}\ncommand: {cmd}\n\n{table}")
    if a.write:
        md = HERE / "stress_throughput.md"
        md.write_text(TEMPLATE.format(machine=machine(), command=cmd, table=table,
                                      rounds=a.rounds, runs=a.runs))
        print(f"wrote {md}", file=sys.stderr)
    return 0


TEMPLATE = """# Stress throughput: direct vs trio executor

Schedules (complete executions: setup, the concurrent phase under a random walk, read-back,
quiescence checks) per second, single process, for each canonical scenario. Both executors run
the same {runs} random-walk seeds per round, in {rounds} interleaved rounds (the order of the
two executors alternates between rounds); the table gives medians over rounds and the ratio
trio/direct of the medians. "trio cost per schedule" is the extra time a schedule takes on the
trio executor (`trio.run` per execution plus parking and waking trio tasks at each point).

Machine: {machine}

Reproduce: {command} (add `--write` to regenerate this file)

{table}

Reading it: the trio executor pays a fixed `trio.run` per execution and a per-switch cost
(parking/waking trio tasks) on top of the model itself, so its ratio is lowest on the tiny
scenarios, where the model does least work per execution. `migfuzz stress` runs each
execution in the trio executor by default; `--executor direct` trades that for speed.
"""


if __name__ == "__main__":
    sys.exit(main())
