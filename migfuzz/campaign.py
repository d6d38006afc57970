"""A stress campaign: many runs of generated or canonical scenarios, findings deduplicated.

Run ``k`` of a campaign with seed ``S`` is a pure function of (S, k): its scenario is
``generate(S * 2**32 + k)`` (or the canonical one), its strategy is the portfolio's turn for
``k`` seeded with the same number. Worker ``w`` of ``N`` takes runs ``w, w + N, w + 2N, ...``,
so with ``--runs`` the set of runs, and therefore the findings and their hit counts, is the
same for every ``--jobs`` (only the time it takes changes).

Workers send what they find to the parent, the only writer of the findings directory. For each
signature the file keeps the smallest reproducer, shortlex on (tasks, operations, decisions),
ties to the lower run index: a total order, so which run ends up in the file does not depend
on which worker reported first. A worker sends a full record (which costs one traced replay to
get the trace hash) only when it improves on what *it* has sent for that signature, and a bare
hit otherwise, so a bug hit on every other run does not double the campaign's cost.

    parent                            worker w (N processes, or in-process with --jobs 1)
    start workers, then loop:         for k in w, w+N, ...: run k under its strategy
      take messages (<= 0.1 s)          finding? improves my best: traced replay -> record
      new/smaller finding: write file   else: hit
      hits: mark file dirty (1 s)       progress every 0.2 s
      refresh the progress line        until runs exhausted or the stop event is set
    deadline / Ctrl-C: set stop event ---> finish the current run, send "done"
    drain, flush dirty files, summary
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing
import os
import queue as _queue
import random
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from stress import DEFAULT_MAX_STEPS
from stress.run import run_scenario
from stress.scenarios import CANONICAL, canonical, generate
from stress.schedulers import RandomScheduler
from stress.workload import Scenario

from . import __version__
from ._errors import caused_by_ctrl_c
from ._procs import die_with_parent, parent_gone
from .bugs import injected
from .findings import FindingRecord, FindingStore, dedup_key, model_commit, now
from .flaws import explain
from .replay import confirm_record
from .strategies import StrategySpec, make_scheduler, spec_for_run

RUN_STRIDE = 1 << 32
PROGRESS_EVERY = 0.2  # seconds between a worker's progress messages
REFRESH_EVERY = 0.25  # seconds between progress-line updates (at most 4 per second)
FLUSH_EVERY = 1.0  # seconds between rewrites of a file whose hit count changed
JOIN_GRACE = 5.0  # seconds the workers together get to finish their runs after a stop

Message = dict[str, Any]


@dataclass(frozen=True)
class CampaignConfig:
    seed: int = 0
    runs: int | None = None
    seconds: float | None = None
    strategy: str = "portfolio"
    executor: str = "trio"
    jobs: int = 1
    scenario: str | None = None  # a canonical name or a SCENARIO_MODES entry; None: mixed
    # A user's scenario file, as its JSON text (plain data, so every worker gets the same):
    # every run runs it; ``scenario`` then holds its name, for the summary.
    scenario_data: str | None = None
    bugs: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()  # upstream fixes applied (expanded: check_fixes)
    out: str = "findings"
    max_steps: int = DEFAULT_MAX_STEPS
    exitfirst: bool = False  # stop at the first finding (a gate's "fail fast")
    members: tuple[str, ...] = ("random",)  # the portfolio, fixed at the start


def run_seed(seed: int, run: int) -> int:
    return seed * RUN_STRIDE + run


SCENARIO_MODES = ("mixed", "generated", "canonical")
"""``--scenario`` values besides a canonical name. ``mixed`` (the default) gives half the runs
to the canonical scenarios, the project's library of known races, and half to generated ones,
which explore combinations nobody wrote down (syzkaller does the same with its seed programs
and generated ones)."""


def _scenario_name(cfg: CampaignConfig, rs: int) -> str | None:
    """The canonical scenario of a run, or None for a generated one."""
    mode = cfg.scenario or "mixed"
    if mode == "generated":
        return None
    if mode not in SCENARIO_MODES:
        return mode
    rng = random.Random(f"scenario:{rs}")
    if mode == "canonical" or rng.random() < 0.5:
        names = sorted(CANONICAL)
        return names[rng.randrange(len(names))]
    return None


def plan_run(cfg: CampaignConfig, run: int) -> tuple[Scenario, StrategySpec]:
    """The input of run ``run``: a pure function of (seed, run, strategy, scenario mode)."""
    rs = run_seed(cfg.seed, run)
    if cfg.scenario_data is not None:
        scenario = _user_scenario(cfg.scenario_data)
        hint: int | None = _user_decisions(cfg.scenario_data, cfg.max_steps, cfg.bugs,
                                           cfg.fixes)
        return scenario, spec_for_run(cfg.strategy, rs, run, cfg.members, hint)
    name = _scenario_name(cfg, rs)
    scenario = canonical(name) if name else generate(rs)
    hint = _decisions(name, cfg.max_steps, cfg.bugs, cfg.fixes) if name else None
    return scenario, spec_for_run(cfg.strategy, rs, run, cfg.members, hint)


@functools.cache
def _user_scenario(data: str) -> Scenario:
    return Scenario.from_json(json.loads(data))


def _probe_decisions(sc: Scenario, max_steps: int) -> int:
    """Decisions of ``sc`` under one fixed random walk: PCT's ``k`` estimate.

    Deterministic, so the same in every worker. Called where the campaign's ``bugs`` and
    ``fixes`` are injected (the cached callers take them as part of their key); a probe that
    hits a finding is still a hint.
    """
    sched = RandomScheduler(0)
    sched.new_execution()
    out = run_scenario(sc, sched, executor="direct", max_steps=max_steps)
    return max(1, len(out.schedule))


@functools.cache
def _decisions(name: str, max_steps: int, bugs: tuple[str, ...],
               fixes: tuple[str, ...] = ()) -> int:
    """:func:`_probe_decisions` of a canonical scenario."""
    return _probe_decisions(canonical(name), max_steps)


@functools.cache
def _user_decisions(data: str, max_steps: int, bugs: tuple[str, ...],
                    fixes: tuple[str, ...]) -> int:
    """:func:`_probe_decisions` of a user's scenario file, by its JSON text."""
    return _probe_decisions(_user_scenario(data), max_steps)


