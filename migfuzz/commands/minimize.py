"""``migfuzz minimize``: shrink a finding file."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .._args import (
    EXECUTORS,
    MAX_SEARCH_RUNS,
    non_negative_int,
    search_runs_count,
)
from .._errors import UsageError
from ..findings import (
    load,
    write_atomic,
)
from ..minimize import NotReproducible, minimize

HELP = "shrink a finding file"
DESCRIPTION: str | None = (
    "Shrink tasks, operations and preemptions while the same signature reproduces; write a "
    "valid finding file. Exit 0: written; 1: the finding does not reproduce; 2: usage error.")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--out", required=True, metavar="OUT",
                   help="output file, or a directory to write <kind>-<hash>.json into")
    p.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="executor of the output file (default: the recorded one)")
    p.add_argument("--search-runs", type=search_runs_count, default=12, metavar="N",
                   help="random/PCT runs to re-search a candidate that the recorded schedule "
                        f"no longer fits (default 12, at most {MAX_SEARCH_RUNS:,})")
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                   help="seed of those re-search runs (default 0)")


def run(a: argparse.Namespace) -> int:
    record = load(a.file)
    out = Path(a.out)
    print(f"minimizing {a.file}: {record.signature}", file=sys.stderr)
    try:
        rec, before, after = minimize(
            record, source=a.file, search_runs=a.search_runs, seed=a.seed,
            executor=a.executor, log=lambda s: print(f"  {s}", file=sys.stderr))
    except NotReproducible as exc:
        print(f"{a.file}: {exc}; nothing written", file=sys.stderr)
        return 1
    if out.is_dir() or a.out.endswith(os.sep):
        out = out / rec.file_name()
    try:
        write_atomic(out, rec.dumps())
    except OSError as exc:
        raise UsageError(f"-o {a.out}: cannot write: {exc.strerror or exc}") from None
    print(f"before: {before}")
    print(f"after:  {after}")
    print(f"wrote {out}")
    print(f"reproduce: migfuzz repro {out}")
    return 0
