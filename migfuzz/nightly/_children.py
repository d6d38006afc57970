"""The children: one run of a night in its own process (``python -m migfuzz.nightly
RUN_DIR/run.json``), a stress campaign or a fuzz target, writing status and result files."""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO, cast

from .._errors import UsageError
from ..campaign import Campaign, CampaignConfig, Message
from ..findings import FindingRecord, FindingStore, write_atomic
from ..fuzz import run_fuzz
from ..history import (
    History,
)
from ..report import format_summary
from ..strategies import BASE_STRATEGIES
from ._harvest import CorpusIndex
from ._plan import (
    FUZZ_OVERHEAD_S,
    MIN_RUN_S,
    STATUS_EVERY,
)
from ._spec import RunKind, RunSpec

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
            total = self.total()
            runs, el = total.runs, t - self.t0
            write_atomic(self.status_path, json.dumps(
                {"execs": runs, "seconds": el, "exec_per_s": runs / el if el > 0 else 0.0,
                 "migrations": total.migrations}))


def _stress_child(spec: RunSpec) -> int:
    run_dir = Path(spec.out_dir)
    corpus = CorpusIndex()
    hist: History | None = None
    try:
        hist = History(spec.db)
    except sqlite3.Error as exc:  # the parent's harvest records the files anyway
        print(f"nightly: no database ({exc}); findings are recorded by the parent",
              file=sys.stderr)

    def on_save(path: Path, rec: FindingRecord) -> None:
        if hist is None:
            return
        try:
            hist.record_finding(spec.run, path, rec, corpus_match=corpus.match(rec))
        except sqlite3.Error as exc:
            print(f"nightly: cannot record {path} now ({exc}); the parent will",
                  file=sys.stderr)

    cfg = CampaignConfig(seed=spec.seed, runs=spec.runs,
                         seconds=spec.seconds if spec.runs is None else None,
                         strategy="portfolio", executor="trio", jobs=spec.jobs,
                         bugs=spec.bugs, fixes=spec.fixes,
                         out=str(run_dir),
                         members=BASE_STRATEGIES, cluster=spec.cluster)
    summary = _NightlyCampaign(cfg, run_dir / "status.json", on_save).run()
    err = summary.error
    write_atomic(run_dir / "result.json", json.dumps({
        "execs": summary.runs, "seconds": summary.seconds, "exec_per_s": summary.rate,
        "decisions": summary.decisions, "findings": len(summary.findings),
        "migrations": summary.migrations,
        "interrupted": summary.interrupted,
        "error": None if err is None else f"harness error in run {err.run}: "
                                          f"{err.error}",
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


class _FuzzRun:
    """A fuzz run: libFuzzer sessions of its target until the deadline (restarted while
    restarts find new crashing inputs), its numbers in status.json as it goes."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.run_dir = Path(spec.out_dir)
        self.t0 = time.monotonic()
        self.deadline = self.t0 + spec.seconds
        self.execs = self.coverage = self.features = self.restarts = self.artifacts = 0
        self.fuzz_seconds = self.busy = 0.0
        self.last_status = 0.0
        self.stop = False
        self.note = ""

    def numbers(self, cur_execs: int = 0, eps: float | None = None) -> dict[str, Any]:
        el = time.monotonic() - self.t0
        execs = self.execs + cur_execs
        # libFuzzer's own exec/s (start-up excluded), over all restarts
        busy = self.busy or self.fuzz_seconds
        return {"execs": execs, "seconds": el,
                "exec_per_s": eps if eps is not None else (execs / busy if busy else 0.0),
                # (libFuzzer reports coverage once it fuzzes; a crash on a seed input: none)
                "coverage": self.coverage or None, "features": self.features or None,
                "restarts": self.restarts}

    def on_progress(self, execs: int, eps: float, cov: int, ft: int) -> None:
        self.coverage, self.features = max(self.coverage, cov), max(self.features, ft)
        t = time.monotonic()
        if t - self.last_status >= STATUS_EVERY:
            self.last_status = t
            write_atomic(self.run_dir / "status.json", json.dumps(self.numbers(execs, eps)))

    def session(self) -> bool:
        """One libFuzzer session; whether to start another."""
        spec, remaining = self.spec, self.deadline - time.monotonic()
        # The first session always runs (libFuzzer executes the seed corpus before it
        # looks at the clock): a fuzz run of the night never ends with nothing done
        # because a loaded machine started it late.
        if self.restarts and (spec.runs is not None or remaining < MIN_RUN_S):
            return False  # (with --runs: one session, whatever it found)
        s = run_fuzz(spec.target, max(1.0, remaining - FUZZ_OVERHEAD_S), 1, list(spec.bugs),
                     Path(spec.corpus), self.run_dir, seed=spec.seed * 1000 + self.restarts,
                     progress=True, fixes=list(spec.fixes), runs=spec.runs)
        self.restarts += 1
        self.execs += s.execs
        self.fuzz_seconds += s.seconds
        self.busy += s.execs / s.exec_per_sec if s.exec_per_sec > 0 else 0.0
        self.coverage = max(self.coverage, s.coverage)
        self.features = max(self.features, s.features)
        self.artifacts += len(s.artifacts)
        write_atomic(self.run_dir / "status.json", json.dumps(self.numbers()))
        if self.stop or s.returncode == 0:
            return False
        if not s.artifacts:  # it stopped on an input it had saved before
            self.note = (f"libFuzzer stopped (status {s.returncode}) after {s.seconds:.0f} s "
                         "without a new crashing input: it keeps crashing on one it saved "
                         "already; the lane's time goes to the stress portfolio")
            return False
        return True


def _fuzz_child(spec: RunSpec) -> int:
    f = _FuzzRun(spec)

    def on_sigint(signum: int, frame: object) -> None:
        f.stop = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    real = sys.stderr
    sys.stderr = cast(TextIO, _ProgressTee(real, f.on_progress))
    try:
        while not f.stop and f.session():
            pass
    except KeyboardInterrupt:
        f.stop = True
    finally:
        sys.stderr = real
    res = f.numbers()
    res.update(restarts=f.restarts, artifacts=f.artifacts, interrupted=f.stop,
               note=f.note or None, done=True)
    write_atomic(f.run_dir / "result.json", json.dumps(res) + "\n")
    return 1 if f.artifacts else 0


def child_main(argv: Sequence[str]) -> int:
    """``python -m migfuzz.nightly RUN_DIR/run.json``: run the run it describes.

    Raises:
        UsageError: no argument, or a ``run.json`` that is not a valid run spec.
    """
    if len(argv) != 1:
        raise UsageError("usage: python -m migfuzz.nightly RUN_DIR/run.json (a nightly's "
                         "child: migfuzz nightly starts it)")
    spec = RunSpec.load(argv[0])
    _die_with_parent(spec.parent)
    # The parent dying (PR_SET_PDEATHSIG) or stopping us: finish like after a Ctrl-C.
    signal.signal(signal.SIGTERM, lambda s, f: os.kill(os.getpid(), signal.SIGINT))
    if spec.kind == RunKind.STRESS:
        return _stress_child(spec)
    return _fuzz_child(spec)