def make_record(cfg: CampaignConfig, run: int, scenario: Scenario, spec: StrategySpec,
                schedule: list[int]) -> FindingRecord:
    """The finding of run ``run`` as a record (``replay.confirm_record``; HarnessError if its
    schedule does not reproduce it). The parent stamps it when it arrives."""
    return confirm_record(
        scenario, schedule, strategy=spec, executor=cfg.executor, bugs=cfg.bugs,
        fixes=cfg.fixes, max_steps=cfg.max_steps, what=f"run {run} ({spec.describe()})",
        origin={"campaign_seed": cfg.seed, "run": run, "strategy": cfg.strategy,
                "portfolio": list(cfg.members), "scenario": cfg.scenario or "mixed"})


Migrations = dict[str, list[int]]
"""``strategy:<name>`` / ``scenario:<name>`` -> [pages attempted, pages moved] by the runs'
``migrate`` operations (stress.workload.MigrationStats); generated scenarios count as one."""


def migration_rates(migrations: Migrations) -> dict[str, dict[str, dict[str, float]]]:
    """The --json form: per strategy and per scenario, attempted, moved and the rate."""
    out: dict[str, dict[str, dict[str, float]]] = {"by_strategy": {}, "by_scenario": {}}
    for key, (attempted, moved) in sorted(migrations.items()):
        kind, name = key.split(":", 1)
        out[f"by_{kind}"][name] = {"attempted": attempted, "moved": moved,
                                   "rate": round(moved / attempted, 4) if attempted else 0.0}
    return out


