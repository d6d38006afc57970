"""``migfuzz nightly``: a time-boxed night of stress and fuzzing, with history and a report.

    migfuzz nightly [--hours H] [--minutes M | --runs N] [--jobs N] [--bug NAME]
                    [--fix NAME] [--fixes all|none] [--out DIR] [--db PATH] [--report DIR]
                    [--json]

The budget (default 8 hours; ``--hours`` and ``--minutes`` add up) is spread over ``--jobs``
processes (default: the machine's cores) as *lanes*, each a queue of runs:

    jobs = 1      one lane: the stress portfolio for half the budget, then each of the F fuzz
                  targets (fuzz_preempt, fuzz_scenario, fuzz_schedule, fuzz_sequential: F = 4)
                  for 1/(2F) of it
    jobs 2..2F-1  a stress campaign with jobs-1 workers for the whole budget, and one lane
                  running the fuzz targets 1/F of the budget each
    jobs >= 2F    a stress campaign with jobs-F workers, and one lane per fuzz target

so a 2-core machine runs two things at a time, and the stress portfolio (the engine that
finds races on the trio executor) keeps at least half the machine. A lane whose queue ends
early (a fuzz target that stops at a crash: libFuzzer without ``-fork`` stops at the first
one, and is restarted as long as restarts find new crashing inputs) fills the rest of the
budget with another stress campaign, so the machine stays busy until the deadline.

With ``--runs N`` instead of a budget (not with ``--hours``/``--minutes``: usage error), no
clock decides what runs: the same lanes run their queues once, each stress run exactly N
schedules from its seed and each fuzz run N libFuzzer executions (``-runs``; one session:
libFuzzer stops at its first crash), nothing fills the lanes and no deadline stops a run. A
night's work then depends only on its options and seeds: tests, and bisecting a drop of a
migration rate (the rates come from the stress runs, whose N schedules are the same each
night of the same seed).

Every run is a child process (``python -m migfuzz.nightly RUN_DIR/run.json``) in the nightly's
process group, with its own output directory ``OUT/runs/nNNNN-SS-KIND-TARGET/``: a stress run
is a :class:`migfuzz.campaign.Campaign` writing finding files there as it finds them (and
committing each to the history database as soon as it is saved); a fuzz run calls
:func:`migfuzz.fuzz.run_fuzz` on a persistent per-target corpus ``OUT/corpus/TARGET`` (seeded
from ``corpus/TARGET``, merged back after each run), and libFuzzer writes its crash artifacts
under the run directory the moment it crashes. The parent polls every run directory twice a
second and records in the history database (:mod:`migfuzz.history`) every finding file and
every artifact it has not seen, each replayed first as ``migfuzz repro`` would (an artifact is
decoded and replayed with the run's bugs and saved as a finding file): a ``*.json`` that does
not load or does not reproduce is recorded as such (``invalid``), listed in the summary, and
never counted as a finding.

Nothing found is lost when a night is killed (``kill -9`` of the process group, a reboot): the
files were written atomically when found, the database rows are committed in short
transactions, and the next ``migfuzz nightly`` starts by marking the dead night and its runs
*killed* and rescanning their directories for anything not yet recorded; its report lists
those findings as new ("recovered"), since no report showed them.

Migration rates: each stress run's campaign counts, per strategy and per scenario, the pages
its ``migrate`` operations found on the source node and the pages they moved
(:data:`migfuzz.campaign.Migrations`); the run writes them into its status and result files
and the parent records them in the ``migrations`` table. Each of tonight's series is compared
with the latest earlier night of the same bugs and fixes that has enough of it
(:func:`migfuzz.history.compare_rates`): a *drop* is a fall of at least
``RATE_MIN_DROP`` (5 points) with a pooled two-proportion z of at most ``-RATE_Z`` (-6), both
nights having at least ``RATE_MIN_ATTEMPTS`` (100) pages. A drop is flagged in the summary,
in ``--json`` (``rate_drops``) and in the report, but does not change the exit status: it is
a statistical signal with no reproducer, like a performance regression in kernel CI, and a
CI job failing on noise once in a while would train people to ignore it; a new finding is a
reproducible failure and keeps exit 1.

A finding is *new* when no earlier report showed its deduplication key (signature + injected
bugs, as in ``corpus/README.md``) and no entry of ``corpus/known`` or ``corpus/regressions``
explains it (same key; or same signature with the corpus entry's bugs all injected), and no
known flaw of V2 as posted explains it (``migfuzz.flaws``: with that flaw's upstream fix the
finding is gone). The stress runs label their findings themselves; what is still unlabelled
when the runs end (a fuzz crash, a killed run's file) is labelled by the parent before the
report, which lists known flaws with their label, apart from new findings.

Exit status: 0 no new findings (known flaws are not new; a drop of a migration rate is
flagged, not failed), 1 new findings, 2 usage error (another nightly holds the database, a bad
option), 3 a run hit a harness error, a run directory held a file that does not load or does
not reproduce, or the report could not be written.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, TextIO, cast

from . import __version__
from ._args import add_fix_arguments, fixes_of, jobs_count, non_negative_float, runs_count
from ._errors import FindingFileError, UsageError
from .bugs import check_bugs
from .campaign import Campaign, CampaignConfig, Message, default_jobs, migration_rates
from .findings import FindingRecord, FindingStore, load, model_commit, write_atomic
from .flaws import explain
from .fuzz import TARGETS as FUZZ_TARGETS
from .fuzz import artifact_record, run_fuzz
from .history import (
    RATE_MIN_ATTEMPTS,
    RATE_MIN_DROP,
    RATE_Z,
    History,
    RateComparison,
    RunRow,
    compare_rates,
)
from .replay import check
from .report import fixes_text, format_summary, migration_lines
from .report_html import write_report
from .strategies import BASE_STRATEGIES

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_HOURS = 8.0
MIN_RUN_S = 2.0  # a run shorter than this is not started
FILL_MIN_S = 15.0  # a lane idle with at least this much budget left runs another campaign
GRACE_S = 20.0  # a run still alive this long after the deadline gets SIGINT ...
KILL_AFTER_S = 10.0  # ... and this long after that, SIGKILL
POLL_S = 0.2
HARVEST_EVERY = 0.5
STATUS_EVERY = 2.0
FUZZ_OVERHEAD_S = 3.0  # of a run_fuzz call: libFuzzer start-up and the corpus merge
RESERVED = frozenset({"run.json", "status.json", "result.json"})


# -- the plan ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    kind: str  # "stress" | "fuzz"
    target: str  # "portfolio" for stress, else the fuzz target
    seconds: float
    jobs: int = 1
    note: str = ""
    runs: int | None = None  # --runs: exactly this many schedules (stress) or libFuzzer
    # executions (fuzz) instead of ``seconds``


@dataclass
class Lane:
    width: int  # processes it uses
    queue: deque[Item]
    busy: bool = False
    done: bool = False
    failed: bool = False


def plan(jobs: int, seconds: float, runs: int | None = None) -> list[Lane]:
    """Lanes of runs for ``jobs`` processes over ``seconds``, or with ``runs`` the same lanes
    with every run bounded by that many schedules or executions (see the module docstring)."""
    lanes = _lanes(jobs, seconds)
    if runs is not None:
        for lane in lanes:
            lane.queue = deque(replace(i, runs=runs) for i in lane.queue)
    return lanes


def _lanes(jobs: int, seconds: float) -> list[Lane]:
    fuzz = list(FUZZ_TARGETS)
    if jobs <= 1:
        items = [Item("stress", "portfolio", seconds / 2)]
        items += [Item("fuzz", t, seconds / (2 * len(fuzz))) for t in fuzz]
        return [Lane(1, deque(items))]
    if jobs < 2 * len(fuzz):  # a lane per target would leave the stress portfolio under half
        return [Lane(jobs - 1, deque([Item("stress", "portfolio", seconds, jobs - 1)])),
                Lane(1, deque(Item("fuzz", t, seconds / len(fuzz)) for t in fuzz))]
    stress = jobs - len(fuzz)
    return [Lane(stress, deque([Item("stress", "portfolio", seconds, stress)]))] + [
        Lane(1, deque([Item("fuzz", t, seconds)])) for t in fuzz]


# -- known findings in the corpus -------------------------------------------------------------

class CorpusIndex:
    """The committed findings: ``corpus/known`` (a reproducer per catalog bug) and
    ``corpus/regressions`` (minimized findings kept as regression tests)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or ROOT / "corpus"
        self.entries: list[tuple[str, str, frozenset[str], str]] = []
        for sub in ("known", "regressions"):
            d = self.root / sub
            if not d.is_dir():
                continue
            for f in sorted(d.rglob("*.json")):
                try:
                    rec = load(f)
                except FindingFileError:
                    continue
                rel = f.relative_to(self.root.parent) if f.is_relative_to(
                    self.root.parent) else f
                self.entries.append((rec.key, rec.signature, frozenset(rec.bugs), str(rel)))

    def match(self, rec: FindingRecord) -> str | None:
        """The corpus file that explains ``rec``: the same key, else the same signature found
        with a subset of ``rec``'s bugs (the known reproducer of a bug injected tonight)."""
        for key, _, _, path in self.entries:
            if key == rec.key:
                return path
        bugs = set(rec.bugs)
        for _, sig, ebugs, path in self.entries:
            if sig == rec.signature and ebugs <= bugs:
                return path
        return None


