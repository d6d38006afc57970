"""Fuzzer throughput and time-to-bug, with and without interleaving feedback, side by side.

Everything is counted in what a loaded machine does not change: executions, and the CPU
seconds of the fuzzer process (``wait4``'s rusage, minus the mode's start-up cost: importing
and instrumenting the model, measured by a one-execution run). The machine this runs on is
shared, so wall seconds would measure the neighbours.

    .venv/bin/python bench/fuzz_time_to_bug.py [--rounds 5] [--budget 20000] [--no-seeds]
        [--bugs deep|all|NAME,...] [--modes all,order,conflict,near,nopos,none] [--jobs 2]
        [--out bench/fuzz.md] [--target fuzz_schedule|fuzz_preempt|...] [--libfuzzer-mutator]
        [--pin]

Each run is ``python -m fuzzers.TARGET`` (default fuzz_schedule) bounded by ``-runs`` (the
budget), with ``-max_len=512``, ``-seed=<round>``, a fresh empty work corpus (plus the
committed seed corpus and the dictionary unless ``--no-seeds``), every upstream fix of V2's
flaws applied (``MIGFUZZ_FIXES=all``: the model then has no finding of its own, so any crash
is the bug's) and the bug injected through ``MIGFUZZ_BUGS``. A run that used its budget without
a crash counts as its budget (a censored value, marked ``>`` when it decides the median).

Modes: ``all`` reports every feature family of ``fuzzers/_coverage.py``; ``order`` only the
families of the first feature set (switches, lock-order edges, pte transitions, refcount and
mapcount values, switch triples: ``MIGFUZZ_FEEDBACK_FAMILIES``), an ablation of the
conflict-pair, held-lock and pte-pair features; ``none`` is plain code coverage at plain speed
(``--no-interleaving-feedback``); ``conflict`` only what relates two tasks' accesses (conflict
pairs, locks held at a preemption, pte transition pairs, lock-order edges), without the
families that key on where a switch happens (with fuzz_preempt, every new position of a
preemption is a new ``sw``/``sw3`` feature, and a corpus kept for positions spreads
libFuzzer's mutations thin); ``near`` only the race-window families (``nr``, ``hw``, ``av``:
how near two tasks' conflicting accesses are, by class); ``nopos`` every family but the ones
keyed on where a switch happens (``sw``, ``sw3``, ``ph``: fuzzers/_coverage.POSITION_FAMILIES).
With fuzz_preempt, every mode but
``none`` also guides half of the mutations by the input's trace (fuzzers/_guide.py); ``none``
traces nothing and mutates blind. ``--libfuzzer-mutator`` runs fuzz_preempt with libFuzzer's
own mutations instead of its custom mutator (fuzzers/_mutate.py): the control of that mutator.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

ORDER_FAMILIES = "sw,lk,pte,get_page,put_page,map,sw3"
CONFLICT_FAMILIES = "cf,ph,pp,lk"
NEAR_FAMILIES = "nr,hw,av"
NOPOS_FAMILIES = "lk,pte,pp,cf,get_page,put_page,map,nr,hw,av"
FAMILIES_OF = {"order": ORDER_FAMILIES, "conflict": CONFLICT_FAMILIES, "near": NEAR_FAMILIES,
               "nopos": NOPOS_FAMILIES}
"""``MIGFUZZ_FEEDBACK_FAMILIES`` of each mode that reports only some families."""
MODES = ("all", *FAMILIES_OF, "none")
TARGETS = ("fuzz_preempt", "fuzz_scenario", "fuzz_schedule", "fuzz_sequential")


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


@dataclass(frozen=True)
class Run:
    executions: int
    crashed: bool
    cpu: float
    """CPU seconds (user + system) of the fuzzer process, start-up included."""
    seed_inputs: int = 0
    """Inputs libFuzzer found in its corpus directories at start (0: an empty corpus)."""


def run_cpu(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, str, float]:
    """Run ``cmd`` from the project root: (stdout, stderr, CPU seconds of the process and of
    every descendant it waited for, from ``wait4``)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0  # reaped by wait4; keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        return out.read(), err.read(), usage.ru_utime + usage.ru_stime


