"""safestack_bug1 past bench/sctbench.py's 10,000-schedule limit: 200,000 schedules each of
random, PCT d=3, PCT d=5 and DFS pb=3, seed 1; the first failing schedule or none, and the
CPU seconds. Results: bench/sctbench_safestack.md.

    .venv/bin/python bench/sctbench_safestack.py [--schedules N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sctbench import PROGRAMS
from migfuzz.testing import explore

RUNS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("random", {}), ("pct", {"depth": 3}), ("pct", {"depth": 5}), ("dfs", {"bound": 3}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--schedules", type=int, default=200_000)
    a = p.parse_args()
    port = PROGRAMS["safestack_bug1"]
    for strategy, kw in RUNS:
        t = time.process_time()
        r = explore(port.main, strategy, schedules=a.schedules, seed=1, **kw)
        found = f"found at schedule {r.schedules:,}" if r.finding else f"none in {r.schedules:,}"
        name = f"{strategy} {kw}" if kw else strategy
        print(f"| {name} | {found} | {time.process_time() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
