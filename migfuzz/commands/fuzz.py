"""``migfuzz fuzz``: run an atheris fuzz target under libFuzzer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._args import (
    add_fix_arguments,
    fixes_of,
    jobs_count,
    non_negative_int,
    seconds_budget,
)
from .._errors import UsageError
from ..bugs import check_bugs
from ..fuzz import TARGETS as FUZZ_TARGETS
from ..fuzz import check_target as check_fuzz_target
from ..fuzz import format_fuzz_summary, run_fuzz, scenario_seed
from ..report import fixes_text

HELP = "run an atheris fuzz target under libFuzzer"
DESCRIPTION: str | None = (
    "Run TARGET (see fuzzers/) with libFuzzer; convert crash artifacts to finding files; "
    "merge new coverage into the corpus. Exit 0: no findings; 1: findings; 2: usage error.")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help=f"one of: {', '.join(FUZZ_TARGETS)}")
    p.add_argument("--seconds", type=seconds_budget, default=60.0, metavar="N",
                   help="total fuzzing time (default 60)")
    p.add_argument("--jobs", type=jobs_count, default=1, metavar="N",
                   help="libFuzzer -fork=N workers (default 1: stop at the first crash)")
    p.add_argument("--bug", action="append", default=[], metavar="NAME",
                   help="inject a catalog bug (repeatable)")
    add_fix_arguments(p)
    p.add_argument("--corpus", metavar="DIR", default=None,
                   help="seed corpus, merged back at the end (default corpus/TARGET)")
    p.add_argument("--out", default="findings", metavar="DIR",
                   help="finding files, and the work corpus and artifacts under "
                        "DIR/fuzz-TARGET/ (default ./findings)")
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                   help="libFuzzer seed (default 0)")
    p.add_argument("--no-interleaving-feedback", action="store_true",
                   help="code coverage only (for comparison)")
    p.add_argument("--scenario", metavar="FILE",
                   help="seed the work corpus with this scenario file (JSON, "
                        "docs/scenarios.md), encoded as an input of fuzz_scenario or "
                        "fuzz_sequential; exit 2 if the decoder cannot express it")


def run(a: argparse.Namespace) -> int:
    target = check_fuzz_target(a.target)
    bugs = check_bugs(a.bug)
    fixes = fixes_of(a)
    corpus = Path(a.corpus) if a.corpus else Path(__file__).resolve().parents[2] / (
        "corpus/" + target)
    if a.corpus and not corpus.is_dir():
        raise UsageError(f"--corpus {a.corpus}: no such directory")
    seeds = [scenario_seed(a.scenario, target)] if a.scenario is not None else []
    print(f"migfuzz fuzz: {target}, {a.seconds:g} s, {a.jobs} job(s), bugs "
          f"{', '.join(bugs) or 'none'}, fixes {fixes_text(fixes)}, corpus {corpus}"
          f"{' + ' + a.scenario if a.scenario else ''} -> {a.out}/", file=sys.stderr)
    summary = run_fuzz(target, a.seconds, a.jobs, bugs, corpus, Path(a.out),
                       feedback=not a.no_interleaving_feedback, seed=a.seed, fixes=fixes,
                       seeds=seeds)
    print(format_fuzz_summary(summary))
    return 1 if summary.findings else 0
