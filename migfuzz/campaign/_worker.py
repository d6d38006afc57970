"""A worker's share of a campaign: runs ``w, w + N, ...``, reported as messages."""

from __future__ import annotations

import itertools
import signal
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from stress import Outcome
from stress.run import run_scenario
from stress.workload import Scenario

from .._errors import caused_by_ctrl_c
from .._procs import die_with_parent, parent_gone
from ..bugs import injected
from ..findings import FindingRecord, dedup_key
from ..replay import confirm_record
from ..strategies import EXHAUSTIVE, StrategySpec, make_scheduler
from ._messages import Found, Hit, Message, Migrations, Progress, WorkerError
from ._plan import CampaignConfig, plan_run

PROGRESS_EVERY = 0.2  # seconds between a worker's progress messages

Order = tuple[tuple[int, int, int], int]
"""A reproducer's place in the total order of the campaign: ((tasks, ops, decisions), run)."""


def make_record(cfg: CampaignConfig, run: int, scenario: Scenario, spec: StrategySpec,
                schedule: list[int]) -> FindingRecord:
    """The finding of run ``run`` as a record (``replay.confirm_record``; HarnessError if its
    schedule does not reproduce it). The parent stamps it when it arrives."""
    return confirm_record(
        scenario, schedule, strategy=spec, executor=cfg.executor, bugs=cfg.bugs,
        fixes=cfg.fixes, max_steps=cfg.max_steps, what=f"run {run} ({spec.describe()})",
        origin={"campaign_seed": cfg.seed, "run": run, "strategy": cfg.strategy,
                "portfolio": list(cfg.members), "scenario": cfg.scenario or "mixed"})


@dataclass
class _Tally:
    """A worker's counters (what its :class:`Progress` messages carry)."""

    worker: int
    runs: int = 0
    decisions: int = 0
    by_strategy: dict[str, int] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)  # what the scenarios run exercised
    migrations: Migrations = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)  # move_pages statuses

    def add(self, scenario: Scenario, spec: StrategySpec, outcome: Outcome) -> None:
        self.runs += 1
        self.decisions += len(outcome.schedule)
        self.by_strategy[spec.name] = self.by_strategy.get(spec.name, 0) + 1
        for task in scenario.tasks:
            for op in task.ops:
                self.ops[str(op[0])] = self.ops.get(str(op[0]), 0) + 1
        for status, n in outcome.move_pages.items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        attempted, moved = outcome.migrations
        if attempted:
            for key in (f"strategy:{spec.name}", f"scenario:{scenario.name.split(':')[0]}"):
                tally = self.migrations.setdefault(key, [0, 0])
                tally[0] += attempted
                tally[1] += moved

    def progress(self, done: bool = False) -> Progress:
        return Progress(self.worker, self.runs, self.decisions, dict(self.by_strategy),
                        dict(self.ops), {k: list(v) for k, v in self.migrations.items()},
                        dict(self.statuses), done)


def _run_one(cfg: CampaignConfig, k: int, wid: int, best: dict[str, Order],
             sink: Callable[[Message], None]) -> tuple[Scenario, StrategySpec, Outcome]:
    """Run ``k``; its finding, if any, sent as a :class:`Found` (a smaller reproducer than
    this worker sent for its key: one traced replay) or a bare :class:`Hit`."""
    scenario, spec = plan_run(cfg, k)
    sched = make_scheduler(spec)
    sched.new_execution()
    outcome = run_scenario(scenario, sched, executor=cfg.executor, max_steps=cfg.max_steps)
    # An exhaustive strategy's run is its search: on until a finding or its end.
    while (spec.name in EXHAUSTIVE and outcome.finding is None
           and sched.new_execution()):
        outcome = run_scenario(scenario, sched, executor=cfg.executor,
                               max_steps=cfg.max_steps)
    f = outcome.finding
    if f is not None:
        key = dedup_key(f.signature, list(cfg.bugs), cfg.fixes)
        order = ((*scenario.size(), len(outcome.schedule)), k)
        if key not in best or order < best[key]:
            best[key] = order
            rec = make_record(cfg, k, scenario, spec, outcome.schedule)
            sink(Found(wid, k, key, spec.name, rec))
        else:
            sink(Hit(wid, k, key, spec.name))
    return scenario, spec, outcome


def worker_loop(cfg: CampaignConfig, wid: int, jobs: int, sink: Callable[[Message], None],
                should_stop: Callable[[], bool], runs: Iterable[int] | None = None) -> None:
    """Worker ``wid``'s share of the campaign, runs ``wid, wid + jobs, ...`` (or ``runs``:
    a cluster's batch); reports through ``sink``."""
    tally = _Tally(wid)
    best: dict[str, Order] = {}
    last = time.monotonic()
    if runs is None:
        runs = itertools.count(wid, jobs) if cfg.runs is None else range(wid, cfg.runs, jobs)
    first = True
    final = True
    try:
        with injected(cfg.bugs, cfg.fixes):
            # Every worker does at least one run, however late it starts: a time box that
            # ends before a loaded machine starts a worker then yields a run, not nothing.
            for k in runs:
                if not first and should_stop():
                    break
                first = False
                try:
                    tally.add(*_run_one(cfg, k, wid, best, sink))
                except OSError:  # the model does no I/O: writing a finding failed (disk full)
                    final = False
                    raise
                except Exception as exc:  # a harness error: stop, with what reproduces it
                    if caused_by_ctrl_c(exc):
                        raise KeyboardInterrupt from exc
                    final = False
                    sink(_error(cfg, k, tally.progress(done=True), exc))
                    return
                t = time.monotonic()
                if t - last >= PROGRESS_EVERY:
                    last = t
                    sink(tally.progress())
    finally:
        # Also on KeyboardInterrupt (--jobs 1): the runs completed so far are counted.
        if final:
            sink(tally.progress(done=True))


def _error(cfg: CampaignConfig, k: int, progress: Progress, exc: Exception) -> WorkerError:
    """The report of run ``k``'s harness error, naming its strategy and scenario (planning a
    run is deterministic and raised nothing the first time, so it is planned again here)."""
    tb = traceback.format_exc()
    try:
        scenario, spec = plan_run(cfg, k)
        strategy, name = spec.describe(), scenario.name
    except Exception:  # planning itself failed: the run is all there is to name
        strategy, name = f"run {k}", "?"
    return WorkerError(progress, k, strategy, name, f"{type(exc).__name__}: {exc}", tb)


def worker_main(cfg: CampaignConfig, wid: int, jobs: int, q: Any, stop: Any,
                parent: int) -> None:
    """The body of worker process ``wid``: :func:`worker_loop` into the queue ``q``."""
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
        q.put(WorkerError(Progress(wid, done=True), -1, "-", "-",
                          f"{type(exc).__name__}: {exc}", traceback.format_exc()))