def worker_loop(cfg: CampaignConfig, wid: int, jobs: int, sink: Callable[[Message], None],
                should_stop: Callable[[], bool]) -> None:
    """Worker ``wid``'s share of the campaign; reports through ``sink``."""
    runs = decisions = 0
    by_strategy: dict[str, int] = {}
    ops: dict[str, int] = {}  # operations by kind in the scenarios run: what was exercised
    migrations: Migrations = {}
    statuses: dict[str, int] = {}  # move_pages statuses over the runs (stress.workload)
    best: dict[str, tuple[tuple[int, int, int], int]] = {}
    last = time.monotonic()

    def progress(kind: str) -> Message:
        return {"t": kind, "w": wid, "runs": runs, "decisions": decisions,
                "by_strategy": dict(by_strategy), "ops": dict(ops),
                "migrations": {k: list(v) for k, v in migrations.items()},
                "move_pages": dict(statuses)}

    k = wid
    final: str | None = "done"
    try:
        with injected(cfg.bugs, cfg.fixes):
            # Every worker does at least one run, however late it starts: a time box that
            # ends before a loaded machine starts a worker then yields a run, not nothing.
            while (cfg.runs is None or k < cfg.runs) and (k == wid or not should_stop()):
                what = (f"run {k}", "?")
                try:
                    scenario, spec = plan_run(cfg, k)
                    what = (spec.describe(), scenario.name)
                    sched = make_scheduler(spec)
                    sched.new_execution()
                    outcome = run_scenario(scenario, sched, executor=cfg.executor,
                                           max_steps=cfg.max_steps)
                    f = outcome.finding
                    if f is not None:
                        key = dedup_key(f.signature, list(cfg.bugs), cfg.fixes)
                        order = ((*scenario.size(), len(outcome.schedule)), k)
                        if key not in best or order < best[key]:
                            best[key] = order
                            rec = make_record(cfg, k, scenario, spec, outcome.schedule)
                            sink({"t": "finding", "w": wid, "run": k, "key": key,
                                  "strategy": spec.name, "record": rec})
                        else:
                            sink({"t": "hit", "w": wid, "run": k, "key": key,
                                  "strategy": spec.name})
                except OSError:  # the model does no I/O: writing a finding failed (disk full)
                    final = None
                    raise
                except Exception as exc:  # a harness error: stop, with what reproduces it
                    if caused_by_ctrl_c(exc):
                        raise KeyboardInterrupt from exc
                    final = None
                    sink({**progress("error"), "run": k, "strategy": what[0],
                          "scenario": what[1], "error": f"{type(exc).__name__}: {exc}",
                          "traceback": traceback.format_exc()})
                    return
                runs += 1
                decisions += len(outcome.schedule)
                by_strategy[spec.name] = by_strategy.get(spec.name, 0) + 1
                for task in scenario.tasks:
                    for op in task.ops:
                        ops[str(op[0])] = ops.get(str(op[0]), 0) + 1
                for status, n in outcome.move_pages.items():
                    statuses[status] = statuses.get(status, 0) + n
                attempted, moved = outcome.migrations
                if attempted:
                    for key in (f"strategy:{spec.name}",
                                f"scenario:{scenario.name.split(':')[0]}"):
                        tally = migrations.setdefault(key, [0, 0])
                        tally[0] += attempted
                        tally[1] += moved
                k += jobs
                t = time.monotonic()
                if t - last >= PROGRESS_EVERY:
                    last = t
                    sink(progress("progress"))
    finally:
        # Also on KeyboardInterrupt (--jobs 1): the runs completed so far are counted.
        if final is not None:
            sink(progress(final))


