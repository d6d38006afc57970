"""``migfuzz fuzz``: run an atheris target under libFuzzer, turn its crashes into finding files.

    migfuzz fuzz TARGET --seconds N [--jobs N] [--bug NAME] [--corpus DIR] [--out DIR]
                        [--scenario FILE]

The target runs in a child process (``python -m fuzzers.TARGET``) with libFuzzer's flags:

* ``-max_total_time=N``; ``-max_len=512`` (a schedule is one byte per decision: the default
  length limit would starve it); ``-dict=fuzzers/schedule.dict`` (not for fuzz_preempt, whose
  bytes are preemptions, not decisions);
* a work corpus ``OUT/fuzz-TARGET/corpus`` (kept between runs) and the seed corpus
  (``--corpus``, default ``corpus/TARGET``) as a second, read-only input directory;
* ``-artifact_prefix=OUT/fuzz-TARGET/artifacts/``;
* with ``--jobs N > 1``: ``-fork=N -ignore_crashes=1``, so that the campaign goes on after a
  crash; with one job libFuzzer stops at the first crash, as a reproducer hunt wants;
* the bugs in ``MIGFUZZ_BUGS`` (fuzzers/_harness.py);
* with ``--scenario FILE``: the file's scenario, encoded as an input of the target
  (fuzzers/_encode.py), written into the work corpus as ``scenario-<hash>``: the first
  input libFuzzer runs and mutates.

Afterwards every crash artifact is decoded with the target's decoder, replayed with the same
bugs, and saved as a finding file (deduplicated by signature, like ``stress``); the inputs
that added coverage are copied into ``--corpus`` (:func:`merge_corpus`). Exit codes as for
``stress``: 0 no findings, 1 findings, 2 usage error, 3 harness error.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fuzzers import DECODERS, NotExpressible, encode_scenario
from stress import DEFAULT_MAX_STEPS
from stress.workload import load_scenario_file

from ._errors import UsageError
from .bugs import injected
from .findings import FindingRecord, FindingStore, write_atomic
from .replay import confirm_record, run_traced
from .strategies import StrategySpec

ROOT = Path(__file__).resolve().parent.parent
TARGETS = tuple(sorted(DECODERS))
MAX_LEN = 512
NO_DICT = ("fuzz_preempt",)
"""Targets schedule.dict does not fit: its entries are runs of decisions (one byte each)."""
DICT = ROOT / "fuzzers" / "schedule.dict"


def libfuzzer_options(target: str) -> dict[str, str | int]:
    """The libFuzzer options ``target`` is fuzzed with, by name (``max_len``, and ``dict``:
    the dictionary file, unless the target is in :data:`NO_DICT`): what :func:`run_fuzz`
    passes as ``-NAME=VALUE`` and what migfuzz/oss_fuzz.py writes into the target's
    ClusterFuzzLite ``.options`` file, so that both fuzz alike."""
    opts: dict[str, str | int] = {"max_len": MAX_LEN}
    if check_target(target) not in NO_DICT:
        opts["dict"] = str(DICT)
    return opts


def check_target(name: str) -> str:
    if name not in DECODERS:
        raise UsageError(f"unknown fuzz target {name!r}; choose one of: {', '.join(TARGETS)}")
    return name


@dataclass
class FuzzSummary:
    target: str
    seconds: float
    execs: int = 0
    exec_per_sec: float = 0.0
    coverage: int = 0
    features: int = 0
    artifacts: list[Path] = field(default_factory=list)
    findings: dict[str, Path] = field(default_factory=dict)  # signature -> file
    returncode: int = 0
    merged: int = 0  # work-corpus inputs copied into the seed corpus afterwards


def artifact_record(data: bytes, target: str, bugs: list[str], source: str,
                    executor: str = "direct", fixes: Sequence[str] = ()) -> FindingRecord | None:
    """The finding file of one raw input of ``target``: decode, run with ``bugs`` (on top of
    ``fixes``), and record the decisions it took (``replay.confirm_record``); None if it
    does not produce a finding."""
    decode = DECODERS[target]
    scenario, scheduler = decode(data)
    with injected(bugs, fixes):
        outcome = run_traced(scenario, scheduler, executor=executor, max_steps=DEFAULT_MAX_STEPS)
        if outcome.finding is None:
            return None
        return confirm_record(
            scenario, outcome.schedule, strategy=StrategySpec("fuzz", 0, {"target": target}),
            executor=executor, bugs=bugs, fixes=fixes, max_steps=DEFAULT_MAX_STEPS,
            signature=outcome.finding.signature, what=f"{source} ({target})",
            origin={"fuzz_target": target, "artifact": source, "input_hex": data.hex()})


def record_from_artifact(path: str, target: str | None, bugs: list[str],
                         fixes: Sequence[str] = ()) -> FindingRecord:
    """``migfuzz repro`` of a raw libFuzzer artifact: with ``target`` given, or guessed from a
    ``fuzz-TARGET`` directory in the path, or the first target whose decoding reproduces."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if target is None:
        guessed = [t for t in TARGETS if f"fuzz-{t}" in path or f"{t}" in Path(path).parts]
        # the newest target last, so that an older artifact decodes as it did before it
        candidates = guessed or sorted(TARGETS, key=lambda t: t == "fuzz_preempt")
    else:
        candidates = [check_target(target)]
    for t in candidates:
        rec = artifact_record(data, t, bugs, path, fixes=fixes)
        if rec is not None:
            return rec
    raise UsageError(
        f"{path}: not a finding file, and as a raw input of "
        f"{' / '.join(candidates)} (bugs: {', '.join(bugs) or 'none'}; fixes: "
        f"{', '.join(fixes) or 'none'}) it produces no finding; "
        "give --target and the --bug / --fix the fuzzer ran with")


