"""Known reproducers that survive a refactor: re-find a catalog bug whose saved schedule drifted.

A known reproducer (``corpus/known/<bug>.json``) is an exact schedule, and a harmless change
to the model (one more scheduling point in ``isolate_lru_page``) shifts every later decision:
the replay diverges or runs to a clean end. That is drift, not a regression. :func:`refind`
searches for the bug again, deterministically, with the bug injected: first the reproducer's
own (minimized) scenario by exhaustive DFS at preemption bounds 0..``DFS_MAX_BOUND``, then the
catalog entry's canonical scenario under the entry's strategy from the fixed seeds
``REFIND_SEEDS``; the first run with the recorded signature is the new reproducer
(minimized, seed 0, when it came from the canonical scenario). Same commit, same result: no
clock is read.

Used by the gate (a drifted reproducer that is re-found passes with a warning and the
refreshed file) and by ``migfuzz repro --refresh`` (which rewrites the drifted file).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stress import Finding, Outcome
from stress._execution import DEFAULT_MAX_STEPS
from stress.run import run_scenario
from stress.scenarios import canonical
from stress.schedulers import DFSScheduler, RandomScheduler
from stress.workload import Scenario

from . import __version__
from ._errors import FindingFileError
from .bugs import catalog, injected
from .findings import FindingRecord, load, model_commit, now, write_atomic
from .minimize import NotReproducible, minimize
from .replay import replay_schedule, trace_hash
from .strategies import StrategySpec, make_scheduler, spec_for_run

DFS_MAX_BOUND = 2
DFS_MAX_EXECUTIONS = 5_000
"""Per bound, on the reproducer's own (minimized) scenario. Measured with one extra scheduling
point in isolate_lru_page: the five drifted reproducers are re-found at bound 1 or 2 within
166 executions."""

REFIND_SEEDS = tuple(range(100))
"""The strategy's runs on the catalog entry's canonical scenario (too big for exhaustive DFS),
tried when DFS of the reproducer's own scenario does not re-find the finding."""


def replay_drift(rec: FindingRecord, kinds: Sequence[str]) -> str | None:
    """None if the exact replay (bug injected) still shows ``rec``'s finding, else what it
    shows instead, in one line ("diverges (...)", "ends cleanly", "detected as X")."""
    with injected(rec.bugs):
        rep = replay_schedule(rec.scenario, rec.schedule, executor=rec.executor,
                              max_steps=rec.max_steps)
    f = None if rep.outcome is None else rep.outcome.finding
    if rep.divergence is not None:
        return f"diverges ({rep.divergence})"
    if f is None:
        return "ends cleanly"
    if f.signature != rec.signature or f.kind not in kinds:
        return f"detected as {f.signature}"
    return None


@dataclass(frozen=True)
class DfsResult:
    """The least preemption bound at which exhaustive DFS of a scenario shows a finding."""

    bound: int | None  # None: not found within the bounds tried
    executions: int  # at that bound (or in all bounds tried, if not found)
    outcome: Outcome | None  # the first run that showed it
    exhaustive: bool  # every bound below ``bound`` (all tried, if not found) was exhausted


def least_bound(scenario: Scenario, want: Callable[[Finding], bool], *,
                max_bound: int = DFS_MAX_BOUND, max_executions: int = DFS_MAX_EXECUTIONS,
                executor: str = "direct",
                max_steps: int = DEFAULT_MAX_STEPS) -> DfsResult:
    """Exhaustive preemption-bounded DFS of ``scenario`` at bounds 0, 1, ... ``max_bound``
    until a run shows a finding ``want`` accepts (the caller injects the bugs). Bound 0 is every
    run-to-completion order (a task switch only where a task blocks or ends)."""
    total = 0
    exhaustive = True
    for bound in range(max_bound + 1):
        sched = DFSScheduler(bound, max_executions=max_executions)
        n = 0
        while sched.new_execution():
            n += 1
            out = run_scenario(scenario, sched, executor=executor, max_steps=max_steps)
            if out.finding is not None and want(out.finding):
                return DfsResult(bound, n, out, exhaustive)
        total += n
        exhaustive = exhaustive and sched.exhausted
    return DfsResult(None, total, None, exhaustive)


