"""Fuzzer throughput and time-to-bug, with and without interleaving feedback, side by side.

Time-to-bug is counted in executions, which a loaded machine does not change: each run is
bounded by ``-runs`` (the budget) and the table reports the median executions until libFuzzer
wrote its crash artifact over the rounds (a run that used its budget counts as the budget: a
censored value, marked). Executions become seconds through each mode's exec/s, measured back
to back in the same run (the throughput table); the ratios compare the modes in seconds.

    .venv/bin/python bench/fuzz_time_to_bug.py [--rounds 5] [--budget 20000] [--no-seeds]
        [--bugs deep|all|NAME,...] [--modes all,order,none] [--out bench/fuzz.md]

Each run is ``python -m fuzzers.fuzz_schedule`` with libFuzzer flags ``-runs``,
``-max_len=512``, ``-seed=<round>``, a fresh empty work corpus (plus the committed seed corpus
and the dictionary unless ``--no-seeds``), every upstream fix of V2's flaws applied
(``MIGFUZZ_FIXES=all``: the model then has no finding of its own, so any crash is the bug's)
and the bug injected through ``MIGFUZZ_BUGS``.

Modes: ``all`` reports every feature family of ``fuzzers/_coverage.py``; ``order`` only the
families of the first feature set (switches, lock-order edges, pte transitions, refcount and
mapcount values, switch triples: ``MIGFUZZ_FEEDBACK_FAMILIES``), an ablation of the
conflict-pair and held-lock features; ``none`` is plain code coverage at plain speed
(``--no-interleaving-feedback``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

ORDER_FAMILIES = "sw,lk,pte,get_page,put_page,map,sw3"
MODES = ("all", "order", "none")
TARGETS = ("fuzz_scenario", "fuzz_schedule", "fuzz_sequential")


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
            f"{datetime.date.today().isoformat()}")


def fuzz(target: str, seconds: int, seed: int, *, bug: str | None, mode: str,
         seeds: bool = True, runs: int = -1) -> tuple[int, bool, float]:
    """One libFuzzer run: (executions until a crash or the end, crashed?, exec/s)."""
    with tempfile.TemporaryDirectory() as work:
        art = Path(work) / "art"
        art.mkdir()
        corpus = Path(work) / "corpus"
        corpus.mkdir()
        cmd = [PY, "-m", f"fuzzers.{target}", str(corpus),
               f"-max_total_time={seconds}", f"-runs={runs}", "-max_len=512",
               f"-seed={seed + 1}",
               f"-artifact_prefix={art}/", "-print_final_stats=1"]
        if seeds:  # the committed seed corpus and the dictionary
            cmd[4:4] = [str(ROOT / "corpus" / target)]
            cmd.append(f"-dict={ROOT / 'fuzzers' / 'schedule.dict'}")
        env = dict(os.environ, MIGFUZZ_BUGS=bug or "", MIGFUZZ_FIXES="all",
                   MIGFUZZ_FEEDBACK_FAMILIES="")
        if mode == "none":
            cmd.append("--no-interleaving-feedback")
        elif mode == "order":
            env["MIGFUZZ_FEEDBACK_FAMILIES"] = ORDER_FAMILIES
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=seconds + 120)
        crashed = any(art.iterdir())
        units = re.search(r"stat::number_of_executed_units:\s+(\d+)", proc.stderr)
        executions = int(units.group(1)) if units else 0
        m = re.search(r"stat::average_exec_per_sec:\s+(\d+)", proc.stderr)
        rate = float(m.group(1)) if m else 0.0
        if not m:  # a crash ends the run before the final stats; take the last status line
            rates = re.findall(r"exec/s: (\d+)", proc.stderr)
            rate = float(rates[-1]) if rates else 0.0
        return executions, crashed, rate


def catalog_bugs(spec: str) -> list[tuple[str, int]]:
    """(name, depth) of the bugs ``spec`` names: "deep" (depth >= 2), "all", or a list."""
    sys.path.insert(0, str(ROOT))
    from target.bugs import CATALOG

    if spec in ("deep", "all"):
        return [(b.name, b.depth) for b in sorted(CATALOG.values(), key=lambda b: b.depth)
                if spec == "all" or b.depth >= 2]
    unknown = [n for n in spec.split(",") if n not in CATALOG]
    if unknown:
        raise SystemExit(f"bench: unknown bug {unknown[0]!r}")
    return [(n, CATALOG[n].depth) for n in spec.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=20_000, help="executions per run")
    ap.add_argument("--max-seconds", type=int, default=1800, help="a run's wall-time cap")
    ap.add_argument("--throughput-seconds", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "bench" / "fuzz.md"))
    ap.add_argument("--no-seeds", action="store_true",
                    help="start from an empty corpus without the dictionary")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--bugs", default="deep", help='"deep" (depth >= 2), "all", or names')
    ap.add_argument("--modes", default=",".join(MODES))
    args = ap.parse_args()
    seeds = not args.no_seeds
    modes = args.modes.split(",")
    if not set(modes) <= set(MODES) or "none" not in modes:
        raise SystemExit(f"bench: --modes is a list of {', '.join(MODES)} including none")
    bugs = catalog_bugs(args.bugs)

    argv = " ".join(sys.argv[1:])
    lines = ["# Fuzzers: throughput and time-to-bug", "",
             f"Machine: {machine()}.", "",
             f"Command: `.venv/bin/python bench/fuzz_time_to_bug.py {argv}`", ""]
    rate = {m: 1.0 for m in modes}
    if not args.skip_throughput:
        lines += [f"## exec/s per fuzzer (every fix, no bug, {args.throughput_seconds} s each, "
                  "modes back to back)", "",
                  "| fuzzer | " + " | ".join(f"exec/s {m}" for m in modes) + " |",
                  "|---|" + "---|" * len(modes)]
        for target in TARGETS:
            rates = [fuzz(target, args.throughput_seconds, 0, bug=None, mode=m)[2]
                     for m in modes]
            if target == "fuzz_schedule":
                rate = dict(zip(modes, rates, strict=True))
            lines.append(f"| {target} | " + " | ".join(f"{r:.0f}" for r in rates) + " |")
            print(lines[-1], flush=True)

    start = "seed corpus + dictionary" if seeds else "an empty corpus, no dictionary"
    others = [m for m in modes if m != "none"]
    unit = "seconds (executions / the mode's exec/s above)" if not args.skip_throughput \
        else "executions"
    lines += ["", f"## Time to first detection, fuzz_schedule from {start}: median executions "
              f"[min-max] (found/rounds) over {args.rounds} rounds, {args.budget:,} executions "
              "budget (`>`: the median run used its budget); the ratios are of median "
              f"{unit}, plain coverage over the mode (> 1: the mode is faster)", "",
              "| bug | depth | " + " | ".join(modes) + " | "
              + " | ".join(f"none/{m}" for m in others) + " |",
              "|---|---|" + "---|" * (len(modes) + len(others))]
    for bug, depth in bugs:
        execs: dict[str, list[int]] = {m: [] for m in modes}
        found: dict[str, int] = dict.fromkeys(modes, 0)
        for r in range(args.rounds):
            for m in modes:
                n, crashed, _ = fuzz("fuzz_schedule", args.max_seconds, r, bug=bug, mode=m,
                                     seeds=seeds, runs=args.budget)
                execs[m].append(n if crashed else args.budget)
                found[m] += crashed
                print(bug, m, r, n, crashed, flush=True)
        med = {m: statistics.median(execs[m]) for m in modes}
        cells = []
        for m in modes:
            over = ">" if found[m] * 2 <= args.rounds else ""
            cells.append(f"{over}{med[m]:,.0f} [{min(execs[m]):,}-{max(execs[m]):,}] "
                         f"({found[m]}/{args.rounds})")
        secs = {m: med[m] / rate[m] for m in modes}
        lines.append(f"| {bug} | {depth} | " + " | ".join(cells) + " | "
                     + " | ".join(f"{secs['none'] / secs[m]:.2f}" for m in others) + " |")
        print(lines[-1], flush=True)
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