def _worker_main(cfg: CampaignConfig, wid: int, jobs: int, q: Any, stop: Any,
                 parent: int) -> None:
    # Ctrl-C reaches the whole process group; only the parent acts on it (by setting ``stop``),
    # so that every worker finishes its current run and reports instead of dying mid-message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A parent killed outright sets no event: the kernel kills us, or we notice between runs.
    armed = die_with_parent(parent)

    def should_stop() -> bool:
        return bool(stop.is_set()) or (not armed and parent_gone(parent))

    try:
        worker_loop(cfg, wid, jobs, q.put, should_stop)
    except BaseException as exc:  # pragma: no cover - last resort, keeps the parent informed
        q.put({"t": "error", "w": wid, "runs": 0, "decisions": 0, "by_strategy": {},
               "run": -1, "strategy": "-", "scenario": "-",
               "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})


@dataclass
class Entry:
    """What the parent knows about one signature during the campaign."""

    record: FindingRecord
    path: Path
    order: tuple[tuple[int, int, int], int]
    new: bool
    hits: int = 0
    by_strategy: dict[str, int] = field(default_factory=dict)
    dirty: bool = False
    flushed: float = 0.0
    pending: int = 0  # hits counted here and not yet added to the file


@dataclass
class Summary:
    config: CampaignConfig
    runs: int = 0
    decisions: int = 0
    seconds: float = 0.0
    by_strategy: dict[str, int] = field(default_factory=dict)
    findings: list[Entry] = field(default_factory=list)
    interrupted: bool = False
    error: Message | None = None
    warnings: list[str] = field(default_factory=list)
    op_counts: dict[str, int] = field(default_factory=dict)
    migrations: Migrations = field(default_factory=dict)
    move_pages: dict[str, int] = field(default_factory=dict)  # status -> count

    @property
    def rate(self) -> float:
        return self.runs / self.seconds if self.seconds > 0 else 0.0

    @property
    def new_findings(self) -> list[Entry]:
        """The findings no known flaw of V2 explains (``migfuzz.flaws``)."""
        return [e for e in self.findings if e.record.known_flaw is None]

    @property
    def exit_code(self) -> int:
        """3 harness error; 1 a finding no known flaw explains; else 0 (known flaws of V2 as
        posted are reported with their labels, but are not a failure of the run)."""
        if self.error is not None:
            return 3
        return 1 if self.new_findings else 0

    def to_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "tool_version": __version__,
            "model_commit": model_commit(),
            "seed": c.seed, "runs_requested": c.runs, "seconds_requested": c.seconds,
            "strategy": c.strategy, "executor": c.executor, "jobs": c.jobs,
            "scenario": c.scenario or "mixed", "bugs": list(c.bugs), "fixes": list(c.fixes),
            "out": c.out,
            "max_steps": c.max_steps,
            "runs": self.runs, "decisions": self.decisions, "seconds": round(self.seconds, 3),
            "schedules_per_second": round(self.rate, 1), "by_strategy": self.by_strategy,
            "op_counts": self.op_counts,
            "migration": migration_rates(self.migrations),
            "move_pages_status": self.move_pages,
            "interrupted": self.interrupted,
            "error": None if self.error is None else {
                k: self.error[k] for k in ("run", "strategy", "scenario", "error", "traceback")},
            "warnings": self.warnings,
            "findings": [
                {"signature": e.record.signature, "kind": e.record.kind, "key": e.record.key,
                 "file": str(e.path), "new": e.new, "hits": e.hits,
                 "total_hits": e.record.hits, "by_strategy": e.by_strategy,
                 "tasks": e.record.size()[0], "ops": e.record.size()[1],
                 "decisions": e.record.size()[2], "repro": f"migfuzz repro {e.path}",
                 "known_flaw": (None if e.record.known_flaw is None
                                else e.record.known_flaw.to_json())}
                for e in self.findings
            ],
            "exit_code": self.exit_code,
        }


class Campaign:
    """Runs a campaign to completion (or Ctrl-C), writing findings as they arrive."""

    def __init__(self, cfg: CampaignConfig, *, progress: TextIO | None = None) -> None:
        self.cfg = cfg
        self.store = FindingStore(cfg.out)
        self.entries: dict[str, Entry] = {}
        self.workers: dict[int, Message] = {}  # latest progress message per worker
        self.finished: set[int] = set()
        self.error: Message | None = None
        self.interrupted = False
        self.progress = progress
        self._stop = False
        self._shown = 0.0
        self._logged = -1e9  # the first progress line is logged at once, then every 10 s
        self._start = 0.0
        self._deadline: float | None = None
        self._width = 0

    # -- messages --------------------------------------------------------------------------

    def handle(self, msg: Message) -> None:
        t = msg["t"]
        if t in ("progress", "done", "error"):
            self.workers[msg["w"]] = msg
            if t != "progress":
                self.finished.add(msg["w"])
            if t == "error" and self.error is None:
                self.error = msg
                self._stop = True
        elif t == "finding":
            self._finding(msg)
            if self.cfg.exitfirst:
                self._stop = True
        elif t == "hit":
            e = self.entries[msg["key"]]
            self._count(e, msg)
            e.record.hits += 1
            e.record.last_seen = now()
            e.pending += 1
            e.dirty = True
        self._maybe_flush()
        self._maybe_show()

    def _count(self, e: Entry, msg: Message) -> None:
        e.hits += 1
        s = msg["strategy"]
        e.by_strategy[s] = e.by_strategy.get(s, 0) + 1

    def _finding(self, msg: Message) -> None:
        rec: FindingRecord = msg["record"]
        stamp = now()
        rec.first_seen = rec.last_seen = stamp
        rec.tool_version = __version__
        rec.model_commit = model_commit()
        rec.hits = 1
        order = (rec.size(), msg["run"])
        e = self.entries.get(msg["key"])
        if e is None:
            e = Entry(rec, self.store.path_for(rec), order, new=True, pending=1)
            self.entries[msg["key"]] = e
            self._count(e, msg)
            self._save(e, first=True)
            return
        self._count(e, msg)
        e.pending += 1
        if order < e.order:
            e.order = order
            rec.hits = e.record.hits + 1
            rec.first_seen = e.record.first_seen
            e.record = rec
            self._save(e)
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

    def _save(self, e: Entry, first: bool = False) -> None:
        """Merge into the file as it is now: another campaign may share the directory."""
        mine = e.record
        e.record, existed = self.store.save_merged(mine, e.pending)
        if e.record.size() < mine.size():  # the file's reproducer is smaller: beat that now
            e.order = min(e.order, (e.record.size(), -1))
        if first:
            e.new = not existed
        e.pending = 0
        e.dirty = False
        e.flushed = time.monotonic()

    def _maybe_flush(self, force: bool = False) -> None:
        t = time.monotonic()
        for e in self.entries.values():
            if e.dirty and (force or t - e.flushed >= FLUSH_EVERY):
                self._save(e)

    # -- progress --------------------------------------------------------------------------

    def totals(self) -> tuple[int, int, dict[str, int]]:
        runs = decisions = 0
        by: dict[str, int] = {}
        for m in self.workers.values():
            runs += m["runs"]
            decisions += m["decisions"]
            for k, v in m["by_strategy"].items():
                by[k] = by.get(k, 0) + v
        return runs, decisions, by

    def _counts(self, field: str) -> dict[str, int]:
        """A per-worker counter of the progress messages, summed (sorted by key)."""
        out: dict[str, int] = {}
        for m in self.workers.values():
            for k, v in m.get(field, {}).items():
                out[k] = out.get(k, 0) + v
        return dict(sorted(out.items()))

    def op_counts(self) -> dict[str, int]:
        """Operations by kind over every run so far."""
        return self._counts("ops")

    def move_pages(self) -> dict[str, int]:
        """move_pages statuses over every run so far."""
        return self._counts("move_pages")

    def migrations(self) -> Migrations:
        out: Migrations = {}
        for m in self.workers.values():
            for k, (attempted, moved) in m.get("migrations", {}).items():
                tally = out.setdefault(k, [0, 0])
                tally[0] += attempted
                tally[1] += moved
        return out

    def _maybe_show(self, final: bool = False) -> None:
        if self.progress is None:
            return
        t = time.monotonic()
        if not final and t - self._shown < REFRESH_EVERY:
            return
        self._shown = t
        runs, _, _ = self.totals()
        el = t - self._start
        hits = sum(e.hits for e in self.entries.values())
        line = (f"[{el:7.1f}s] {runs:,} schedules  {runs / el if el > 0 else 0:,.0f}/s  "
                f"findings {len(self.entries)} (hits {hits})")
        if self.progress.isatty():
            pad = max(0, self._width - len(line))
            self._width = len(line)
            self.progress.write("\r" + line + " " * pad + ("\n" if final else ""))
        elif final or t - self._logged >= 10:
            self._logged = t
            self.progress.write(line + "\n")  # a log, not a terminal: one line per 10 s
        self.progress.flush()

    # -- driving ---------------------------------------------------------------------------

    def should_stop(self) -> bool:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self._stop = True
        return self._stop

    def run(self) -> Summary:
        self._start = time.monotonic()
        if self.cfg.seconds is not None:
            self._deadline = self._start + self.cfg.seconds
        jobs = self.cfg.jobs
        if self.cfg.runs is not None:
            jobs = max(1, min(jobs, self.cfg.runs))
        try:
            with self._ctrl_c():
                if jobs == 1:
                    self._run_inline()
                else:
                    self._run_pool(jobs)
        finally:
            self._maybe_flush(force=True)
            self._maybe_show(final=True)
        seconds = time.monotonic() - self._start  # the campaign's, not the labelling's
        if self.error is None:
            self.label_known_flaws()
        runs, decisions, by = self.totals()
        return Summary(
            self.cfg, runs, decisions, seconds, by,
            sorted(self.entries.values(), key=lambda e: (-e.hits, e.record.signature)),
            self.interrupted, self.error, list(self.store.warnings), self.op_counts(),
            self.migrations(), self.move_pages(),
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
        procs = [ctx.Process(target=_worker_main,
                             args=(self.cfg, w, jobs, q, stop, os.getpid()),
                             daemon=True, name=f"migfuzz-worker-{w}") for w in range(jobs)]
        for p in procs:
            if self.should_stop():  # --seconds counts from the start, starting included
                break
            p.start()
        started = [p for p in procs if p.pid is not None]
        for w in range(len(started), jobs):  # never started: nothing to wait for
            self.handle({"t": "done", "w": w, "runs": 0, "decisions": 0, "by_strategy": {}})
        try:
            while len(self.finished) < jobs:
                try:
                    try:
                        self.handle(q.get(timeout=0.1))
                    except _queue.Empty:
                        self._maybe_show()
                        for w, p in enumerate(started):  # a worker that died without a word
                            if w not in self.finished and not p.is_alive() and q.empty():
                                self.handle({"t": "error", "w": w, "runs": 0,
                                             "decisions": 0, "by_strategy": {}, "run": -1,
                                             "strategy": "-", "scenario": "-",
                                             "error": f"worker {w} exited with {p.exitcode}",
                                             "traceback": ""})
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


def default_jobs() -> int:
    return os.cpu_count() or 1