def fuzz(target: str, seed: int, *, bug: str | None, mode: str, runs: int,
         seeds: bool = True, libfuzzer_mutator: bool = False,
         scenario: str | None = None) -> Run:
    """One libFuzzer run of ``runs`` executions at most."""
    with tempfile.TemporaryDirectory() as work:
        art = Path(work) / "art"
        art.mkdir()
        corpus = Path(work) / "corpus"
        corpus.mkdir()
        cmd = [PY, "-m", f"fuzzers.{target}", str(corpus), f"-runs={runs}", "-max_len=512",
               f"-seed={seed + 1}", f"-artifact_prefix={art}/", "-print_final_stats=1"]
        if seeds:  # the committed seed corpus and the dictionary
            cmd[4:4] = [str(ROOT / "corpus" / target)]
            if target != "fuzz_preempt":  # its bytes are preemptions (migfuzz.fuzz.NO_DICT)
                cmd.append(f"-dict={ROOT / 'fuzzers' / 'schedule.dict'}")
        env = dict(os.environ, MIGFUZZ_BUGS=bug or "", MIGFUZZ_FIXES="all",
                   MIGFUZZ_FEEDBACK_FAMILIES=FAMILIES_OF.get(mode, ""),
                   MIGFUZZ_SCENARIO=scenario or "")
        if mode == "none":
            cmd.append("--no-interleaving-feedback")
        if libfuzzer_mutator:
            cmd.append("--libfuzzer-mutator")
        _, stderr, cpu = run_cpu(cmd, env)
        crashed = any(art.iterdir())
        units = re.search(r"stat::number_of_executed_units:\s+(\d+)", stderr)
        if units is None:
            raise SystemExit(f"bench: no final stats from {' '.join(cmd)}:\n{stderr[-2000:]}")
        # libFuzzer lists each corpus directory before running anything (its seed corpus
        # line comes after the empty input, which may already be the crash)
        loaded = sum(map(int, re.findall(r"INFO:\s+(\d+) files found in", stderr)))
        return Run(int(units.group(1)), crashed, cpu, loaded)


def startup_cpu(target: str, mode: str) -> float:
    """CPU seconds a run of ``target`` spends before its first input (importing and
    instrumenting the model): a one-execution run, twice, the smaller. From an empty corpus:
    libFuzzer runs every input of a seed corpus whatever ``-runs`` says, and that is search."""
    return min(fuzz(target, 0, bug=None, mode=mode, runs=1, seeds=False).cpu for _ in range(2))


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


