"""Schedules and CPU seconds to the first detection of every catalog bug, per strategy, grouped
by the kind of bug (sequential, race, deep race): the table of issue 15 item 6.

    .venv/bin/python bench/strategies.py [--seeds 5] [--runs 600] [--jobs 2]
        [--strategies random,pct,pos,cpct,surw,random+pct] [--out bench/strategies.md]

Each cell is :func:`cell`: one strategy on the mixed scenarios of a campaign (half canonical,
half generated, the same scenario sequence for every strategy at a given seed), direct
executor, all upstream fixes of V2's flaws applied (so any finding is the injected bug's:
bench/flaws.md), until the first finding or ``--runs`` schedules. ``a+b`` is the portfolio of
``a`` and ``b`` as ``migfuzz stress`` runs it (each run's member drawn from the run index).
PCT-like strategies get the campaign's depth 3 and measured ``max_steps_hint``; SURW the
campaign's estimates (a probe run per canonical scenario, cached, and one per generated run,
whose CPU time its cells include). CPU seconds are the worker process's (``process_time``),
so the shared machine's load does not enter them.

Cells run on ``--jobs`` processes; each finished cell is appended to ``--raw`` (JSON lines)
at once, and a rerun with the same arguments skips the cells already there, so an
interrupted measurement resumes. The Markdown is written (atomically) from the raw file; in
the old page, whatever follows the ``READING`` marker (the reading of the figures) is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from time_to_bug import in_process  # noqa: E402

from migfuzz._files import write_atomic  # noqa: E402
from migfuzz.strategies import STRATEGIES  # noqa: E402
from target.bugs import CATALOG  # noqa: E402

KINDS = ("sequential", "race", "deep race")
READING = "<!-- reading: written by hand, kept when the tables are rewritten -->"

Cell = tuple[str, str, int]  # (bug, strategy label, seed)


def cell(bug: str, label: str, seed: int, budget: int) -> dict[str, object]:
    """One (bug, strategy, seed): schedules to the first finding (``budget`` if none)."""
    members = tuple(label.split("+"))
    strategy = "portfolio" if len(members) > 1 else label
    cpu, runs, found = in_process(bug, strategy, seed, budget, members=members)
    return {"bug": bug, "strategy": label, "seed": seed, "budget": budget, "runs": runs,
            "found": found, "cpu": round(cpu, 3)}


def _work(args: tuple[str, str, int, int]) -> dict[str, object]:
    return cell(*args)


def fmt(runs: list[int], found: int, budget: int) -> str:
    med = statistics.median(runs)
    return (f"{'>' if med >= budget else ''}{med:g} [{min(runs)}-{max(runs)}] "
            f"({found}/{len(runs)})")


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(max(v, 1.0)) for v in values) / len(values))


def render(results: list[dict[str, object]], strats: list[str], bugs: list[str],
           seeds: int, budget: int, command: str, cpu: float) -> str:
    """The page: per kind, a row per bug and a line of totals per strategy."""
    by: dict[tuple[str, str], list[dict[str, object]]] = {}
    for r in results:
        by.setdefault((str(r["bug"]), str(r["strategy"])), []).append(r)
    lines = [
        "# Strategies on the catalog: schedules to the first detection, by kind of bug", "",
        f"Machine: {os.cpu_count()} cores (shared VM), Python {sys.version.split()[0]}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu:.0f} CPU s in all.", "",
        f"Command: `{command}`", "",
        f"Cell: median schedules to the first finding [min-max] (found/seeds) over seeds "
        f"0-{seeds - 1}, at most {budget:,} schedules each (a miss counts as the budget; "
        f"`>`: the median is a miss), then the median CPU seconds. Totals per kind: seeds "
        f"found, and the geometric mean over the kind's bugs of the median schedules (misses "
        f"at the budget, so a lower bound for a strategy that misses).", "",
    ]
    head = "| bug | " + " | ".join(f"{s} | CPU s" for s in strats) + " |"
    for kind in KINDS:
        rows = [b for b in bugs if CATALOG[b].kind == kind]
        if not rows:
            continue
        lines += [f"## {kind} ({len(rows)} bugs)", "", head,
                  "|---|" + "---|---|" * len(strats)]
        medians: dict[str, list[float]] = {s: [] for s in strats}
        found: dict[str, int] = dict.fromkeys(strats, 0)
        for bug in rows:
            cells = []
            for s in strats:
                rs = by.get((bug, s), [])
                if not rs:
                    cells += ["-", "-"]
                    continue
                runs = [int(str(r["runs"])) for r in rs]
                hits = sum(bool(r["found"]) for r in rs)
                found[s] += hits
                medians[s].append(statistics.median(runs))
                cells += [fmt(runs, hits, budget),
                          f"{statistics.median(float(str(r['cpu'])) for r in rs):.1f}"]
            lines.append(f"| {bug} | " + " | ".join(cells) + " |")
        lines.append(f"| **{kind}: found, geomean** | " + " | ".join(
            f"**{found[s]}/{len(rows) * seeds}, {geomean(medians[s]):.0f}** | "
            if medians[s] else "- | " for s in strats) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=600)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--strategies", default="random,pct,pos,cpct,surw,random+pct")
    ap.add_argument("--bugs", default=",".join(sorted(CATALOG, key=lambda b: CATALOG[b].depth)))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "strategies.md")
    ap.add_argument("--raw", type=Path, default=ROOT / "build" / "strategies.jsonl")
    args = ap.parse_args()
    strats, bugs = args.strategies.split(","), args.bugs.split(",")
    bad = [s for s in strats for m in s.split("+")
           if m not in STRATEGIES or m == "portfolio"]
    bad += [b for b in bugs if b not in CATALOG]
    if bad or args.seeds < 1 or args.runs < 1 or args.jobs < 1:
        print(f"error: unknown strategy or bug {bad}, or a count below 1", file=sys.stderr)
        raise SystemExit(2)
    done: list[dict[str, object]] = []
    if args.raw.exists():
        done = [json.loads(line) for line in args.raw.read_text().splitlines() if line]
        done = [r for r in done if r["budget"] == args.runs]
    have = {(r["bug"], r["strategy"], r["seed"]) for r in done}
    todo = [(b, s, seed, args.runs) for b in bugs for s in strats for seed in range(args.seeds)
            if (b, s, seed) not in have]
    args.raw.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(multiprocessing.Pool(args.jobs))
        with args.raw.open("a") as raw:
            for r in pool.imap_unordered(_work, todo):
                raw.write(json.dumps(r) + "\n")
                raw.flush()
                done.append(r)
                print(r, flush=True)
    done = [r for r in done if r["bug"] in bugs and r["strategy"] in strats
            and int(str(r["seed"])) < args.seeds]
    cpu = sum(float(str(r["cpu"])) for r in done)
    command = ".venv/bin/python bench/strategies.py " + " ".join(sys.argv[1:])
    page = render(done, strats, bugs, args.seeds, args.runs, command, cpu)
    old = args.out.read_text() if args.out.exists() else ""
    if READING in old:  # the hand-written reading of the figures, kept across reruns
        page += "\n" + old[old.index(READING):]
    write_atomic(args.out, page)
    print(f"wrote {args.out} ({cpu:.0f} CPU s)")


if __name__ == "__main__":
    main()
