"""The ``migfuzz`` command line.

    migfuzz stress     run a stress campaign, save findings (exit 0 clean or only known flaws,
                       1 a finding no known flaw explains)
    migfuzz repro      replay finding files (exit 1 still reproduces, 0 no longer)
    migfuzz minimize   shrink a finding file (exit 0 written, 1 does not reproduce)
    migfuzz scenarios  list the canonical scenarios
    migfuzz bugs       list the catalog of injectable historical bugs
    migfuzz fixes      list the upstream fixes of V2's real flaws (--fix NAME, --fixes all)
    migfuzz fuzz       run an atheris fuzz target; crashes become finding files
    migfuzz gate       pre-merge gate: replays, bounded DFS, fixed stress (exit 0 pass, 1 fail)
    migfuzz nightly    time-boxed stress + fuzzing with a SQLite history and an HTML report

Exit status 2 is a usage or input error: a bad option, an unknown scenario / strategy /
executor / bug / fix, a missing or invalid finding file. Such errors print ``migfuzz: error: ...``
and never a traceback; outputs (``--out``, ``--db``, ``--report``, ``--junit``, ``-o``) are
checked before any work starts. Exit status 3 is a harness error (a bug in migfuzz or the
model's Python, never a finding of the modelled kernel: one line, the traceback in a log file)
or an environment failure during a run (disk full, file size limit: what was saved stays).
130: interrupted (Ctrl-C), whatever was found before. A reader closing the pipe (``| head``)
does not change the status.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import os
import sqlite3
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from stress import DEFAULT_MAX_STEPS
from stress.scenarios import CANONICAL, canonical
from stress.schedule import ScheduleFormatError
from stress.workload import ScenarioError, load_scenario_file

from . import __version__
from ._args import (
    MAX_JOBS,
    MAX_SEARCH_RUNS,
    add_fix_arguments,
    bounded_int,
    fixes_of,
    jobs_count,
    non_negative_int,
    positive_float,
    positive_int,
    runs_count,
    search_runs_count,
    seconds_budget,
)
from ._errors import FindingFileError, UsageError
from ._paths import database_file, writable_dir, writable_file
from .bugs import check_bugs, check_depths, check_fixes
from .campaign import SCENARIO_MODES, Campaign, CampaignConfig, default_jobs
from .findings import (
    FORMAT,
    MAX_STEPS,
    FindingRecord,
    is_finding,
    load,
    parse_json,
    read_bounded,
    write_atomic,
)
from .fuzz import TARGETS as FUZZ_TARGETS
from .fuzz import check_target as check_fuzz_target
from .fuzz import format_fuzz_summary, record_from_artifact, run_fuzz, scenario_seed
from .gate import cmd_gate
from .gate import configure_parser as configure_gate_parser
from .minimize import NotReproducible, minimize
from .nightly import DESCRIPTION as NIGHTLY_DESCRIPTION
from .nightly import add_arguments as configure_nightly_parser
from .nightly import cmd_nightly
from .refresh import refresh_file
from .replay import check
from .report import fixes_text, format_summary, format_verdict, strategies_line, verdict_json
from .scenario_repro import DEFAULT_RUNS, format_scenario_repro, repro_scenario
from .strategies import BASE_STRATEGIES, STRATEGIES, check_strategy

EXECUTORS = ("trio", "direct")

max_steps_count = bounded_int(1, MAX_STEPS)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="migfuzz",
        description="Fuzzing and concurrency stress testing of a model of Linux page "
                    "migration (Swapless V2, 2006).",
    )
    p.add_argument("--version", action="version", version=f"migfuzz {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("stress", help="run a stress campaign and save findings",
                       description="Run the model under many schedules; save one finding "
                       "file per distinct signature; label each finding a known flaw of V2 as "
                       "posted explains (by replaying it with that flaw's upstream fix). Exit 0: "
                       "no findings, or only known flaws; 1: a finding no known flaw explains; "
                       "2: usage error; 3: harness error.")
    budget = s.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=seconds_budget, metavar="N",
                        help="run for N seconds (default: 60 unless --runs is given)")
    budget.add_argument("--runs", type=runs_count, metavar="N",
                        help="run exactly N schedules (deterministic for a given --seed)")
    s.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                   help="campaign seed (default 0)")
    s.add_argument("--strategy", choices=STRATEGIES, default="portfolio",
                   help="scheduling strategy (default: portfolio, alternating the others)")
    s.add_argument("--executor", choices=EXECUTORS, default="trio",
                   help="run each execution in this executor (default trio)")
    s.add_argument("--jobs", type=jobs_count, default=None, metavar="N",
                   help=f"worker processes, at most {MAX_JOBS} (default: os.cpu_count() = "
                        f"{default_jobs()})")
    s.add_argument("--scenario", metavar="NAME|FILE",
                   help="a canonical scenario (see `migfuzz scenarios`), or `generated` "
                        "(a new scenario per run), `canonical` (all canonical ones), `mixed` "
                        "(default: half canonical, half generated), or a scenario file "
                        "(JSON; docs/scenarios.md) that every run runs")
    s.add_argument("--bug", action="append", default=[], metavar="NAME",
                   help="inject a catalog bug (repeatable)")
    add_fix_arguments(s)
    s.add_argument("--out", default="findings", metavar="DIR",
                   help="directory for finding files (default ./findings)")
    s.add_argument("--max-steps", type=max_steps_count, default=DEFAULT_MAX_STEPS, metavar="N",
                   help=f"scheduling points before a run is a livelock "
                        f"(default {DEFAULT_MAX_STEPS})")
    s.add_argument("-x", "--exitfirst", action="store_true",
                   help="stop at the first finding")
    s.add_argument("--json", action="store_true",
                   help="print a machine-readable summary on stdout (the table goes to stderr)")

    r = sub.add_parser("repro", help="replay finding files exactly",
                       description="Replay each finding twice with its recorded schedule, "
                       "print the finding and its interleaving. Or, with --scenario FILE, run "
                       "a scenario file under --strategy from --seed for --runs runs, and "
                       "save, replay and minimize the first finding. Exit 1: still "
                       "reproduces (found); 0: no longer reproduces (nothing found); 2: "
                       "missing or invalid file.")
    r.add_argument("files", nargs="*", metavar="FILE")
    r.add_argument("--scenario", metavar="FILE",
                   help="a scenario file (JSON, docs/scenarios.md) to run instead of finding "
                        "files: its first finding is saved in --out, replayed and minimized "
                        "into OUT/minimized/")
    r.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="with --scenario: the scheduling strategy (default portfolio)")
    r.add_argument("--seed", type=non_negative_int, default=None, metavar="S",
                   help="with --scenario: the campaign seed (default 0)")
    r.add_argument("--runs", type=runs_count, default=None, metavar="N",
                   help=f"with --scenario: at most N schedules (default {DEFAULT_RUNS})")
    r.add_argument("--out", default=None, metavar="DIR",
                   help="with --scenario: directory for the finding files (default "
                        "./findings)")
    r.add_argument("--search-runs", type=search_runs_count, default=None, metavar="N",
                   help="with --scenario: re-search runs of the minimizer (default 12)")
    r.add_argument("--max-steps", type=max_steps_count, default=None,
                   metavar="N", help="with --scenario: scheduling points before a run is a "
                   f"livelock (default {DEFAULT_MAX_STEPS})")
    r.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="replay on this executor (default: the recorded one)")
    r.add_argument("--tail", type=non_negative_int, default=None, metavar="N",
                   help="show only the last N timeline events (0: all; default all)")
    r.add_argument("--no-timeline", action="store_true", help="do not print the timeline")
    r.add_argument("--width", type=positive_int, default=None, metavar="COLS",
                   help="timeline width (default: the terminal's)")
    r.add_argument("--json", action="store_true", help="machine-readable verdicts on stdout")
    r.add_argument("--target", choices=FUZZ_TARGETS, default=None,
                   help="for a raw libFuzzer artifact: the fuzz target that wrote it "
                        "(default: from its path, else every target is tried)")
    r.add_argument("--bug", action="append", default=[], metavar="NAME",
                   help="for a raw artifact: the bug(s) the fuzzer ran with; with --scenario: "
                        "bugs to inject (repeatable)")
    r.add_argument("--fix", action="append", default=[], metavar="NAME",
                   help="for a raw artifact: the fix(es) the fuzzer ran with; with --scenario: "
                        "fixes to apply (repeatable, `all`); a finding file replays with the "
                        "fixes it records")
    r.add_argument("--refresh", action="store_true",
                   help="known reproducers (corpus/known/): rewrite each file whose exact "
                        "replay drifted with a deterministic re-search of its bug (exit 0 all "
                        "replay or were re-found, 1 one could not be re-found)")

    m = sub.add_parser("minimize", help="shrink a finding file",
                       description="Shrink tasks, operations and preemptions while the same "
                       "signature reproduces; write a valid finding file. Exit 0: written; "
                       "1: the finding does not reproduce; 2: usage error.")
    m.add_argument("file", metavar="FILE")
    m.add_argument("-o", "--out", required=True, metavar="OUT",
                   help="output file, or a directory to write <kind>-<hash>.json into")
    m.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="executor of the output file (default: the recorded one)")
    m.add_argument("--search-runs", type=search_runs_count, default=12, metavar="N",
                   help="random/PCT runs to re-search a candidate that the recorded schedule "
                        f"no longer fits (default 12, at most {MAX_SEARCH_RUNS:,})")
    m.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                   help="seed of those re-search runs (default 0)")

    sc = sub.add_parser("scenarios", help="list the canonical scenarios")
    sc.add_argument("--json", action="store_true")

    b = sub.add_parser("bugs", help="list the catalog of injectable historical bugs")
    b.add_argument("--json", action="store_true")
    b.add_argument("--measure", nargs="*", metavar="NAME", default=None,
                   help="re-measure the depth of the named bugs (default: all; exhaustive "
                        "preemption-bounded DFS of each one's scenario, minutes for all) and "
                        "compare with the catalog; exit 1 on a mismatch")

    fx = sub.add_parser("fixes", help="list the upstream fixes of V2's real flaws",
                        description="The real flaws of Swapless V2 as posted that the model "
                        "reaches, and the upstream change that fixed each: apply with --fix "
                        "NAME (repeatable) or --fixes all.")
    fx.add_argument("--json", action="store_true")

    f = sub.add_parser("fuzz", help="run an atheris fuzz target under libFuzzer",
                       description="Run TARGET (see fuzzers/) with libFuzzer; convert crash "
                       "artifacts to finding files; merge new coverage into the corpus. "
                       "Exit 0: no findings; 1: findings; 2: usage error.")
    f.add_argument("target", metavar="TARGET", help=f"one of: {', '.join(FUZZ_TARGETS)}")
    f.add_argument("--seconds", type=seconds_budget, default=60.0, metavar="N",
                   help="total fuzzing time (default 60)")
    f.add_argument("--jobs", type=jobs_count, default=1, metavar="N",
                   help="libFuzzer -fork=N workers (default 1: stop at the first crash)")
    f.add_argument("--bug", action="append", default=[], metavar="NAME",
                   help="inject a catalog bug (repeatable)")
    add_fix_arguments(f)
    f.add_argument("--corpus", metavar="DIR", default=None,
                   help="seed corpus, merged back at the end (default corpus/TARGET)")
    f.add_argument("--out", default="findings", metavar="DIR",
                   help="finding files, and the work corpus and artifacts under "
                        "DIR/fuzz-TARGET/ (default ./findings)")
    f.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                   help="libFuzzer seed (default 0)")
    f.add_argument("--no-interleaving-feedback", action="store_true",
                   help="code coverage only (for comparison)")
    f.add_argument("--scenario", metavar="FILE",
                   help="seed the work corpus with this scenario file (JSON, "
                        "docs/scenarios.md), encoded as an input of fuzz_scenario or "
                        "fuzz_sequential; exit 2 if the decoder cannot express it")

    g = sub.add_parser("gate", help="pre-merge gate: a bounded, deterministic verdict",
                       description="Replay the known-bug reproducers and regressions, explore "
                       "the tiny scenarios exhaustively (DFS, preemption bound 2), check that "
                       "each known flaw of V2 is found without its upstream fix and gone with "
                       "every fix (corpus/flaws), then stress a fixed number of runs from fixed "
                       "seeds; every part but the flaws runs with every fix by default. Exit "
                       "0: pass; 1: findings; 2: usage error or unusable corpus file; 3: "
                       "harness error.")
    configure_gate_parser(g, seconds=positive_float, count=positive_int)

    n = sub.add_parser("nightly", help="time-boxed stress and fuzzing with history and an "
                       "HTML report", description=NIGHTLY_DESCRIPTION)
    configure_nightly_parser(n)
    return p


def _err(msg: str) -> None:
    print(f"migfuzz: error: {msg}", file=sys.stderr)


def cmd_stress(a: argparse.Namespace) -> int:
    check_strategy(a.strategy)
    scenario_data = None
    if a.scenario is not None and a.scenario not in SCENARIO_MODES:
        if a.scenario not in CANONICAL and (a.scenario.endswith(".json")
                                            or Path(a.scenario).is_file()):
            user = load_scenario_file(a.scenario)  # ScenarioError names file and field
            scenario_data, a.scenario = user.dumps(), user.name
        else:
            canonical(a.scenario)  # ScenarioError names the valid ones
    bugs = check_bugs(a.bug)
    fixes = fixes_of(a)
    Path(a.out).mkdir(parents=True, exist_ok=True)  # checked writable by check_outputs
    seconds = a.seconds if a.seconds is not None or a.runs is not None else 60.0
    cfg = CampaignConfig(
        seed=a.seed, runs=a.runs, seconds=seconds, strategy=a.strategy,
        executor=a.executor, jobs=a.jobs or default_jobs(), scenario=a.scenario,
        scenario_data=scenario_data,
        bugs=tuple(bugs), fixes=tuple(fixes), out=a.out, max_steps=a.max_steps,
        exitfirst=a.exitfirst,
        members=BASE_STRATEGIES,
    )
    budget = f"{cfg.runs:,} runs" if cfg.runs is not None else f"{cfg.seconds:g} s"
    print(f"migfuzz stress: {budget}, seed {cfg.seed}, strategy "
          f"{strategies_line(cfg.strategy, cfg.members)}"
          f", executor {cfg.executor}, {cfg.jobs} job{'s' if cfg.jobs != 1 else ''}, "
          f"scenarios {cfg.scenario or 'mixed'}, bugs {', '.join(bugs) or 'none'}, "
          f"fixes {fixes_text(fixes)} -> "
          f"{cfg.out}/", file=sys.stderr)
    summary = Campaign(cfg, progress=sys.stderr).run()
    table = format_summary(summary)
    if a.json:
        print(table, file=sys.stderr)
        print(json.dumps(summary.to_json(), indent=2))
    else:
        print(table)
    # A Ctrl-C'd campaign is not a clean one, whatever it found before.
    return 130 if summary.interrupted else summary.exit_code


SCENARIO_ONLY = ("--strategy", "--seed", "--runs", "--out", "--search-runs", "--max-steps")


def cmd_repro(a: argparse.Namespace) -> int:
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
            _err(msg)
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
            _err(str(exc))
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


def cmd_bugs(a: argparse.Namespace) -> int:
    from target.bugs import CATALOG

    if a.measure is not None:
        return 1 if check_depths(check_bugs(a.measure) or None) else 0
    rows: list[dict[str, Any]] = [
        {"name": b.name, "year": b.year, "breaks": b.breaks, "summary": b.summary,
         "reference": b.reference, "expected_kinds": list(b.expected_kinds),
         "scenario": b.scenario, "strategy": b.strategy, "depth": b.depth, "kind": b.kind,
         "history": b.history, "model_check": b.model_check,
         "depth_without_check": b.depth_without_check, "fixes": list(b.fixes)}
        for b in CATALOG.values()
    ]
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    w = max(len(str(r["name"])) for r in rows)
    for r in rows:
        print(f"{r['name']:<{w}}  {r['year']}  {r['kind']}, depth {r['depth']}"
              f"{'' if r['history'] == 'upstream' else ' (mutation of the history)'}: "
              f"{r['summary']}")
        if r["model_check"]:
            print(f"{'':<{w}}        depth {r['depth_without_check']} without the model-side "
                  f"check {r['model_check']} (the kernel of the time had none)")
        print(f"{'':<{w}}        breaks {r['breaks']}; shows as {', '.join(r['expected_kinds'])}"
              f" (scenario {r['scenario']}, {r['strategy']}"
              f"{', with fixes: ' + ', '.join(r['fixes']) if r['fixes'] else ''})")
        print(f"{'':<{w}}        {r['reference']}")
    return 0


def cmd_fixes(a: argparse.Namespace) -> int:
    from target.fixes import FIXES

    rows: list[dict[str, Any]] = [
        {"name": f.name, "title": f.title, "commit": f.commit, "date": f.date,
         "breaks": f.breaks, "summary": f.summary, "finding_kinds": list(f.finding_kinds),
         "scenario": f.scenario, "needs": f.needs, "requires": list(f.requires)}
        for f in FIXES.values()
    ]
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    w = max(len(str(r["name"])) for r in rows)
    pad = " " * (w + 2)
    for r in rows:
        print(f"{r['name']:<{w}}  {r['date']}  \"{r['title']}\"")
        print(f"{pad}{r['commit']}")
        print(f"{pad}flaw: {r['summary']}")
        print(f"{pad}breaks {r['breaks']}; shows as {', '.join(r['finding_kinds'])} "
              f"(scenario {r['scenario']})")
        if r["requires"]:
            print(f"{pad}requires {', '.join(r['requires'])}")
    print("\napply with --fix NAME (repeatable) or --fixes all; the default is V2 as posted")
    return 0


def cmd_fuzz(a: argparse.Namespace) -> int:
    target = check_fuzz_target(a.target)
    bugs = check_bugs(a.bug)
    fixes = fixes_of(a)
    corpus = Path(a.corpus) if a.corpus else Path(__file__).resolve().parent.parent / (
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


def cmd_minimize(a: argparse.Namespace) -> int:
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


def cmd_scenarios(a: argparse.Namespace) -> int:
    rows = []
    for name, factory in CANONICAL.items():
        sc = factory()
        tasks, ops = sc.size()
        para = (factory.__doc__ or "").strip().split("\n\n")[0]
        rows.append({"name": name, "tasks": tasks, "ops": ops,
                     "summary": " ".join(para.split())})
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    w = max(len(str(r["name"])) for r in rows)
    print(f"{'scenario':<{w}}  tasks  ops  summary")
    for row in rows:
        print(f"{row['name']:<{w}}  {row['tasks']:>5}  {row['ops']:>3}  {row['summary']}")
    return 0


USER_ERRORS = (UsageError, ScenarioError, ScheduleFormatError)
"""Input errors: a clear message and exit 2, never a traceback."""

WRITE_ERRNOS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded",
                errno.EFBIG: "file size limit reached", errno.EROFS: "read-only file system"}
"""Environment failures during a run: what was saved stays, the run ends with exit 3."""


def check_outputs(a: argparse.Namespace) -> None:
    """Every output the command will write, tried before any work starts (exit 2 if not)."""
    cmd = a.command
    if cmd in ("stress", "fuzz", "gate", "nightly"):
        out = writable_dir(a.out, "--out")
        if cmd == "nightly":
            database_file(a.db or str(out / "history.sqlite"), "--db")
            writable_dir(a.report or str(out / "report"), "--report")
        if cmd == "gate" and a.junit:
            writable_file(a.junit, "--junit")
    elif cmd == "minimize":
        if Path(a.out).is_dir() or a.out.endswith(os.sep):
            writable_dir(a.out, "-o")
        else:
            writable_file(a.out, "-o")


class PipeSafeStdout:
    """``sys.stdout`` that survives its reader going away (``migfuzz repro F | head``).

    The command goes on and returns its real exit status (1: reproduces): ending it at the
    first failed write would turn "still reproduces" into 0. Output after that goes nowhere.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False

    def _lost_reader(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._lost_reader()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._lost_reader()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def harness_error(exc: BaseException) -> int:
    """Exit 3 for a bug of ours (or of the model's Python): one line, traceback to a log."""
    text = "".join(traceback.format_exception(exc))
    try:
        fd, log = tempfile.mkstemp(prefix="migfuzz-harness-error-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"migfuzz {__version__} {' '.join(sys.argv)}\n{text}")
        where = f"traceback in {log}"
    except OSError:
        where = "no log: cannot write one either"
    _err(f"harness error (a bug in migfuzz, not a finding): {type(exc).__name__}: "
         f"{_one_line(exc)} ({where})")
    return 3


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (argparse exits 2 itself on bad options).

    0/1 are the commands' verdicts, 2 bad input, 3 a harness or environment failure (never
    1, which means "found"), 130 Ctrl-C.
    """
    args = build_parser().parse_args(argv)
    commands = {"stress": cmd_stress, "repro": cmd_repro, "minimize": cmd_minimize,
                "scenarios": cmd_scenarios, "bugs": cmd_bugs, "fixes": cmd_fixes,
                "fuzz": cmd_fuzz,
                "gate": cmd_gate, "nightly": cmd_nightly}
    stdout = sys.stdout
    sys.stdout = PipeSafeStdout(stdout)
    try:
        check_outputs(args)
        return commands[args.command](args)
    except USER_ERRORS as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except OSError as exc:
        why = WRITE_ERRNOS.get(exc.errno or 0)
        if why is None:
            return harness_error(exc)
        _err(f"{why}: {exc.filename or 'writing output'}: the run stopped; what was "
             "saved before is intact (files are written atomically)")
        return 3
    except sqlite3.Error as exc:
        _err(f"history database: {exc}")
        return 3
    except Exception as exc:
        return harness_error(exc)
    finally:
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            sys.stdout.flush()
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