# -- recording what a run directory holds -----------------------------------------------------

@dataclass
class Harvest:
    """What one rescan of a run directory recorded."""

    files: list[str] = field(default_factory=list)  # finding files and artifacts read now
    new_keys: list[str] = field(default_factory=list)  # keys the database did not have
    rejected: list[str] = field(default_factory=list)  # "FILE: why": not loaded / reproduced

    def add(self, other: Harvest) -> None:
        self.files += other.files
        self.new_keys += other.new_keys
        self.rejected += other.rejected


_REPLAYED: dict[str, str | None] = {}
"""Verdicts of :func:`replay_problem` by the record's content without its counters: a
campaign rewrites its file at every flush of a new hit count, which needs no new replay."""


def replay_problem(rec: FindingRecord, source: str) -> str | None:
    """Why ``rec`` is not a finding, judged as ``migfuzz repro`` would (two exact replays with
    its bugs and fixes; a drifted schedule re-searched): None when it reproduces.

    A finding file in a run directory is only a claim: a stray or edited file, or one whose
    finding the model no longer shows, must not reach the history as a finding. Raises
    :class:`FindingFileError` for a file that is corrupt in a way only a replay shows (a
    padded schedule)."""
    content = replace(rec, hits=1, first_seen="", last_seen="", known_flaw=None).dumps()
    if content not in _REPLAYED:
        v = check(rec, None, source)
        _REPLAYED[content] = None if v.reproduced else (
            f"does not reproduce ({v.status}): " + " ".join(" ".join(v.notes).split())[:300])
    return _REPLAYED[content]


