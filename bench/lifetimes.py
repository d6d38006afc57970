"""What issue 14's lazier worlds cost and how often their windows open, side by side.

For the same generated scenarios (seeds 0..N-1, fixes of every V2 flaw applied, one
random-walk schedule each), each round runs every scenario twice, interleaved: as generated
(its drawn ``swap_io_delay`` and ``anon_vma_reuse``), and with both options at their prompt
defaults (synchronous I/O, no reuse). Reported: decisions per schedule, schedules/s, and per
lazy world how many runs completed a bio in the interrupt actor or reused an anon_vma.

    .venv/bin/python bench/lifetimes.py --runs 200 --rounds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from stress import scenarios
from stress.run import run_scenario
from stress.schedulers import RandomScheduler
from target.bugs import inject
from target.fixes import lookup


def one_pass(seeds: range, prompt: bool) -> tuple[float, float, int, int]:
    """(decisions per schedule, schedules/s, runs with an irq completion, runs with a reuse)."""
    decisions = bios = reuses = 0
    start = time.perf_counter()
    for seed in seeds:
        sc = scenarios.generate(seed)
        if prompt:
            sc.world = dataclasses.replace(sc.world, swap_io_delay=0, anon_vma_reuse="never")
        sched = RandomScheduler(seed)
        sched.new_execution()
        out = run_scenario(sc, sched, trace=True)
        decisions += len(out.schedule)
        events = [e for _, _, e, _ in out.events or []]
        bios += "bio_end" in events
        reuses += "slab_reuse" in events
    elapsed = time.perf_counter() - start
    return decisions / len(seeds), len(seeds) / elapsed, bios, reuses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    seeds = range(args.runs)
    rows: dict[bool, list[tuple[float, float, int, int]]] = {True: [], False: []}
    with inject(lookup(["all"])):
        for _ in range(args.rounds):
            for prompt in (True, False):
                rows[prompt].append(one_pass(seeds, prompt))
    print("| worlds | decisions/schedule | schedules/s (median) | runs with an irq completion "
          "| runs with an anon_vma reuse |")
    print("|---|---:|---:|---:|---:|")
    for prompt in (True, False):
        r = rows[prompt]
        print(f"| {'prompt (delay 0, never)' if prompt else 'as generated'} | {r[0][0]:.1f} | "
              f"{statistics.median(x[1] for x in r):.1f} | {r[0][2]} | {r[0][3]} |")
    ratio = (statistics.median(x[1] for x in rows[False])
             / statistics.median(x[1] for x in rows[True]))
    print(f"\nschedules/s as generated / prompt: {ratio:.2f} ({args.runs} seeds, "
          f"{args.rounds} rounds)")


if __name__ == "__main__":
    main()