SCENARIO_TARGETS = ("fuzz_scenario", "fuzz_sequential")
"""The targets whose input is a scenario (the shared decoder): the ones a scenario file can
seed. fuzz_schedule fuzzes the schedules of the canonical scenarios only."""


def scenario_seed(path: str, target: str) -> bytes:
    """``migfuzz fuzz --scenario PATH``: the scenario file as an input of ``target``.

    Raises:
        ScenarioError: the file is not a valid scenario (naming the field).
        UsageError: ``target`` takes no scenario, or the decoder cannot express this one
            (naming the first field it cannot express and why).
    """
    if target not in SCENARIO_TARGETS:
        raise UsageError(f"--scenario seeds {' or '.join(SCENARIO_TARGETS)}, whose input is a "
                         f"scenario; {target} fuzzes the schedules of the canonical scenarios")
    sc = load_scenario_file(path)
    try:
        return encode_scenario(sc)
    except NotExpressible as exc:
        raise UsageError(f"{path}: the fuzz decoder cannot express this scenario: {exc} "
                         "(docs/scenarios.md: scenarios the fuzzers can start from)") from None


def _fork_wrapper(base: Path, target: str) -> Path:
    """An executable that runs ``target`` in this interpreter: what libFuzzer's -fork mode
    executes for each worker (see fuzzers/_harness.fuzz_main)."""
    wrapper = base / f"run-{target}.sh"
    wrapper.write_text(
        f'#!/bin/sh\ncd "{ROOT}"\nexec "{sys.executable}" -m fuzzers.{target} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


_STAT = re.compile(r"stat::(\w+):\s+(\d+)")
# "#4317 NEW cov: 1030 ft: 3087 ... exec/s: 253" and, with -fork, "#720: cov: 4883 ft: 4883
# corp: 178 exec/s 360 ..."
_STATUS = re.compile(r"#(\d+):?\s+(?:\w+\s+)?cov: (\d+) ft: (\d+).*?exec/s:? (\d+)")


def run_fuzz(target: str, seconds: float, jobs: int, bugs: list[str], corpus: Path,
             out: Path, *, feedback: bool = True, seed: int = 0,
             progress: bool = True, fixes: Sequence[str] = (),
             runs: int | None = None, seeds: Sequence[bytes] = ()) -> FuzzSummary:
    """Fuzz ``target`` for ``seconds``, or, with ``runs``, for exactly that many executions
    (libFuzzer's ``-runs``, no time limit: what it does depends on no clock). ``seeds`` (a
    user's scenario, encoded: :func:`scenario_seed`) go into the work corpus first."""
    check_target(target)
    base = out / f"fuzz-{target}"
    work = base / "corpus"
    artifacts = base / "artifacts"
    for d in (work, artifacts):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot create {d}: {exc.strerror or exc}") from None
    for data in seeds:
        write_atomic(work / f"scenario-{hashlib.sha256(data).hexdigest()[:12]}", data)
    before = set(artifacts.iterdir())
    cmd = [sys.executable, "-m", f"fuzzers.{target}", str(work)]
    if corpus.is_dir():
        cmd.append(str(corpus))
    cmd += [f"-runs={runs}" if runs is not None else f"-max_total_time={max(1, int(seconds))}",
            f"-artifact_prefix={artifacts}/", "-print_final_stats=1", f"-seed={seed + 1}"]
    cmd += [f"-{name}={value}" for name, value in libfuzzer_options(target).items()]
    env = dict(os.environ, MIGFUZZ_BUGS=",".join(bugs), MIGFUZZ_FIXES=",".join(fixes))
    if jobs > 1:
        cmd += [f"-fork={jobs}", "-ignore_crashes=1"]
        env["MIGFUZZ_ARGV0"] = str(_fork_wrapper(base, target))
    if not feedback:
        cmd.append("--no-interleaving-feedback")
    summary = FuzzSummary(target, seconds)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    _follow(proc, summary, progress)
    if progress:
        print(file=sys.stderr)
    summary.seconds = time.monotonic() - t0
    summary.artifacts = sorted(set(artifacts.iterdir()) - before)

    store = FindingStore(out)
    for art in summary.artifacts:
        rec = artifact_record(art.read_bytes(), target, bugs, str(art), fixes=fixes)
        if rec is None:
            continue  # a timeout or OOM artifact of libFuzzer's own, not a model finding
        store.save_merged(rec, rec.hits)
        summary.findings[rec.signature] = store.path_for(rec)

    if corpus.is_dir() or corpus == ROOT / "corpus" / target:
        summary.merged = merge_corpus(work, corpus)
    return summary


def _follow(proc: subprocess.Popen[str], summary: FuzzSummary, progress: bool) -> None:
    """Read libFuzzer's stderr into ``summary`` until it exits (a Ctrl-C stops it), printing
    a progress line at most twice a second."""
    assert proc.stderr is not None
    last_print = 0.0
    try:
        for line in proc.stderr:
            m = _STATUS.search(line)
            if m:
                summary.execs, summary.coverage, summary.features = (
                    int(m.group(1)), int(m.group(2)), int(m.group(3)))
                summary.exec_per_sec = float(m.group(4))
                if progress and time.monotonic() - last_print > 0.5:
                    last_print = time.monotonic()
                    print(f"\r{summary.target}: {summary.execs:,} execs, "
                          f"{summary.exec_per_sec:.0f} exec/s, cov {summary.coverage}, "
                          f"ft {summary.features}   ",
                          end="", file=sys.stderr, flush=True)
            s = _STAT.search(line)
            if s and s.group(1) == "average_exec_per_sec":
                summary.exec_per_sec = float(s.group(2))
            elif s and s.group(1) == "number_of_executed_units":
                summary.execs = int(s.group(2))
        summary.returncode = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        summary.returncode = proc.wait()


def merge_corpus(work: Path, corpus: Path) -> int:
    """Copy every work-corpus input that ``corpus`` lacks into it; the count copied.

    libFuzzer keeps an input in the work corpus only when it added coverage, and names it by
    the SHA-1 of its bytes, so a name the corpus has is an input it has. libFuzzer's own
    ``-merge=1`` is not used: it runs the target in a child that it re-executes (argv[0]: a
    ``.py`` file, not executable) and restarts after every input that crashes, and on V2 as
    posted, or with a bug injected, many inputs do. Each file is written atomically."""
    corpus.mkdir(parents=True, exist_ok=True)
    have = {p.name for p in corpus.iterdir()}
    copied = 0
    for f in sorted(work.iterdir()):
        if f.is_file() and f.name not in have:
            write_atomic(corpus / f.name, f.read_bytes())
            copied += 1
    return copied


def format_fuzz_summary(s: FuzzSummary) -> str:
    lines = [f"{s.target}: {s.execs:,} executions in {s.seconds:.0f} s "
             f"({s.exec_per_sec:.0f} exec/s), coverage {s.coverage}, features {s.features}",
             f"artifacts: {len(s.artifacts)}, findings: {len(s.findings)}, "
             f"new corpus inputs kept: {s.merged}"]
    for sig, path in sorted(s.findings.items()):
        lines.append(f"  {sig}")
        lines.append(f"    migfuzz repro {path}")
    return "\n".join(lines)