def harvest(hist: History, run: RunRow, corpus: CorpusIndex,
            warn: Callable[[str], None] | None = None) -> Harvest:
    """Record every finding file and crash artifact of ``run``'s directory not yet in the
    database, each replayed first (:func:`replay_problem`; an artifact is replayed to be
    decoded at all): a file that does not load or does not reproduce is recorded in ``files``
    as ``invalid: ...`` and in :attr:`Harvest.rejected`, never as a finding. Idempotent and
    crash-safe: a file's row in ``files`` is written after its finding, so a kill in between
    only means the next harvest records it again (which changes nothing).

    (A stress run's campaign also records each finding it saves, before this harvest: those
    records come from the campaign's own traced replay of the run that found them.)"""
    d = Path(run.out_dir)
    got = Harvest()
    if not d.is_dir():
        return got
    for p in sorted(d.glob("*.json")):
        if p.name in RESERVED:
            continue
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        if hist.file_seen(p, st.st_mtime_ns, st.st_size):
            continue
        try:
            rec = load(p)
            problem = replay_problem(rec, str(p))
        except FindingFileError as exc:
            problem = exc.problem
        except Exception as exc:  # a harness error replaying it: the run is in error
            hist.note_file(p, run.id, st.st_mtime_ns, st.st_size, None,
                           f"error: cannot replay: {type(exc).__name__}: {exc}")
            got.rejected.append(f"{p}: cannot replay: {type(exc).__name__}: {exc}")
            if warn:
                warn(f"{p}: cannot replay: {type(exc).__name__}: {exc}")
            continue
        if problem is not None:
            hist.note_file(p, run.id, st.st_mtime_ns, st.st_size, None, f"invalid: {problem}")
            got.rejected.append(f"{p}: {problem}")
            if warn:
                warn(f"{p}: not a finding: {problem}")
            continue
        if hist.record_finding(run.id, p, rec, corpus_match=corpus.match(rec)):
            got.new_keys.append(rec.key)
        hist.note_file(p, run.id, st.st_mtime_ns, st.st_size, rec.key, "finding")
        got.files.append(str(p))
    if run.kind == "fuzz":
        got.add(_harvest_artifacts(hist, run, corpus, warn))
    return got


def _harvest_artifacts(hist: History, run: RunRow, corpus: CorpusIndex,
                       warn: Callable[[str], None] | None) -> Harvest:
    d = Path(run.out_dir)
    arts = d / f"fuzz-{run.target}" / "artifacts"
    got = Harvest()
    if not arts.is_dir():
        return got
    store = FindingStore(d)
    for a in sorted(arts.iterdir()):
        if a.name.startswith(".") or not a.is_file():
            continue
        st = a.stat()
        if hist.file_seen(a, st.st_mtime_ns, st.st_size):
            continue
        try:
            rec = artifact_record(a.read_bytes(), run.target, run.bugs, str(a),
                                  fixes=run_fixes(run))
        except Exception as exc:
            hist.note_file(a, run.id, st.st_mtime_ns, st.st_size, None,
                           f"error: {type(exc).__name__}: {exc}")
            got.rejected.append(f"{a}: cannot replay: {type(exc).__name__}: {exc}")
            if warn:
                warn(f"{a}: cannot replay: {type(exc).__name__}: {exc}")
            continue
        got.files.append(str(a))
        if rec is None:  # a libFuzzer timeout / OOM / leak report, not a model finding
            hist.note_file(a, run.id, st.st_mtime_ns, st.st_size, None, "no-finding")
            continue
        path = store.path_for(rec)
        if not path.exists():
            with contextlib.suppress(Exception):  # undecided stays new (label_known_flaws)
                rec.known_flaw = explain(rec)
            store.save(rec)
        if hist.record_finding(run.id, path, rec, hits=1, corpus_match=corpus.match(rec)):
            got.new_keys.append(rec.key)
        with contextlib.suppress(OSError):
            js = path.stat()  # (what it records is recorded: no need to read it back)
            hist.note_file(path, run.id, js.st_mtime_ns, js.st_size, rec.key, "finding")
        hist.note_file(a, run.id, st.st_mtime_ns, st.st_size, rec.key, "artifact")
        hist.count_artifact_hits(run.id, rec.key)
    return got


def run_fixes(run: RunRow) -> list[str]:
    """The upstream fixes ``run`` ran with (its ``run.json``; none for a run from before)."""
    fixes = _read_json(Path(run.out_dir) / "run.json").get("fixes", [])
    return [str(f) for f in fixes] if isinstance(fixes, list) else []


def label_known_flaws(hist: History, night: int,
                      warn: Callable[[str], None] | None = None) -> list[str]:
    """Label the findings of ``night`` that a known flaw of V2 explains and that nothing
    labelled yet (a fuzz crash, the file of a run killed before it labelled); returns the
    labels of every known flaw seen that night."""
    labels: list[str] = []
    keys = [str(r["key"]) for r in hist.night_keys(night)]
    for row in hist.findings(keys):
        if row["known_flaw"] is None and row["corpus_match"] is None:
            try:
                flaw = explain(load(row["file"]))
            except Exception as exc:  # unlabelled is the safe side: it stays new
                if warn:
                    warn(f"{row['file']}: cannot decide whether a known flaw explains it: "
                         f"{type(exc).__name__}: {exc}")
                continue
            if flaw is None:
                continue
            hist.set_known_flaw(str(row["key"]), flaw.label)
            labels.append(f"{row['signature']}: {flaw.label}")
        elif row["known_flaw"] is not None:
            labels.append(f"{row['signature']}: {row['known_flaw']}")
    return labels


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _numbers(run_dir: Path) -> dict[str, Any]:
    """The latest numbers a run reported: its result, else its last status."""
    res = _read_json(run_dir / "result.json")
    return res or _read_json(run_dir / "status.json")


def record_migrations(hist: History, run: int, nums: dict[str, Any]) -> None:
    """Record the migration counts a stress run reported (``migrations`` of its result or
    status file), if it reported well-formed ones."""
    got = nums.get("migrations")
    if not isinstance(got, dict):
        return
    counts: dict[str, list[int]] = {}
    for key, val in got.items():
        if not (isinstance(key, str) and ":" in key and isinstance(val, list) and len(val) == 2
                and all(isinstance(v, int) and v >= 0 for v in val) and val[1] <= val[0]):
            return  # not what a campaign writes: record nothing rather than half
        counts[key] = val
    hist.record_migrations(run, counts)


