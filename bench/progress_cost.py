"""What the quiescent progress phase costs: schedules/s without it and with it, side by side.

The progress phase (stress/_progress_oracle.py: quiescent migration, reclaim, swap cycle, and the
retry-limit check on one execution in RETRY_CHECK_EVERY) runs model code after every
execution. Each round runs the same random-walk seeds of every canonical scenario with the
phase replaced by a no-op and with it (order alternating), direct executor, one process.

    .venv/bin/python bench/progress_cost.py [--rounds 3] [--runs 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from stress import run as run_mod
from stress.scenarios import CANONICAL, canonical
from stress.schedulers import RandomScheduler
from target.mm.world import World

REAL_PROGRAM, REAL_EVERY = run_mod.progress_program, run_mod.RETRY_CHECK_EVERY


def _no_progress_phase(world: World) -> Callable[[], Coroutine[Any, Any, None]]:
    async def body() -> None:
        return None

    return body


def cell(name: str, on: bool, seeds: range) -> float:
    run_mod.progress_program = REAL_PROGRAM if on else _no_progress_phase  # type: ignore[assignment]
    run_mod.RETRY_CHECK_EVERY = REAL_EVERY if on else 10**9
    try:
        sc = canonical(name)
        t0 = time.perf_counter()
        for seed in seeds:
            sched = RandomScheduler(seed)
            sched.new_execution()
            run_mod.run_scenario(sc, sched, executor="direct")
        return len(seeds) / (time.perf_counter() - t0)
    finally:
        run_mod.progress_program, run_mod.RETRY_CHECK_EVERY = REAL_PROGRAM, REAL_EVERY


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=40)
    a = ap.parse_args(argv)
    print("| scenario | without progress phase | with | with/without |\n|---|---:|---:|---:|")
    for name in CANONICAL:
        off: list[float] = []
        on: list[float] = []
        for r in range(a.rounds):
            seeds = range(r * a.runs, (r + 1) * a.runs)
            for flag in ((False, True) if r % 2 == 0 else (True, False)):
                (on if flag else off).append(cell(name, flag, seeds))
        x, y = statistics.median(off), statistics.median(on)
        print(f"| {name} | {x:,.0f} | {y:,.0f} | {y / x:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