def _search(scenario: Scenario, rec: FindingRecord,
            strategy: str) -> tuple[list[int], StrategySpec] | None:
    """The first run of the fixed search on ``scenario`` that shows ``rec``'s signature."""

    def want(f: Finding) -> bool:
        return f.signature == rec.signature

    if scenario is rec.scenario:
        dfs = least_bound(scenario, want, executor=rec.executor, max_steps=rec.max_steps)
        if dfs.outcome is None:
            return None
        return list(dfs.outcome.schedule), StrategySpec(
            "dfs", 0, {"preemption_bound": dfs.bound, "execution": dfs.executions})
    probe = RandomScheduler(0)  # PCT's k estimate, as the campaign makes it
    probe.new_execution()
    hint = max(1, len(run_scenario(scenario, probe, executor="direct",
                                   max_steps=rec.max_steps).schedule))
    for seed in REFIND_SEEDS:
        spec = spec_for_run(strategy, seed, 0, pct_hint=hint)
        sched = make_scheduler(spec)
        sched.new_execution()
        out = run_scenario(scenario, sched, executor=rec.executor, max_steps=rec.max_steps)
        if out.finding is not None and want(out.finding):
            return list(out.schedule), spec
    return None


def refind(rec: FindingRecord, source: str) -> FindingRecord | None:
    """A fresh reproducer of ``rec``'s finding (same signature: a re-search that finds
    something else has not re-found it), or None if the fixed search does not find it.

    ``rec`` must record exactly one catalog bug (the gate checks this of corpus/known/).
    """
    bug = catalog()[rec.bugs[0]]
    with injected(rec.bugs):
        for scenario in (rec.scenario, canonical(bug.scenario)):
            hit = _search(scenario, rec, bug.strategy)
            if hit is None:
                continue
            schedule, spec = hit
            rep = replay_schedule(scenario, schedule, executor=rec.executor,
                                  max_steps=rec.max_steps)
            o = rep.outcome
            if o is None or o.finding is None:
                continue  # not exactly replayable: useless as a reproducer
            f = o.finding
            found = dataclasses.replace(
                rec, signature=f.signature, kind=f.kind, message=f.message,
                function=f.function, task=f.task, step=f.step, details=f.details,
                scenario=scenario, strategy=spec, schedule=schedule, steps=o.steps,
                trace_hash=trace_hash(o), model_commit=model_commit(), last_seen=now(),
                tool_version=__version__,
                origin={"refreshed_from": source, "previous_origin": rec.origin,
                        "search": spec.describe()})
            if scenario is rec.scenario:
                return found  # already minimized; DFS gave the fewest preemptions
            try:
                return minimize(found, source=f"{source} (re-found)", seed=0)[0]
            except NotReproducible:
                return found
    return None


def refresh_file(path: str) -> tuple[int, str]:
    """``migfuzz repro --refresh``: (exit status, one line) for one known reproducer.

    0: it replays exactly (left alone) or it drifted and was re-found (rewritten, atomically);
    1: it drifted and the bug cannot be re-found (left alone).

    Raises:
        FindingFileError: not a finding file, or not a reproducer of exactly one catalog bug.
    """
    rec = load(path)
    cat = catalog()
    if len(rec.bugs) != 1 or rec.bugs[0] not in cat:
        raise FindingFileError(path, f"records bugs {rec.bugs}: --refresh re-finds a known "
                               "reproducer of exactly one catalog bug")
    drift = replay_drift(rec, tuple(cat[rec.bugs[0]].expected_kinds))
    if drift is None:
        return 0, f"{path}: replays exactly ({rec.signature}); unchanged"
    fresh = refind(rec, path)
    if fresh is None:
        return 1, f"{path}: {drift}; {rec.bugs[0]} NOT re-found; unchanged"
    write_atomic(Path(path), fresh.dumps())
    return 0, (f"{path}: drift, re-found: {drift}; now {fresh.signature} by "
               f"{fresh.strategy.describe()}, {len(fresh.schedule)} decisions; rewritten")