def _run_fields(nums: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in ("execs", "restarts", "coverage", "features"):
        if isinstance(nums.get(k), int):
            out[k] = nums[k]
    for k in ("seconds", "exec_per_s"):
        if isinstance(nums.get(k), (int, float)):
            out[k] = round(float(nums[k]), 3)
    return out


def recover(hist: History, night: int, corpus: CorpusIndex,
            log: Callable[[str], None]) -> Harvest:
    """Start of a night: nights and runs left 'running' died with their process; record what
    their directories hold, then rescan every run directory for files not yet recorded."""
    total = Harvest()
    for run in hist.runs(status="running"):
        if run.night == night:
            continue
        got = harvest(hist, run, corpus, log)
        total.add(got)
        d = Path(run.out_dir)
        ended = None
        with contextlib.suppress(OSError):
            ended = max((p.stat().st_mtime for p in d.rglob("*") if p.is_file()), default=None)
        nums = _numbers(d)
        fields = _run_fields(nums)
        record_migrations(hist, run.id, nums)
        hist.update_run(run.id, status="killed", note="the nightly died before this run "
                        "ended; what its directory holds was recovered at the next start",
                        ended=_iso(ended) if ended else run.started, **fields)
        log(f"recovered run {run.id} ({run.kind} {run.target}) of night {run.night}: "
            f"{len(got.files)} file(s) not recorded before ({len(got.new_keys)} new key(s))")
    for run in hist.runs():
        if run.night != night:
            total.add(harvest(hist, run, corpus, log))
    dead = hist.mark_stale_nights(night)
    if dead:
        log(f"night(s) {', '.join(map(str, dead))} had been killed; marked as such")
    return total


def _iso(t: float) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(t, _dt.UTC).isoformat(timespec="seconds")


# -- the parent ------------------------------------------------------------------------------

@dataclass
class Active:
    run: int
    lane: int
    item: Item
    proc: subprocess.Popen[bytes]
    run_dir: Path
    log: IO[bytes]
    started: float
    signalled: float | None = None
    overran: bool = False


@dataclass
class NightSummary:
    night: int
    db: Path
    report: Path | None
    runs: list[RunRow] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    known: int = 0
    flaws: list[str] = field(default_factory=list)  # "signature: label" per known flaw
    recovered: Harvest = field(default_factory=Harvest)
    rejected: list[str] = field(default_factory=list)  # "FILE: why" (Harvest.rejected)
    interrupted: bool = False
    report_error: str | None = None
    migrations: dict[str, tuple[int, int]] = field(default_factory=dict)  # tonight, summed
    rates: list[RateComparison] = field(default_factory=list)  # against the previous night

    @property
    def drops(self) -> list[RateComparison]:
        return [c for c in self.rates if c.dropped]

    @property
    def exit_code(self) -> int:
        """3 harness error or a file that is not a finding (:attr:`rejected`), 1 new
        findings, else 0. A drop of a migration rate is flagged but is not a failure (module
        docstring)."""
        if self.report_error or self.rejected or any(r.status == "error" for r in self.runs):
            return 3
        return 1 if self.new else 0

    def to_json(self) -> dict[str, Any]:
        by: dict[str, int] = {}
        for r in self.runs:
            by[r.status] = by.get(r.status, 0) + 1
        return {
            "tool_version": __version__, "night": self.night, "db": str(self.db),
            "report": None if self.report is None else str(self.report),
            "report_error": self.report_error, "interrupted": self.interrupted,
            "runs": [{"id": r.id, "kind": r.kind, "target": r.target, "seed": r.seed,
                      "status": r.status, "execs": r.execs, "seconds": r.seconds,
                      "findings": r.findings, "hits": r.hits, "note": r.note}
                     for r in self.runs],
            "runs_by_status": dict(sorted(by.items())),
            "new": self.new, "known": self.known, "known_flaws": self.flaws,
            "recovered_files": len(self.recovered.files),
            "rejected": self.rejected,
            "migration": migration_rates({k: list(v) for k, v in self.migrations.items()}),
            "rate_comparisons": [c.to_json() for c in self.rates],
            "rate_drops": [c.to_json() for c in self.drops],
            "exit_code": self.exit_code,
        }


@contextlib.contextmanager
def _exclusive(db: Path) -> Iterator[None]:
    """One nightly per database at a time (the lock dies with its process, even on kill -9)."""
    lock = db.with_name(db.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{db}: another migfuzz nightly is running on this database") \
                from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), deepest first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        rest = text[text.rfind(")") + 2:].split()
        if len(rest) > 1:
            children.setdefault(int(rest[1]), []).append(int(stat.parent.name))
    out: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out[::-1]


class Nightly:
    def __init__(self, *, seconds: float, jobs: int, bugs: Sequence[str], out: Path,
                 db: Path, report: Path, log: TextIO | None = None,
                 fixes: Sequence[str] = (), runs: int | None = None) -> None:
        self.seconds = 0.0 if runs is not None else seconds
        self.runs = runs  # per run, instead of a time budget (see the module docstring)
        self.jobs = jobs
        self.runs = runs
        self.bugs = sorted(bugs)
        self.fixes = sorted(fixes)
        self.out = out.resolve()
        self.db_path = db.resolve()
        self.report_dir = report.resolve()
        self.stream = log if log is not None else sys.stderr
        self.active: dict[int, Active] = {}
        self.signals = 0
        self.sigterm = False
        self._first_signal: float | None = None
        self.seq = 0
        self.rejected: list[str] = []  # files of tonight's harvests that are not findings

    def log(self, msg: str) -> None:
        print(f"nightly: {msg}", file=self.stream, flush=True)

    # -- driving ---------------------------------------------------------------------------

    def run(self) -> NightSummary:
        self.out.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.db_path), History(self.db_path) as hist, self._signals():
            self.hist = hist
            self.corpus = CorpusIndex()
            night = hist.start_night(budget_s=self.seconds, jobs=self.jobs, bugs=self.bugs,
                                     out_dir=str(self.out), model_commit=model_commit(),
                                     tool_version=__version__, fixes=self.fixes)
            self.night = night
            recovered = recover(hist, night, self.corpus, self.log)
            self._seed_corpora()
            lanes = plan(self.jobs, self.seconds, self.runs)
            budget = (f"{self.runs:,} runs per run" if self.runs is not None else
                      f"{self.seconds / 60:g} min")
            self.log(f"night {night}: {budget} on {self.jobs} job(s), bugs "
                     f"{', '.join(self.bugs) or 'none'}, fixes {fixes_text(self.fixes)}; "
                     "lanes: " + "; ".join(
                         " -> ".join(f"{i.kind} {i.target} "
                                     + (f"{i.runs:,} runs" if i.runs is not None
                                        else f"{i.seconds:.0f}s")
                                     + (f" x{i.jobs}" if i.jobs > 1 else "")
                                     for i in lane.queue) for lane in lanes)
                     + f"; out {self.out}")
            self.deadline = (time.monotonic() + self.seconds if self.runs is None else
                             float("inf"))  # a night of --runs ends when its queues do
            try:
                self._loop(lanes)
            finally:
                self._stop_all(force=True)
                for run in hist.runs(night):
                    self._harvest(run)
            summary = NightSummary(night, self.db_path, None, interrupted=self.signals > 0,
                                   recovered=recovered,
                                   rejected=recovered.rejected + self.rejected)
            summary.flaws = label_known_flaws(hist, night, self.log)
            summary.migrations = hist.night_migrations(night)
            summary.rates = compare_rates(hist.migration_trend(), night)
            hist.end_night(night, "interrupted" if self.signals else "done")
            try:
                index, new, shown = write_report(hist, night, self.report_dir)
                hist.mark_reported(shown, night)
                summary.report, summary.new, summary.known = index, new, len(shown) - len(new)
            except Exception as exc:
                summary.report_error = f"{type(exc).__name__}: {exc}"
                self.log(f"cannot write the report: {summary.report_error}")
            if summary.report:
                hist.set_report(night, str(summary.report))
            with contextlib.suppress(sqlite3.Error):
                hist.checkpoint()
            summary.runs = hist.runs(night)
            return summary

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT / SIGTERM: stop starting runs and let the running ones finish theirs."""

        def on_signal(signum: int, frame: object) -> None:
            self.signals += 1
            self.sigterm = self.sigterm or signum == signal.SIGTERM

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _seed_corpora(self) -> None:
        for t in FUZZ_TARGETS:
            dst = self.out / "corpus" / t
            if dst.is_dir():
                continue
            tmp = dst.with_name(f".{t}.tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            src = ROOT / "corpus" / t
            if src.is_dir():
                shutil.copytree(src, tmp)
            else:
                tmp.mkdir(parents=True)
            os.replace(tmp, dst)

    def _loop(self, lanes: list[Lane]) -> None:
        last_harvest = last_status = 0.0
        while True:
            now = time.monotonic()
            if not self.signals:
                for i, lane in enumerate(lanes):
                    self._maybe_start(i, lane)
            for a in list(self.active.values()):
                rc = a.proc.poll()
                if rc is not None:
                    self._finish(a, rc, lanes[a.lane])
            if now - last_harvest >= HARVEST_EVERY:
                last_harvest = now
                for a in self.active.values():
                    run = self.hist.run(a.run)
                    if run is not None:
                        self._harvest(run)
            if now - last_status >= STATUS_EVERY:
                last_status = now
                for a in self.active.values():
                    fields = _run_fields(_read_json(a.run_dir / "status.json"))
                    if fields:
                        self.hist.update_run(a.run, **fields)
            self._enforce(now)
            if not self.active and (self.signals or all(lane.done for lane in lanes)):
                return
            time.sleep(POLL_S)

    def _harvest(self, run: RunRow) -> None:
        self.rejected += harvest(self.hist, run, self.corpus, self.log).rejected

    def _maybe_start(self, idx: int, lane: Lane, now: float | None = None) -> None:
        if lane.busy or lane.done:
            return
        if self.runs is not None:  # every queued run, in order; nothing fills the lane
            if lane.queue:
                self._start(idx, lane, lane.queue.popleft())
            else:
                lane.done = True
            return
        remaining = self.deadline - (time.monotonic() if now is None else now)
        while lane.queue:
            # the lane's remaining time, shared in the planned proportions (a run that took
            # longer than planned, start-up included, shortens the ones after it)
            total = sum(i.seconds for i in lane.queue)
            item = lane.queue.popleft()
            secs = remaining * item.seconds / total if total > 0 else remaining
            if secs >= MIN_RUN_S:
                self._start(idx, lane, replace(item, seconds=secs))
                return
        if remaining >= FILL_MIN_S and not lane.failed:
            self._start(idx, lane, Item("stress", "portfolio", remaining, lane.width,
                                        "fills the lane's unused budget"))
            return
        lane.done = True

    def _start(self, idx: int, lane: Lane, item: Item) -> None:
        self.seq += 1
        name = f"n{self.night:04d}-{self.seq:02d}-{item.kind}"
        name += f"-{item.target}" if item.kind == "fuzz" else ""
        run_dir = self.out / "runs" / name
        k = 1
        while run_dir.exists():  # (--out reused with another --db: never mix two runs' files)
            k += 1
            run_dir = self.out / "runs" / f"{name}.{k}"
        seed = self.night * 1000 + self.seq
        run = self.hist.start_run(night=self.night, kind=item.kind, target=item.target,
                                  seed=seed, bugs=self.bugs, jobs=item.jobs,
                                  budget_s=round(item.seconds, 3), out_dir=str(run_dir))
        if item.note:
            self.hist.update_run(run, note=item.note)
        run_dir.mkdir(parents=True, exist_ok=True)
        spec = {"run": run, "night": self.night, "kind": item.kind, "target": item.target,
                "seconds": item.seconds, "runs": item.runs, "jobs": item.jobs,
                "bugs": self.bugs, "fixes": self.fixes, "seed": seed,
                "db": str(self.db_path), "out_dir": str(run_dir),
                "corpus": str(self.out / "corpus" / item.target), "parent": os.getpid(),
                "started": time.time()}
        write_atomic(run_dir / "run.json", json.dumps(spec, indent=2) + "\n")
        log = open(run_dir / "log.txt", "ab")  # noqa: SIM115 - closed in _finish
        proc = subprocess.Popen([sys.executable, "-m", "migfuzz.nightly",
                                 str(run_dir / "run.json")], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        self.active[run] = Active(run, idx, item, proc, run_dir, log, time.monotonic())
        lane.busy = True
        self.log(f"run {run}: {item.kind} {item.target} for "
                 + (f"{item.runs:,} runs" if item.runs is not None else f"{item.seconds:.0f} s")
                 + (f" with {item.jobs} workers" if item.jobs > 1 else "")
                 + f" -> {run_dir}")

    def _enforce(self, now: float) -> None:
        """Stop runs that overrun the deadline, and all runs once the nightly is told to stop.

        After a Ctrl-C at a terminal every child has the SIGINT already (same process group)
        and finishes its current run; a second SIGINT would make a campaign abandon its
        workers, so the parent forwards one only after a moment (at once for SIGTERM, which
        reaches the parent alone). A run still alive KILL_AFTER_S later is killed."""
        if self.signals and self._first_signal is None:
            self._first_signal = now
        for a in self.active.values():
            late = now > self.deadline + GRACE_S
            if a.signalled is None:
                first = self._first_signal
                stop = late or self.signals >= 2 or self.sigterm or (
                    first is not None and now - first > 3.0)
                if stop:
                    a.overran = late and not self.signals
                    a.signalled = now
                    with contextlib.suppress(ProcessLookupError):
                        a.proc.send_signal(signal.SIGINT)
            elif now - a.signalled > KILL_AFTER_S:
                self._kill(a)

    def _kill(self, a: Active) -> None:
        for pid in [*_descendants(a.proc.pid), a.proc.pid]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def _stop_all(self, *, force: bool) -> None:
        """On the way out (normally nothing is left): SIGINT, wait, then SIGKILL."""
        if not self.active:
            return
        for a in self.active.values():
            with contextlib.suppress(ProcessLookupError):
                a.proc.send_signal(signal.SIGINT)
        t_end = time.monotonic() + KILL_AFTER_S
        for a in list(self.active.values()):
            try:
                rc = a.proc.wait(timeout=max(0.1, t_end - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._kill(a)
                rc = a.proc.wait()
            self._finish(a, rc, None)

    def _finish(self, a: Active, rc: int, lane: Lane | None) -> None:
        self.active.pop(a.run, None)
        a.log.close()
        run = self.hist.run(a.run)
        if run is None:  # pragma: no cover
            return
        self._harvest(run)
        res = _read_json(a.run_dir / "result.json")
        nums = res or _read_json(a.run_dir / "status.json")
        fields = _run_fields(nums)
        record_migrations(self.hist, a.run, nums)
        fields.setdefault("seconds", round(time.monotonic() - a.started, 3))
        run = self.hist.run(a.run) or run
        notes = [run.note] if run.note else []
        if res.get("note"):
            notes.append(str(res["note"]))
        bad_files = self.hist.file_errors(a.run)
        if bad_files:
            notes.append("cannot replay: " + "; ".join(bad_files[:3])
                         + (f" (and {len(bad_files) - 3} more)" if len(bad_files) > 3 else ""))
        crashed = bool(res.get("error")) or rc == 3 or (
            rc != 0 and not res and a.signalled is None)
        if crashed or bad_files:
            status = "error"
            if crashed:
                tail = _tail(a.run_dir / "log.txt")
                notes.append(str(res.get("error") or f"exited with status {rc}: {tail}"))
            if lane is not None:
                lane.failed = True
        elif res.get("interrupted") or a.signalled is not None:
            status = "interrupted"
            if a.overran:
                notes.append("overran the budget: stopped")
            if not res:
                notes.append(f"did not stop when asked: killed (status {rc})")
        else:
            status = "findings" if run.findings else "ok"
        self.hist.update_run(a.run, status=status, ended=_iso(time.time()),
                             note="; ".join(notes) or None, **fields)
        if run.kind == "fuzz":  # the work corpus was merged into OUT/corpus/TARGET
            shutil.rmtree(a.run_dir / f"fuzz-{run.target}" / "corpus", ignore_errors=True)
        if lane is not None:
            lane.busy = False
        done = self.hist.run(a.run) or run
        self.log(f"run {a.run}: {status}, {done.execs:,} execs"
                 + (f" ({done.exec_per_s:,.0f}/s)" if done.exec_per_s else "")
                 + f", {done.findings} finding(s), {done.hits:,} hit(s)")


def _tail(path: Path, n: int = 400) -> str:
    try:
        data = path.read_bytes()[-n:]
    except OSError:
        return ""
    return " ".join(data.decode("utf-8", "replace").split())


# -- the children ----------------------------------------------------------------------------

def _die_with_parent(parent: int) -> None:
    """A child must not outlive the nightly: SIGTERM when the parent dies (Linux)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        raise SystemExit(0)