def spread(values: list[float], found: int, rounds: int, fmt: str) -> str:
    """``median [min-max] (found/rounds)``, ``>`` when most runs used their budget (a run
    without a find counts as its budget, so the median is then the budget)."""
    over = ">" if found * 2 <= rounds else ""
    return (f"{over}{statistics.median(values):{fmt}} [{min(values):{fmt}}-"
            f"{max(values):{fmt}}] ({found}/{rounds})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=20_000, help="executions per run")
    ap.add_argument("--throughput-runs", type=int, default=2000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "fuzz.md"))
    ap.add_argument("--no-seeds", action="store_true",
                    help="start from an empty corpus without the dictionary")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--bugs", default="deep", help='"deep" (depth >= 2), "all", or names')
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--jobs", type=int, default=1, help="runs at once")
    ap.add_argument("--target", default="fuzz_schedule", choices=TARGETS,
                    help="the fuzzer of the time-to-bug part")
    ap.add_argument("--libfuzzer-mutator", action="store_true",
                    help="fuzz_preempt without its custom mutator")
    ap.add_argument("--pin", action="store_true",
                    help="fuzz_preempt on each bug's catalog scenario only (MIGFUZZ_SCENARIO)")
    args = ap.parse_args()
    if args.pin and args.target != "fuzz_preempt":
        raise SystemExit("bench: --pin needs --target fuzz_preempt")
    seeds = not args.no_seeds
    modes = args.modes.split(",")
    if not set(modes) <= set(MODES):
        raise SystemExit(f"bench: --modes is a list of {', '.join(MODES)}")
    if "none" not in modes and not args.skip_throughput:
        raise SystemExit("bench: the throughput table needs mode none (or --skip-throughput)")
    bugs = catalog_bugs(args.bugs)
    from target.bugs import CATALOG  # importable once catalog_bugs set the path

    scenario_of = {b: CATALOG[b].scenario for b, _ in bugs}
    pool = ThreadPoolExecutor(args.jobs)

    target = args.target
    startup = {m: startup_cpu(target, m) for m in modes}

    argv = " ".join(sys.argv[1:])
    lines = ["# Fuzzers: throughput and time-to-bug", "",
             f"Machine: {machine()}.", "",
             f"Command: `.venv/bin/python bench/fuzz_time_to_bug.py {argv}`", "",
             "Start-up CPU seconds per mode (import and instrumentation, subtracted below): "
             + ", ".join(f"{m} {startup[m]:.1f}" for m in modes) + "."]
    if not args.skip_throughput:
        lines += ["", f"## Executions per CPU second per fuzzer (every fix, no bug, "
                  f"{args.throughput_runs:,} executions from the seeds)", "",
                  "| fuzzer | " + " | ".join(modes) + " | "
                  + " | ".join(f"{m}/none" for m in modes if m != "none") + " |",
                  "|---|" + "---|" * (2 * len(modes) - 1)]
        for t in TARGETS:
            runs = list(pool.map(lambda m, t=t: fuzz(t, 0, bug=None, mode=m,
                                                     runs=args.throughput_runs), modes))
            rate = {m: r.executions / max(r.cpu - startup[m], 1e-3)
                    for m, r in zip(modes, runs, strict=True)}
            lines.append(f"| {t} | " + " | ".join(f"{rate[m]:.0f}" for m in modes)
                         + " | " + " | ".join(f"{rate[m] / rate['none']:.2f}"
                                              for m in modes if m != "none") + " |")
            print(lines[-1], flush=True)

    start = "seed corpus + dictionary" if seeds else "an empty corpus, no dictionary"
    # the ratios need plain coverage measured in the same run (a run of other modes only
    # compares them with a none column measured elsewhere, by hand)
    others = [m for m in modes if m != "none"] if "none" in modes else []
    mutator = " (libFuzzer's own mutator)" if args.libfuzzer_mutator else ""
    mutator += ", on each bug's catalog scenario only" if args.pin else ""
    lines += ["", f"## Time to first detection, {target}{mutator}, from {start}, {args.rounds} "
              f"rounds of at most {args.budget:,} executions", "",
              "Per mode: median executions to the bug [min-max] (found/rounds), then median "
              "CPU seconds; `>`: the median run used its budget. Ratios: median CPU seconds of "
              "plain coverage over the mode's (> 1: the feedback finds the bug sooner).", "",
              "| " + " | ".join(["bug", "depth", *(f"{m} executions | {m} CPU s" for m in modes),
                                 *(f"none/{m}" for m in others)]) + " |",
              "|---|---|" + "---|" * (2 * len(modes) + len(others))]
    for bug, depth in bugs:
        jobs = [(r, m) for r in range(args.rounds) for m in modes]

        def one(rm: tuple[int, str], b: str = bug) -> Run:
            run = fuzz(target, rm[0], bug=b, mode=rm[1], runs=args.budget, seeds=seeds,
                       libfuzzer_mutator=args.libfuzzer_mutator,
                       scenario=scenario_of[b] if args.pin else None)
            print(b, rm[1], rm[0], run, flush=True)  # progress, as runs end
            return run

        results = list(pool.map(one, jobs))
        execs: dict[str, list[float]] = {m: [] for m in modes}
        cpu: dict[str, list[float]] = {m: [] for m in modes}
        found = dict.fromkeys(modes, 0)
        for (_, m), run in zip(jobs, results, strict=True):
            execs[m].append(run.executions if run.crashed else args.budget)
            cpu[m].append(max(run.cpu - startup[m], 0.0))
            found[m] += run.crashed
        cells = [f"{spread(execs[m], found[m], args.rounds, ',.0f')} | "
                 f"{spread(cpu[m], found[m], args.rounds, '.1f')}" for m in modes]
        ratio = [statistics.median(cpu["none"]) / max(statistics.median(cpu[m]), 1e-3)
                 for m in others]
        lines.append("| " + " | ".join([bug, str(depth), *cells, *(f"{x:.2f}" for x in ratio)])
                     + " |")
        print(lines[-1], flush=True)
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
