"""The supervisor: starts each lane's runs as child processes, harvests their directories
while they run, stops them at the deadline or on a signal, and ends the night with the report."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TextIO

from .. import __version__
from .._errors import UsageError
from .._term import PlainProgress, RichProgress, progress_view
from ..findings import model_commit, write_atomic
from ..fuzz import TARGETS as FUZZ_TARGETS
from ..history import (
    History,
    NightStatus,
    RunRow,
    RunStatus,
    compare_rates,
)
from ..report import fixes_text
from ..report_html import write_report
from ._harvest import CorpusIndex, harvest, label_known_flaws
from ._plan import (
    FILL_MIN_S,
    GRACE_S,
    HARVEST_EVERY,
    KILL_AFTER_S,
    MIN_RUN_S,
    POLL_S,
    ROOT,
    STATUS_EVERY,
    Item,
    Lane,
    plan,
)
from ._recovery import _iso, _run_fields, record_migrations, recover
from ._spec import RunKind, RunSpec, _read_json
from ._summary import NightSummary, night_progress


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
                 fixes: Sequence[str] = (), runs: int | None = None,
                 cluster: str | None = None) -> None:
        self.seconds = 0.0 if runs is not None else seconds
        self.runs = runs  # per run, instead of a time budget (see the module docstring)
        self.jobs = jobs
        self.cluster = cluster  # where the stress runs run their schedules (Dask), or None
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
        self.view: PlainProgress | RichProgress | None = None
        self.planned: int | None = None  # with --runs: the runs the lanes will run
        self.started = 0.0

    def log(self, msg: str) -> None:
        if self.view is not None:  # above the live display, on a terminal
            self.view.log(f"nightly: {msg}")
        else:
            print(f"nightly: {msg}", file=self.stream, flush=True)

    def _show(self, now: float, *, final: bool = False) -> None:
        """The live display (migfuzz._term; a log gets the run lines only, so the history is
        not read for it)."""
        if isinstance(self.view, RichProgress):
            hits = [int(r["hits"]) for r in self.hist.night_keys(self.night)]
            self.view.show(night_progress(
                self.hist.runs(self.night), hits, elapsed=now - self.started,
                seconds=self.seconds, planned=self.planned), final=final)

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
            self.started = time.monotonic()
            self.planned = (sum(len(lane.queue) for lane in lanes) if self.runs is not None
                            else None)
            self.view = progress_view(self.stream, title=f"night {night}",
                                      clock=time.monotonic, lines=False)
            self.deadline = (time.monotonic() + self.seconds if self.runs is None else
                             float("inf"))  # a night of --runs ends when its queues do
            try:
                self._loop(lanes)
            finally:
                self._stop_all(force=True)
                for run in hist.runs(night):
                    self._harvest(run)
                self._show(time.monotonic(), final=True)
                view, self.view = self.view, None
                if view is not None:
                    view.close()
            summary = NightSummary(night, self.db_path, None, interrupted=self.signals > 0,
                                   recovered=recovered,
                                   rejected=recovered.rejected + self.rejected)
            summary.flaws = label_known_flaws(hist, night, self.log)
            summary.migrations = hist.night_migrations(night)
            summary.rates = compare_rates(hist.migration_trend(), night)
            hist.end_night(night, NightStatus.INTERRUPTED if self.signals else NightStatus.DONE)
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
                self._show(now)
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
            self._start(idx, lane, Item(RunKind.STRESS, "portfolio", remaining, lane.width,
                                        "fills the lane's unused budget"))
            return
        lane.done = True

    def _start(self, idx: int, lane: Lane, item: Item) -> None:
        self.seq += 1
        name = f"n{self.night:04d}-{self.seq:02d}-{item.kind}"
        name += f"-{item.target}" if item.kind == RunKind.FUZZ else ""
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
        spec = RunSpec(run=run, night=self.night, kind=RunKind(item.kind), target=item.target,
                       seconds=item.seconds, runs=item.runs, jobs=item.jobs,
                       bugs=tuple(self.bugs), fixes=tuple(self.fixes), seed=seed,
                       db=str(self.db_path), out_dir=str(run_dir),
                       corpus=str(self.out / "corpus" / item.target), parent=os.getpid(),
                       started=time.time(),
                       cluster=self.cluster if item.kind == RunKind.STRESS else None)
        write_atomic(run_dir / "run.json", spec.dumps())
        log = open(run_dir / "log.txt", "ab")  # noqa: SIM115 - closed in _finish
        proc = subprocess.Popen([sys.executable, "-m", "migfuzz.nightly",
                                 str(run_dir / "run.json")], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        self.active[run] = Active(run, idx, item, proc, run_dir, log, time.monotonic())
        lane.busy = True
        self.log(f"run {run}: {item.kind} {item.target} for "
                 + (f"{item.runs:,} runs" if item.runs is not None else f"{item.seconds:.0f} s")
                 + (f" on cluster {spec.cluster}" if spec.cluster is not None else
                    f" with {item.jobs} workers" if item.jobs > 1 else "")
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
            status = RunStatus.ERROR
            if crashed:
                tail = _tail(a.run_dir / "log.txt")
                notes.append(str(res.get("error") or f"exited with status {rc}: {tail}"))
            if lane is not None:
                lane.failed = True
        elif res.get("interrupted") or a.signalled is not None:
            status = RunStatus.INTERRUPTED
            if a.overran:
                notes.append("overran the budget: stopped")
            if not res:
                notes.append(f"did not stop when asked: killed (status {rc})")
        else:
            status = RunStatus.FINDINGS if run.findings else RunStatus.OK
        self.hist.update_run(a.run, status=status, ended=_iso(time.time()),
                             note="; ".join(notes) or None, **fields)
        if run.kind == RunKind.FUZZ:  # the work corpus was merged into OUT/corpus/TARGET
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