class _RecordingStore(FindingStore):
    """The stress campaign's store: every save is also committed to the history database."""

    def __init__(self, directory: str, on_save: Callable[[Path, FindingRecord], None]) -> None:
        super().__init__(directory)
        self.on_save = on_save

    def save(self, record: FindingRecord) -> Path:
        path = super().save(record)
        self.on_save(path, record)
        return path


class _NightlyCampaign(Campaign):
    def __init__(self, cfg: CampaignConfig, status: Path, on_save: Callable[
            [Path, FindingRecord], None]) -> None:
        super().__init__(cfg, progress=sys.stderr)
        self.store = _RecordingStore(cfg.out, on_save)
        self.status_path = status
        self.t0 = time.monotonic()
        self.status_t = 0.0

    def handle(self, msg: Message) -> None:
        super().handle(msg)
        t = time.monotonic()
        if t - self.status_t >= STATUS_EVERY:
            self.status_t = t
            runs, _, _ = self.totals()
            el = t - self.t0
            write_atomic(self.status_path, json.dumps(
                {"execs": runs, "seconds": el, "exec_per_s": runs / el if el > 0 else 0.0,
                 "migrations": self.migrations()}))


def _stress_child(spec: dict[str, Any]) -> int:
    run_dir = Path(spec["out_dir"])
    corpus = CorpusIndex()
    hist: History | None = None
    try:
        hist = History(spec["db"])
    except sqlite3.Error as exc:  # the parent's harvest records the files anyway
        print(f"nightly: no database ({exc}); findings are recorded by the parent",
              file=sys.stderr)

    def on_save(path: Path, rec: FindingRecord) -> None:
        if hist is None:
            return
        try:
            hist.record_finding(int(spec["run"]), path, rec, corpus_match=corpus.match(rec))
        except sqlite3.Error as exc:
            print(f"nightly: cannot record {path} now ({exc}); the parent will",
                  file=sys.stderr)

    runs = spec.get("runs")
    cfg = CampaignConfig(seed=int(spec["seed"]), runs=None if runs is None else int(runs),
                         seconds=float(spec["seconds"]) if runs is None else None,
                         strategy="portfolio", executor="trio", jobs=int(spec["jobs"]),
                         bugs=tuple(spec["bugs"]), fixes=tuple(spec.get("fixes", [])),
                         out=str(run_dir),
                         members=BASE_STRATEGIES)
    summary = _NightlyCampaign(cfg, run_dir / "status.json", on_save).run()
    err = summary.error
    write_atomic(run_dir / "result.json", json.dumps({
        "execs": summary.runs, "seconds": summary.seconds, "exec_per_s": summary.rate,
        "decisions": summary.decisions, "findings": len(summary.findings),
        "migrations": summary.migrations,
        "interrupted": summary.interrupted,
        "error": None if err is None else f"harness error in run {err.get('run')}: "
                                          f"{err.get('error')}",
        "done": True}) + "\n")
    print(format_summary(summary), file=sys.stderr)
    if hist is not None:
        hist.close()
    return summary.exit_code


