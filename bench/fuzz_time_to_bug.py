"""Fuzzer throughput and time-to-bug, with and without interleaving feedback, side by side.

For each (bug, round) the two modes run back to back on the same machine state, so their
ratio is meaningful even on a noisy machine; the table reports medians over the rounds.

    .venv/bin/python bench/fuzz_time_to_bug.py [--rounds 5] [--budget 120] [--out bench/fuzz.md]

Each run is ``python -m fuzzers.fuzz_schedule`` with libFuzzer flags ``-max_total_time``,
``-max_len=512``, ``-seed=<round>``, a fresh empty work corpus plus the committed seed corpus,
and the bug injected through ``MIGFUZZ_BUGS``. Time-to-bug is the wall time until libFuzzer
writes its crash artifact (the run stops there); a run that hits the budget counts as the
budget (a censored value, marked in the table).
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

BUGS = ("get-after-unlock", "wait-without-ref", "nr-refs-constant")
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


def fuzz(target: str, seconds: int, seed: int, *, bug: str | None,
         feedback: bool, seeds: bool = True) -> tuple[float, bool, float]:
    """One libFuzzer run: (seconds until a crash or the end, crashed?, exec/s)."""
    with tempfile.TemporaryDirectory() as work:
        art = Path(work) / "art"
        art.mkdir()
        corpus = Path(work) / "corpus"
        corpus.mkdir()
        cmd = [PY, "-m", f"fuzzers.{target}", str(corpus),
               f"-max_total_time={seconds}", "-max_len=512", f"-seed={seed + 1}",
               f"-artifact_prefix={art}/", "-print_final_stats=1"]
        if seeds:  # the committed seed corpus and the dictionary
            cmd[4:4] = [str(ROOT / "corpus" / target)]
            cmd.append(f"-dict={ROOT / 'fuzzers' / 'schedule.dict'}")
        if not feedback:
            cmd.append("--no-interleaving-feedback")
        env = dict(os.environ, MIGFUZZ_BUGS=bug or "")
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=seconds + 120)
        elapsed = time.monotonic() - t0
        crashed = any(art.iterdir())
        m = re.search(r"stat::average_exec_per_sec:\s+(\d+)", proc.stderr)
        rate = float(m.group(1)) if m else 0.0
        if not m:  # a crash ends the run before the final stats; take the last status line
            rates = re.findall(r"exec/s: (\d+)", proc.stderr)
            rate = float(rates[-1]) if rates else 0.0
        return elapsed, crashed, rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=120)
    ap.add_argument("--throughput-seconds", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "bench" / "fuzz.md"))
    ap.add_argument("--no-seeds", action="store_true",
                    help="start from an empty corpus without the dictionary")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    seeds = not args.no_seeds

    lines = ["# Fuzzers: throughput and time-to-bug", "",
             f"Machine: {machine()}.", "",
             f"Command: `.venv/bin/python bench/fuzz_time_to_bug.py --rounds {args.rounds} "
             f"--budget {args.budget}`", "",
             f"## exec/s per fuzzer (faithful model, {args.throughput_seconds} s each, "
             "feedback on and off back to back)", "",
             "| fuzzer | exec/s with feedback | exec/s without | ratio |", "|---|---|---|---|"]
    for target in () if args.skip_throughput else TARGETS:
        _, _, with_fb = fuzz(target, args.throughput_seconds, 0, bug=None, feedback=True)
        _, _, without = fuzz(target, args.throughput_seconds, 0, bug=None, feedback=False)
        ratio = with_fb / without if without else float("nan")
        lines.append(f"| {target} | {with_fb:.0f} | {without:.0f} | {ratio:.2f} |")
        print(lines[-1], flush=True)

    start = "seed corpus + dictionary" if seeds else "empty corpus, no dictionary"
    lines += ["", f"## Time to first detection, fuzz_schedule from {start}, median of "
              f"{args.rounds} rounds "
              f"({args.budget} s budget; `>` = not found within the budget in that many rounds)",
              "", "| bug | with feedback (s) | found | without (s) | found | "
              "ratio without/with |", "|---|---|---|---|---|---|"]
    for bug in BUGS:
        times: dict[bool, list[float]] = {True: [], False: []}
        found: dict[bool, int] = {True: 0, False: 0}
        for r in range(args.rounds):
            for fb in (True, False):
                t, crashed, _ = fuzz("fuzz_schedule", args.budget, r, bug=bug, feedback=fb,
                                     seeds=seeds)
                times[fb].append(t if crashed else float(args.budget))
                found[fb] += crashed
                print(bug, "feedback" if fb else "plain", r, f"{t:.1f}", crashed, flush=True)
        med = {fb: statistics.median(times[fb]) for fb in (True, False)}
        lines.append(f"| {bug} | {med[True]:.1f} | {found[True]}/{args.rounds} | "
                     f"{med[False]:.1f} | {found[False]}/{args.rounds} | "
                     f"{med[False] / med[True]:.2f} |")
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
