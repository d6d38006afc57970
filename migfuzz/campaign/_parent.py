"""The parent of a campaign: takes the workers' messages, writes the finding files, shows
progress, and stops the workers at the deadline or on Ctrl-C (the picture is the package's
docstring)."""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import queue as _queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, TextIO

from .. import __version__
from .._term import PlainProgress, ProgressState, RichProgress, progress_view
from ..findings import FindingRecord, FindingStore, model_commit, now
from ..flaws import explain
from ._cluster import connect_cluster, run_on_cluster
from ._messages import Found, Hit, Message, Progress, WorkerError, add_progress
from ._plan import CampaignConfig
from ._summary import Entry, Summary
from ._worker import worker_loop, worker_main

REFRESH_EVERY = 0.25  # seconds between progress-line updates (at most 4 per second)
FLUSH_EVERY = 1.0  # seconds between rewrites of a file whose hit count changed
JOIN_GRACE = 5.0  # seconds the workers together get to finish their runs after a stop


class Campaign:
    """Runs a campaign to completion (or Ctrl-C), writing findings as they arrive."""

    def __init__(self, cfg: CampaignConfig, *, progress: TextIO | None = None,
                 client: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.client = client  # a Dask client of cfg.cluster, if the caller connected already
        self.clock = clock  # the campaign's time: its budget, rate and progress
        self.store = FindingStore(cfg.out)
        self.entries: dict[str, Entry] = {}
        self.workers: dict[int, Progress] = {}  # latest progress message per worker
        self.finished: set[int] = set()
        self.error: WorkerError | None = None
        self.interrupted = False
        self.progress = progress
        self._stop = False
        self._shown = -1e9  # the first progress is shown at once
        self._view: PlainProgress | RichProgress | None = None
        self._start = 0.0
        self._deadline: float | None = None

    # -- messages --------------------------------------------------------------------------

    def handle(self, msg: Message) -> None:
        if isinstance(msg, (Progress, WorkerError)):
            progress = msg if isinstance(msg, Progress) else msg.progress
            self.workers[progress.worker] = progress
            if progress.done:
                self.finished.add(progress.worker)
            if isinstance(msg, WorkerError) and self.error is None:
                self.error = msg
                self._stop = True
        elif isinstance(msg, Found):  # (before Hit: a Found is a Hit with a record)
            self._finding(msg)
            if self.cfg.exitfirst:
                self._stop = True
        else:
            e = self.entries[msg.key]
            self._count(e, msg)
            e.record.hits += 1
            e.record.last_seen = now()
            e.pending += 1
            e.dirty = True
        self._maybe_flush()
        self._maybe_show()

    def _count(self, e: Entry, msg: Hit) -> None:
        e.hits += 1
        s = msg.strategy
        e.by_strategy[s] = e.by_strategy.get(s, 0) + 1

    def _finding(self, msg: Found) -> None:
        rec = msg.record
        stamp = now()
        rec.first_seen = rec.last_seen = stamp
        rec.tool_version = __version__
        rec.model_commit = model_commit()
        rec.hits = 1
        order = (rec.size(), msg.run)
        e = self.entries.get(msg.key)
        if e is None:
            e = Entry(rec, self.store.path_for(rec), order, new=True, pending=1)
            self.entries[msg.key] = e
            self._count(e, msg)
            self._save(e, first=True)
            return
        self._count(e, msg)
        e.pending += 1
        if order < e.order:
            e.order = order
            rec.hits = e.record.hits + 1
            rec.first_seen = e.record.first_seen
            before, e.record = e.record, rec
            self._save(e, replaces=before)
        else:
            e.record.hits += 1
            e.record.last_seen = stamp
            e.dirty = True

    def label_known_flaws(self) -> None:
        """Label each finding a known flaw of V2 explains, by execution (``migfuzz.flaws``),
        and rewrite its file with the label. After the campaign, in the parent: a handful of
        replays per distinct signature, never per hit."""
        try:
            for e in self.entries.values():
                if e.record.known_flaw is not None:
                    continue
                try:
                    e.record.known_flaw = explain(e.record)
                except Exception as exc:  # unlabelled is the safe side: it stays "new"
                    self.store.warnings.append(
                        f"{e.record.signature}: could not decide whether a known flaw "
                        f"explains it: {type(exc).__name__}: {exc}")
                if e.record.known_flaw is not None:
                    self._save(e)
        except KeyboardInterrupt:  # the findings stay, unlabelled (so: new)
            self.interrupted = True

    def _save(self, e: Entry, first: bool = False,
              replaces: FindingRecord | None = None) -> None:
        """Merge into the file as it is now: another campaign may share the directory."""
        mine = e.record
        e.record, existed = self.store.save_merged(mine, e.pending, replaces=replaces)
        if e.record.size() < mine.size():  # the file's reproducer is smaller: beat that now
            e.order = min(e.order, (e.record.size(), -1))
        if first:
            e.new = not existed
        e.pending = 0
        e.dirty = False
        e.flushed = self.clock()

    def _maybe_flush(self, force: bool = False) -> None:
        t = self.clock()
        for e in self.entries.values():
            if e.dirty and (force or t - e.flushed >= FLUSH_EVERY):
                self._save(e)

    # -- progress --------------------------------------------------------------------------

    def total(self) -> Progress:
        """Every worker's latest counters together (``add_progress``, as a cluster campaign
        folds its batches)."""
        return functools.reduce(add_progress, self.workers.values(), Progress(0))

    def _maybe_show(self, final: bool = False) -> None:
        """Progress: a live display on a terminal, a line per 10 s in a log (migfuzz._term)."""
        if self.progress is None:
            return
        t = self.clock()
        if not final and t - self._shown < REFRESH_EVERY:
            return
        self._shown = t
        if self._view is None:
            self._view = progress_view(self.progress, title="stress", clock=self.clock)
        runs = self.total().runs
        el = t - self._start
        c = self.cfg
        st = ProgressState(el, runs, len(self.entries), sum(e.hits for e in self.entries.values()),
                           done=runs if c.runs is not None else el,
                           total=c.runs if c.runs is not None else c.seconds, left=None)
        if c.runs is not None:
            left = (c.runs - runs) / st.rate if st.rate > 0 else None
        else:
            left = None if c.seconds is None else max(0.0, c.seconds - el)
        self._view.show(replace(st, left=left), final=final)
        if final:
            self._view.close()

    # -- driving ---------------------------------------------------------------------------

    def should_stop(self) -> bool:
        if self._deadline is not None and self.clock() >= self._deadline:
            self._stop = True
        return self._stop

    def run(self) -> Summary:
        """Run the campaign.

        Raises:
            UsageError: ``cfg.cluster`` cannot be reached or Dask is not installed (before
                anything runs).
        """
        if self.cfg.cluster is not None and self.client is None:
            self.client = connect_cluster(self.cfg.cluster)
        self._start = self.clock()
        if self.cfg.seconds is not None:
            self._deadline = self._start + self.cfg.seconds
        jobs = self.cfg.jobs
        if self.cfg.runs is not None:
            jobs = max(1, min(jobs, self.cfg.runs))
        try:
            with self._ctrl_c():
                if self.client is not None:
                    run_on_cluster(self, self.client)
                elif jobs == 1:
                    self._run_inline()
                else:
                    self._run_pool(jobs)
        finally:
            if self.client is not None:
                self.client.close()
            self._maybe_flush(force=True)
            self._maybe_show(final=True)
        seconds = self.clock() - self._start  # the campaign's, not the labelling's
        if self.error is None:
            self.label_known_flaws()
        t = self.total()
        return Summary(
            self.cfg, t.runs, t.decisions, seconds, t.by_strategy,
            sorted(self.entries.values(), key=lambda e: (-e.hits, e.record.signature)),
            self.interrupted, self.error, list(self.store.warnings), t.ops,
            t.migrations, t.move_pages,
        )

    @contextlib.contextmanager
    def _ctrl_c(self) -> Iterator[None]:
        """The first Ctrl-C only sets a flag: the run in progress finishes, and the campaign
        stops between runs. An exception raised asynchronously inside a run would land in
        model code, where the executors report it as a harness error, or inside trio's run
        loop, which does not survive it; a second Ctrl-C raises KeyboardInterrupt anyway."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_sigint(signum: int, frame: object) -> None:
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True
            self._stop = True

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _run_inline(self) -> None:
        try:
            worker_loop(self.cfg, 0, 1, self.handle, self.should_stop)
        except KeyboardInterrupt:
            self.interrupted = True

    def _run_pool(self, jobs: int) -> None:
        ctx: Any = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        q = ctx.Queue()
        stop = ctx.Event()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # a forked child must not inherit (and re-print) buffered output
        procs = [ctx.Process(target=worker_main,
                             args=(self.cfg, w, jobs, q, stop, os.getpid()),
                             daemon=True, name=f"migfuzz-worker-{w}") for w in range(jobs)]
        for p in procs:
            if self.should_stop():  # --seconds counts from the start, starting included
                break
            p.start()
        started = [p for p in procs if p.pid is not None]
        for w in range(len(started), jobs):  # never started: nothing to wait for
            self.handle(Progress(w, done=True))
        try:
            while len(self.finished) < jobs:
                try:
                    try:
                        self.handle(q.get(timeout=0.1))
                    except _queue.Empty:
                        self._maybe_show()
                        for w, p in enumerate(started):  # a worker that died without a word
                            if w not in self.finished and not p.is_alive() and q.empty():
                                self.handle(WorkerError(
                                    Progress(w, done=True), -1, "-", "-",
                                    f"worker {w} exited with {p.exitcode}"))
                    if self.should_stop():
                        stop.set()
                except KeyboardInterrupt:
                    if self.interrupted:  # second Ctrl-C: do not wait for the workers
                        break
                    self.interrupted = True
                    self._stop = True
                    stop.set()
        finally:
            stop.set()
            # One grace period for all (not 5 s each): a worker finishes its current run.
            grace = time.monotonic() + JOIN_GRACE
            for p in started:
                p.join(timeout=max(0.0, grace - time.monotonic()))
            for p in started:
                if p.is_alive():
                    p.kill()
                    p.join()
            try:
                while True:  # what arrived while joining (a late finding is still saved)
                    self.handle(q.get_nowait())
            except (_queue.Empty, OSError, ValueError):
                pass
            q.close()