_FUZZ_PROGRESS = re.compile(r"([\d,]+) execs, (\d+) exec/s, cov (\d+), ft (\d+)")


class _ProgressTee(io.TextIOBase):
    """stderr for run_fuzz: passes everything on, and turns its progress into status.json."""

    def __init__(self, real: TextIO, on_progress: Callable[[int, float, int, int], None]) -> None:
        self.real = real
        self.on_progress = on_progress

    def write(self, s: str) -> int:
        self.real.write(s)
        for m in _FUZZ_PROGRESS.finditer(s):
            self.on_progress(int(m.group(1).replace(",", "")), float(m.group(2)),
                             int(m.group(3)), int(m.group(4)))
        return len(s)

    def flush(self) -> None:
        self.real.flush()


def _fuzz_child(spec: dict[str, Any]) -> int:
    target = str(spec["target"])
    run_dir = Path(spec["out_dir"])
    bugs = list(spec["bugs"])
    runs = None if spec.get("runs") is None else int(spec["runs"])
    t0 = time.monotonic()
    deadline = t0 + float(spec["seconds"])
    tot: dict[str, Any] = {"execs": 0, "coverage": 0, "features": 0, "restarts": 0,
                           "artifacts": 0, "fuzz_seconds": 0.0, "busy": 0.0}
    last_status = [0.0]
    stop = [False]

    def numbers(cur_execs: int = 0, eps: float | None = None) -> dict[str, Any]:
        el = time.monotonic() - t0
        execs = int(tot["execs"]) + cur_execs
        # libFuzzer's own exec/s (start-up excluded), over all restarts
        busy = float(tot["busy"]) or float(tot["fuzz_seconds"])
        return {"execs": execs, "seconds": el,
                "exec_per_s": eps if eps is not None else (execs / busy if busy else 0.0),
                # (libFuzzer reports coverage once it fuzzes; a crash on a seed input: none)
                "coverage": tot["coverage"] or None, "features": tot["features"] or None,
                "restarts": tot["restarts"]}

    def on_progress(execs: int, eps: float, cov: int, ft: int) -> None:
        tot["coverage"], tot["features"] = max(tot["coverage"], cov), max(tot["features"], ft)
        t = time.monotonic()
        if t - last_status[0] >= STATUS_EVERY:
            last_status[0] = t
            write_atomic(run_dir / "status.json", json.dumps(numbers(execs, eps)))

    def on_sigint(signum: int, frame: object) -> None:
        stop[0] = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    real = sys.stderr
    sys.stderr = cast(TextIO, _ProgressTee(real, on_progress))
    note = ""
    try:
        while not stop[0]:
            remaining = deadline - time.monotonic()
            # The first session always runs (libFuzzer executes the seed corpus before it
            # looks at the clock): a fuzz run of the night never ends with nothing done
            # because a loaded machine started it late.
            if tot["restarts"] and (runs is not None or remaining < MIN_RUN_S):
                break  # (with --runs: one session, whatever it found)
            s = run_fuzz(target, max(1.0, remaining - FUZZ_OVERHEAD_S), 1, bugs,
                         Path(spec["corpus"]), run_dir, seed=int(spec["seed"]) * 1000
                         + int(tot["restarts"]), progress=True,
                         fixes=list(spec.get("fixes", [])), runs=runs)
            tot["restarts"] += 1
            tot["execs"] += s.execs
            tot["fuzz_seconds"] += s.seconds
            tot["busy"] += s.execs / s.exec_per_sec if s.exec_per_sec > 0 else 0.0
            tot["coverage"] = max(tot["coverage"], s.coverage)
            tot["features"] = max(tot["features"], s.features)
            tot["artifacts"] += len(s.artifacts)
            write_atomic(run_dir / "status.json", json.dumps(numbers()))
            if stop[0] or s.returncode == 0:
                break
            if not s.artifacts:  # it stopped on an input it had saved before
                note = (f"libFuzzer stopped (status {s.returncode}) after {s.seconds:.0f} s "
                        "without a new crashing input: it keeps crashing on one it saved "
                        "already; the lane's time goes to the stress portfolio")
                break
    except KeyboardInterrupt:
        stop[0] = True
    finally:
        sys.stderr = real
    res = numbers()
    res.update(restarts=tot["restarts"], artifacts=tot["artifacts"], interrupted=stop[0],
               note=note or None, done=True)
    write_atomic(run_dir / "result.json", json.dumps(res) + "\n")
    return 1 if tot["artifacts"] else 0


