"""``migfuzz repro``: replay finding files exactly."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from stress import DEFAULT_MAX_STEPS

from .._args import (
    EXECUTORS,
    max_steps_count,
    non_negative_int,
    positive_int,
    runs_count,
    search_runs_count,
)
from .._errors import FindingFileError, UsageError, print_error
from .._paths import writable_dir
from ..bugs import check_bugs, check_fixes
from ..findings import (
    FORMAT,
    FindingRecord,
    is_finding,
    parse_json,
    read_bounded,
)
from ..fuzz import TARGETS as FUZZ_TARGETS
from ..fuzz import record_from_artifact
from ..refresh import refresh_file
from ..replay import check
from ..report import format_verdict, verdict_json
from ..scenario_repro import DEFAULT_RUNS, format_scenario_repro, repro_scenario
from ..strategies import STRATEGIES

HELP = "replay finding files exactly"
DESCRIPTION: str | None = (
    "Replay each finding twice with its recorded schedule, print the finding and its "
    "interleaving. Or, with --scenario FILE, run a scenario file under --strategy from --seed"
    " for --runs runs, and save, replay and minimize the first finding. Exit 1: still "
    "reproduces (found); 0: no longer reproduces (nothing found); 2: missing or invalid file.")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--scenario", metavar="FILE",
                   help="a scenario file (JSON, docs/scenarios.md) to run instead of finding "
                        "files: its first finding is saved in --out, replayed and minimized "
                        "into OUT/minimized/")
    p.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="with --scenario: the scheduling strategy (default portfolio)")
    p.add_argument("--seed", type=non_negative_int, default=None, metavar="S",
                   help="with --scenario: the campaign seed (default 0)")
    p.add_argument("--runs", type=runs_count, default=None, metavar="N",
                   help=f"with --scenario: at most N schedules (default {DEFAULT_RUNS})")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="with --scenario: directory for the finding files (default "
                        "./findings)")
    p.add_argument("--search-runs", type=search_runs_count, default=None, metavar="N",
                   help="with --scenario: re-search runs of the minimizer (default 12)")
    p.add_argument("--max-steps", type=max_steps_count, default=None,
                   metavar="N", help="with --scenario: scheduling points before a run is a "
                   f"livelock (default {DEFAULT_MAX_STEPS})")
    p.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="replay on this executor (default: the recorded one)")
    p.add_argument("--tail", type=non_negative_int, default=None, metavar="N",
                   help="show only the last N timeline events (0: all; default all)")
    p.add_argument("--no-timeline", action="store_true", help="do not print the timeline")
    p.add_argument("--width", type=positive_int, default=None, metavar="COLS",
                   help="timeline width (default: the terminal's)")
    p.add_argument("--json", action="store_true", help="machine-readable verdicts on stdout")
    p.add_argument("--target", choices=FUZZ_TARGETS, default=None,
                   help="for a raw libFuzzer artifact: the fuzz target that wrote it "
                        "(default: from its path, else every target is tried)")
    p.add_argument("--bug", action="append", default=[], metavar="NAME",
                   help="for a raw artifact: the bug(s) the fuzzer ran with; with --scenario: "
                        "bugs to inject (repeatable)")
    p.add_argument("--fix", action="append", default=[], metavar="NAME",
                   help="for a raw artifact: the fix(es) the fuzzer ran with; with --scenario: "
                        "fixes to apply (repeatable, `all`); a finding file replays with the "
                        "fixes it records")
    p.add_argument("--refresh", action="store_true",
                   help="known reproducers (corpus/known/): rewrite each file whose exact "
                        "replay drifted with a deterministic re-search of its bug (exit 0 all "
                        "replay or were re-found, 1 one could not be re-found)")


def run(a: argparse.Namespace) -> int:
    check_fixes(a.fix)  # a bad name is a usage error even where no raw artifact uses it
    if a.scenario is not None:
        return _repro_scenario(a)
    if not a.files:
        raise UsageError("repro: give finding files, or --scenario FILE")
    given = [o for o in SCENARIO_ONLY if getattr(a, o[2:].replace("-", "_")) is not None]
    if given:
        raise UsageError(f"repro: {given[0]} is for --scenario; a finding file records "
                         "its own strategy and seed")
    if a.refresh:
        return _refresh(a.files)
    status = 0
    results = []
    for path in a.files:
        try:
            record = _load_any(path, a.target, a.bug, a.fix)
            v = check(record, a.executor, path)
        except UsageError as exc:  # FindingFileError names the file; bugs, strategies...
            msg = str(exc) if isinstance(exc, FindingFileError) else f"{path}: {exc}"
            print_error(msg)
            results.append({"file": path, "status": "error", "error": msg})
            status = 2
            continue
        if a.json:
            results.append(verdict_json(v, path))
        else:
            print(format_verdict(v, path, timeline=not a.no_timeline, tail=a.tail or None,
                                 width=a.width, executor_arg=a.executor))
            print()
        if v.reproduced and status == 0:
            status = 1
    if a.json:
        print(json.dumps(results, indent=2))
    return status


SCENARIO_ONLY = ("--strategy", "--seed", "--runs", "--out", "--search-runs", "--max-steps")


def _repro_scenario(a: argparse.Namespace) -> int:
    if a.files or a.refresh or a.target is not None:
        what = "FILE arguments" if a.files else "--refresh" if a.refresh else "--target"
        raise UsageError(f"repro: --scenario runs a scenario file; {what} are for finding "
                         "files and raw artifacts")
    out = a.out or "findings"
    writable_dir(out, "--out")
    seed = a.seed or 0
    r = repro_scenario(a.scenario, strategy=a.strategy or "portfolio", seed=seed,
                       runs=a.runs or DEFAULT_RUNS, executor=a.executor or "trio",
                       bugs=tuple(check_bugs(a.bug)), fixes=tuple(check_fixes(a.fix)),
                       out=out, max_steps=a.max_steps or DEFAULT_MAX_STEPS,
                       search_runs=12 if a.search_runs is None else a.search_runs)
    if a.json:
        doc: dict[str, Any] = {"scenario": a.scenario, "runs": r.runs,
                               "found": str(r.found) if r.found else None,
                               "minimized": str(r.minimized) if r.minimized else None}
        if r.verdict is not None and r.found is not None:
            doc["verdict"] = verdict_json(r.verdict, str(r.found))
        print(json.dumps(doc, indent=2))
    else:
        print(format_scenario_repro(r, a.scenario, timeline=not a.no_timeline,
                                    tail=a.tail or None, width=a.width))
    return 1 if r.verdict is not None and r.verdict.reproduced else 0


def _refresh(files: list[str]) -> int:
    status = 0
    for path in files:
        try:
            code, line = refresh_file(path)
        except UsageError as exc:  # FindingFileError names the file
            print_error(str(exc))
            status = 2
            continue
        print(line)
        status = status if status == 2 else max(status, code)
    return status


def _load_any(path: str, target: str | None, bugs: list[str],
              fixes: Sequence[str] = ()) -> FindingRecord:
    """A finding file, or a raw libFuzzer artifact, told apart by content, not the first byte.

    A finding file is JSON (in any encoding JSON allows) whose ``format`` says so; it must
    then be valid, and ``--bug``/``--target`` do not apply to it (it records its own bugs).
    Anything else is a raw input, except JSON that is not a finding: a fuzz artifact is
    arbitrary bytes and may be JSON, so that needs ``--target`` to be taken as one.
    """
    data = read_bounded(path)
    try:
        doc = parse_json(data)
    except ValueError as exc:
        if _mentions_format(data):  # a damaged finding file, not a fuzz input
            raise FindingFileError(path, f"not valid JSON (truncated or corrupt?): {exc}"
                                   ) from None
        doc = _NOT_JSON
    if is_finding(doc):
        rec = FindingRecord.from_json(doc, path)
        if bugs or fixes or target is not None:
            flag = "--bug" if bugs else "--fix" if fixes else "--target"
            raise FindingFileError(path, f"{flag} is for raw fuzz artifacts; this is a finding "
                                         f"file, which records its own bugs "
                                         f"({', '.join(rec.bugs) or 'none'})")
        return rec
    if not data.strip() and not bugs and not fixes and target is None:
        raise FindingFileError(path, "empty file")  # a raw input only when said so
    if doc is not _NOT_JSON and target is None:
        what = (f"its 'format' is {doc.get('format')!r}" if isinstance(doc, dict) else
                f"the top level is a JSON {type(doc).__name__}")
        raise FindingFileError(path, f"not a finding file ({what}); if it is a raw fuzz "
                                     "artifact, name its fuzz target with --target")
    return record_from_artifact(path, target, check_bugs(bugs), check_fixes(fixes))


_NOT_JSON = object()


def _mentions_format(data: bytes) -> bool:
    """Whether ``data`` names the finding format (in UTF-8 or UTF-16): a finding file that
    does not parse, which must be reported as damaged rather than fuzzed as raw bytes."""
    marker = f'"{FORMAT}"'
    return any(marker.encode(enc) in data for enc in ("utf-8", "utf-16-le", "utf-16-be"))
