"""DPOR against DFS on the gate's exhaustive part: schedules, CPU seconds, final states.

    .venv/bin/python bench/dpor.py [--bug NAME] [SCENARIO[:BOUND] ...]

For each scenario (default: the gate's, ``stress.scenarios.TINY``, at the gate's bound), runs
the whole bounded DFS search and the whole bounded DPOR search (every fix applied, as the
gate does; ``--bug`` injects a catalog bug into both), and prints a Markdown row: schedules
and CPU seconds of each, the number of distinct final states each reaches (a digest of the
machine when the concurrent phase ends, tests/test_dpor.py) and whether the two sets are
equal, and the findings' signatures. ``--cap N`` stops each search after N schedules (the
gate's cap is 50,000). Seconds are the process's CPU time, so the shared machine's load does
not enter them.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import stress.run as run_module  # noqa: E402
from migfuzz.bugs import injected  # noqa: E402
from migfuzz.gate import DFS_MAX_EXECUTIONS, DFS_PREEMPTION_BOUND  # noqa: E402
from stress.run import run_scenario  # noqa: E402
from stress.scenarios import TINY, TINY_BOUND, canonical  # noqa: E402
from stress.schedulers import DFSScheduler, DPORScheduler  # noqa: E402
from target.fixes import FIXES  # noqa: E402
from target.mm.world import World  # noqa: E402

ALL_FIXES = tuple(sorted(FIXES))
FIRST: dict[int, int] = {}  # id(scheduler) -> the execution of its first finding


def digest(world: World) -> str:
    """The machine's state: every page's counts, flags, data and mapping kind, the free
    lists in order, every mm's ptes, rss, users, ghost values and vmas, the swap map and the
    I/O in flight. Equivalent schedules must give the same digest (pfns included)."""
    parts: list[object] = [
        (p.pfn, p.nid, p.count, p.mapcount, p.flags, p.data, p.locked.is_set,
         p.writeback.is_set, type(p.mapping).__name__, p.index, p.private)
        for p in world.mem_map]
    parts += [tuple(p.pfn for p in z.free_list) for z in world.zones]
    for mm in sorted(world.mm_cachep.values(), key=lambda m: m.name):
        ptes = sorted((base, repr(t.ptes)) for base, t in mm.pgtables.items())
        parts.append((mm.name, mm.anon_rss, mm.file_rss, mm.mm_users, ptes,
                      sorted(mm.ghost.items()),
                      [(v.vm_start, v.vm_end, v.vm_flags) for v in mm.mmap]))
    parts += [tuple(world.swap_map), tuple(p.pfn for p in world.pending_writeback),
              len(world.bio_queue)]
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def search(name: str, sched: DFSScheduler | DPORScheduler, bugs: tuple[str, ...] = (),
            ) -> tuple[int, set[str], set[str]]:
    """(executions, final-state digests, finding signatures) of the whole search."""
    states: set[str] = set()
    findings: set[str] = set()
    seen: list[str] = []
    real = getattr(run_module, "progress_program")  # noqa: B009 (not a typed export)

    def progress(world: World) -> Any:  # called when the concurrent phase has ended
        seen.append(digest(world))
        return real(world)

    n = 0
    setattr(run_module, "progress_program", progress)  # noqa: B010 (not a typed export)
    try:
        with injected(bugs, ALL_FIXES):
            while sched.new_execution():
                n += 1
                seen.clear()
                out = run_scenario(canonical(name), sched)
                states.update(seen)
                if out.finding is not None:
                    findings.add(out.finding.signature)
                    FIRST.setdefault(id(sched), n)
    finally:
        setattr(run_module, "progress_program", real)  # noqa: B010
    return n, states, findings



def row(name: str, bound: int, bugs: tuple[str, ...], cap: int) -> str:
    cells = [f"{name} (bound {bound})"]
    results = []
    dfs = DFSScheduler(bound, max_executions=cap)
    for sched in (dfs, DPORScheduler(bound, max_executions=cap)):
        t = time.process_time()
        n, states, found = search(name, sched, bugs)
        cpu = time.process_time() - t
        done = "" if sched.exhausted else f" (capped at {cap:,}: NOT exhaustive)"
        first = FIRST.get(id(sched))
        cells += [f"{n:,}{done}" + (f" (first finding: {first:,})" if first else ""),
                  f"{cpu:.1f}"]
        results.append((n, states, found))
    (n1, s1, f1), (n2, s2, f2) = results
    capped = "" if dfs.exhausted else "> "  # DFS stopped at the cap: a lower bound
    same = "equal" if s1 == s2 else "DIFFER"
    cells += [f"{capped}{n1 / n2:.2f}x", f"{len(s1)} / {len(s2)}, {same}",
              ", ".join(sorted(f1 | f2)) + ("" if f1 == f2 else " (DIFFER)") or "none"]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO[:BOUND]")
    p.add_argument("--bug", action="append", default=[])
    p.add_argument("--cap", type=int, default=DFS_MAX_EXECUTIONS)
    a = p.parse_args()
    wanted = a.scenarios or [f"{n}:{TINY_BOUND.get(n, DFS_PREEMPTION_BOUND)}" for n in TINY]
    print("| scenario | DFS schedules | DFS CPU s | DPOR schedules | DPOR CPU s | "
          "fewer | final states DFS / DPOR | findings |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for item in wanted:
        name, _, bound = item.partition(":")
        print(row(name, int(bound or DFS_PREEMPTION_BOUND), tuple(a.bug), a.cap), flush=True)


if __name__ == "__main__":
    main()