def child_main(argv: Sequence[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    _die_with_parent(int(spec["parent"]))
    # The parent dying (PR_SET_PDEATHSIG) or stopping us: finish like after a Ctrl-C.
    signal.signal(signal.SIGTERM, lambda s, f: os.kill(os.getpid(), signal.SIGINT))
    if spec["kind"] == "stress":
        return _stress_child(spec)
    return _fuzz_child(spec)


# -- the command -----------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hours", type=non_negative_float, default=None, metavar="H",
                   help=f"budget in hours (added to --minutes; default {DEFAULT_HOURS:g} h)")
    p.add_argument("--minutes", type=non_negative_float, default=None, metavar="M",
                   help="budget in minutes (added to --hours)")
    p.add_argument("--runs", type=runs_count, default=None, metavar="N",
                   help="a reproducible night instead of a time budget: each stress run does "
                        "exactly N schedules and each fuzz run N executions, every lane's "
                        "queue once (no clock decides what runs)")
    p.add_argument("--jobs", type=jobs_count, default=None, metavar="N",
                   help=f"processes to use (default: os.cpu_count() = {default_jobs()})")
    p.add_argument("--bug", action="append", default=[], metavar="NAME",
                   help="inject a catalog bug in every run (repeatable)")
    add_fix_arguments(p)
    p.add_argument("--out", default="nightly", metavar="DIR",
                   help="run directories (finding files, artifacts, logs) and the fuzz "
                        "corpora (default ./nightly)")
    p.add_argument("--db", default=None, metavar="PATH",
                   help="history database (default OUT/history.sqlite)")
    p.add_argument("--report", default=None, metavar="DIR",
                   help="HTML report directory (default OUT/report)")
    p.add_argument("--json", action="store_true",
                   help="print the night's summary as JSON on stdout (runs, findings, "
                        "migration rates and their drops, exit code)")


DESCRIPTION = ("Run the stress portfolio and the fuzz targets in parallel for a time budget "
               "(or, with --runs, a fixed number of schedules and executions per run); "
               "record every run and every finding that replays in a SQLite history; write a "
               "static HTML report (trends, new findings with their interleaving and lock "
               "graph; known flaws of V2 as posted labelled apart; migration rates per "
               "strategy and scenario across nights, a significant drop flagged). Exit 0: no "
               "new findings (a rate drop included); 1: new findings; 2: usage error; 3: "
               "harness error, or a run directory held a file that does not reproduce.")


def format_night(s: NightSummary) -> str:
    by: dict[str, int] = {}
    for r in s.runs:
        by[r.status] = by.get(r.status, 0) + 1
    stress = sum(r.execs for r in s.runs if r.kind == "stress")
    fuzz = sum(r.execs for r in s.runs if r.kind == "fuzz")
    lines = ["", f"migfuzz nightly: night {s.night}",
             f"  runs       {len(s.runs)} ("
             + ", ".join(f"{v} {k}" for k, v in sorted(by.items())) + ")",
             f"  execs      {stress:,} stress schedules, {fuzz:,} fuzz executions",
             f"  findings   {len(s.new)} new, {s.known} known"
             + (f" ({len(s.flaws)} known flaw(s) of V2 as posted)" if s.flaws else "")
             + (f" ({len(s.recovered.files)} file(s) of a killed night recorded at the "
                "start)" if s.recovered.files else ""),
             f"  history    {s.db}",
             f"  report     {s.report or 'NOT WRITTEN: ' + str(s.report_error)}"]
    lines += [f"  known flaw {f}" for f in s.flaws]
    lines += migration_lines({k: list(v) for k, v in s.migrations.items()}, "migrated  ")
    compared = [c for c in s.rates if c.z is not None]
    if s.rates:
        lines.append(f"  rates      {len(compared)} series compared with the previous night "
                     f"(drop: -{RATE_MIN_DROP:.0%} or more, z <= -{RATE_Z:g}, "
                     f">= {RATE_MIN_ATTEMPTS} pages each night): {len(s.drops)} dropped")
    lines += [f"  RATE DROP  {c.text()}" for c in s.drops]
    if s.rejected:
        lines.append(f"  not findings: {len(s.rejected)} file(s) in the run directories did "
                     "not load or did not reproduce (recorded as invalid, not as findings):")
        lines += [f"    {r}" for r in s.rejected]
    if s.interrupted:
        lines.append("  interrupted: the runs were stopped early; everything found is saved")
    for r in s.runs:
        if r.status == "error":
            lines.append(f"  HARNESS ERROR in run {r.id} ({r.kind} {r.target}): {r.note}")
    return "\n".join(lines)


def cmd_nightly(a: argparse.Namespace) -> int:
    bugs = check_bugs(a.bug)
    fixes = fixes_of(a)
    if a.runs is not None and (a.hours is not None or a.minutes is not None):
        raise UsageError("--runs replaces the time budget: not with --hours or --minutes")
    if a.hours is None and a.minutes is None:
        seconds = DEFAULT_HOURS * 3600
    else:
        seconds = (a.hours or 0.0) * 3600 + (a.minutes or 0.0) * 60
    if seconds <= 0:
        raise UsageError("the budget (--hours + --minutes) must be positive")
    out = Path(a.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {a.out}: cannot create: {exc.strerror or exc}") from None
    n = Nightly(seconds=seconds, runs=a.runs, jobs=a.jobs or default_jobs(), bugs=bugs,
                fixes=fixes, out=out,
                db=Path(a.db) if a.db else out / "history.sqlite",
                report=Path(a.report) if a.report else out / "report")
    summary = n.run()
    if a.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        print(format_night(summary))
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
