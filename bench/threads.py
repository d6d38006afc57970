"""Throughput with threads beside without: schedules/s and decisions per schedule.

Two pairs, each measured in interleaved rounds in one process (round r: one side then the
other, the order alternating), the same random-walk seeds on both sides, so that machine
noise hits both alike; the median over rounds and the ratio threads / single are reported:

    generated    the swarm generator's scenarios of seeds r*N .. r*N+N-1, as generated (about
                 half have sibling threads) vs the same scenarios with every sibling thread
                 dropped (their main threads unchanged)
    canonical    threads-vs-migrate (two threads) vs migrate-vs-fault (one thread, the same
                 kind of accesses and migrations)

    .venv/bin/python bench/threads.py [--rounds 5] [--runs 100] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

from stress.run import run_scenario
from stress.scenarios import canonical, generate
from stress.schedulers import RandomScheduler
from stress.workload import Scenario

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from stress_throughput import machine  # noqa: E402


def single_threaded(sc: Scenario) -> Scenario:
    """``sc`` without the generator's sibling threads (tasks named ``p<pid>.t<k>``)."""
    return Scenario(sc.world, sc.processes, [t for t in sc.tasks if ".t" not in t.name],
                    sc.name + " (single)")


def cell(scenarios: list[Scenario], seeds: range) -> tuple[float, float]:
    """(schedules/s, decisions per schedule) of one random walk per (scenario, seed)."""
    decisions = 0
    t0 = time.perf_counter()
    for sc, seed in zip(scenarios, seeds, strict=True):
        sched = RandomScheduler(seed)
        sched.new_execution()
        decisions += len(run_scenario(sc, sched).schedule)
    return len(seeds) / (time.perf_counter() - t0), decisions / len(seeds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args(argv)
    rows: dict[str, list[tuple[float, float]]] = {}
    t_all = time.perf_counter()
    for r in range(a.rounds):
        seeds = range(r * a.runs, (r + 1) * a.runs)
        generated = [generate(s) for s in seeds]
        sides = {
            "generated, threads": generated,
            "generated, single": [single_threaded(sc) for sc in generated],
            "threads-vs-migrate": [canonical("threads-vs-migrate")] * a.runs,
            "migrate-vs-fault": [canonical("migrate-vs-fault")] * a.runs,
        }
        names = list(sides) if r % 2 == 0 else list(reversed(sides))
        for name in names:
            rows.setdefault(name, []).append(cell(sides[name], seeds))
    med = {k: (statistics.median(v[0] for v in vs), statistics.median(v[1] for v in vs))
           for k, vs in rows.items()}
    threaded = sum(any(".t" in t.name for t in generate(s).tasks)
                   for s in range(a.rounds * a.runs))
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Throughput with threads",
        "",
        f"Machine: {machine()}, shared with other work (load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}); {date}; "
        f"{(time.perf_counter() - t_all) / 60:.1f} min; direct executor, random walk.",
        "",
        f"Command: `.venv/bin/python bench/threads.py --rounds {a.rounds} --runs {a.runs}"
        " --write`",
        "",
        f"{threaded} of the {a.rounds * a.runs} generated scenarios have sibling threads.",
        "",
        "| pair | side | schedules/s | decisions/schedule | ratio (threads / single) |",
        "|---|---|---:|---:|---:|",
    ]
    for pair, (t, s) in (("generated", ("generated, threads", "generated, single")),
                         ("canonical", ("threads-vs-migrate", "migrate-vs-fault"))):
        lines.append(f"| {pair} | {t} | {med[t][0]:.1f} | {med[t][1]:.0f} | "
                     f"{med[t][0] / med[s][0]:.2f} |")
        lines.append(f"| {pair} | {s} | {med[s][0]:.1f} | {med[s][1]:.0f} | |")
    md = "\n".join(lines) + "\n"
    if a.write:
        tmp = HERE / "threads.md.tmp"
        tmp.write_text(md)
        tmp.replace(HERE / "threads.md")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
