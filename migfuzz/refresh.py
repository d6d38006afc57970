"""Known reproducers that survive a refactor: re-find a catalog bug whose saved schedule drifted.

A known reproducer (``corpus/known/<bug>.json``) is an exact schedule, and a harmless change
to the model (one more scheduling point in ``isolate_lru_page``) shifts every later decision:
the replay diverges or runs to a clean end. That is drift, not a regression. :func:`refind`
searches for the bug again, deterministically, with the bug injected: first the reproducer's
own (minimized) scenario by exhaustive DFS at preemption bounds 0..``REFIND_MAX_BOUND``, then the
catalog entry's canonical scenario under the entry's strategy from the fixed seeds
``REFIND_SEEDS``; the first run with the recorded signature is the new reproducer
(minimized, seed 0, when it came from the canonical scenario). Same commit, same result: no
clock is read.

Used by the gate (a drifted reproducer that is re-found passes with a warning and the
refreshed file) and by ``migfuzz repro --refresh`` (which rewrites the drifted file).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from stress import Finding, Outcome
from stress.run import run_scenario
from stress.scenarios import canonical
from stress.schedulers import RandomScheduler
from stress.workload import Scenario

from ._errors import FindingFileError, HarnessError
from .bugs import catalog, injected, least_bound
from .findings import FindingRecord, load, model_commit, trace_hash, write_atomic
from .minimize import NotReproducible, minimize
from .replay import confirm_record, replay_schedule
from .strategies import StrategySpec, make_scheduler, spec_for_run

REFIND_MAX_BOUND = 2
REFIND_MAX_EXECUTIONS = 5_000
"""Per bound, on the reproducer's own (minimized) scenario. Measured with one extra scheduling
point in isolate_lru_page: the five drifted reproducers are re-found at bound 1 or 2 within
166 executions."""

REFIND_SEEDS = tuple(range(100))
"""The strategy's runs on the catalog entry's canonical scenario (too big for exhaustive DFS),
tried when DFS of the reproducer's own scenario does not re-find the finding."""


def replay_drift(rec: FindingRecord, kinds: Sequence[str],
                 fixes: Sequence[str] | None = None) -> str | None:
    """None if the exact replay (bug injected, with ``fixes``, default the file's) still
    shows ``rec``'s finding, else what it shows instead, in one line ("diverges (...)",
    "ends cleanly", "detected as X")."""
    return _replay(rec, kinds, fixes)[0]


def _replay(rec: FindingRecord, kinds: Sequence[str],
            fixes: Sequence[str] | None = None) -> tuple[str | None, Outcome | None]:
    """:func:`replay_drift`, and the replay's outcome (its trace hash is the file's to keep)."""
    with injected(rec.bugs, rec.fixes if fixes is None else fixes):
        rep = replay_schedule(rec.scenario, rec.schedule, executor=rec.executor,
                              max_steps=rec.max_steps)
    f = None if rep.outcome is None else rep.outcome.finding
    if rep.divergence is not None:
        return f"diverges ({rep.divergence})", rep.outcome
    if f is None:
        return "ends cleanly", rep.outcome
    if f.signature != rec.signature or f.kind not in kinds:
        return f"detected as {f.signature}", rep.outcome
    return None, rep.outcome


def _search(scenario: Scenario, rec: FindingRecord,
            strategy: str) -> tuple[list[int], StrategySpec] | None:
    """The first run of the fixed search on ``scenario`` that shows ``rec``'s signature."""

    def want(f: Finding) -> bool:
        return f.signature == rec.signature

    if scenario is rec.scenario:
        dfs = least_bound(scenario, want, max_bound=REFIND_MAX_BOUND,
                          max_executions=REFIND_MAX_EXECUTIONS, executor=rec.executor,
                          max_steps=rec.max_steps)
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


def refind(rec: FindingRecord, source: str, fixes: Sequence[str] | None = None, *,
           scenario_name: str | None = None,
           strategy: str | None = None) -> FindingRecord | None:
    """A fresh reproducer of ``rec``'s finding (same signature: a re-search that finds
    something else has not re-found it), or None if the fixed search does not find it.
    Searched with ``fixes`` (default: the file's), which the fresh record then carries.

    The canonical scenario and strategy of the second search are the catalog entry's when
    ``rec`` records exactly one catalog bug (the gate checks this of corpus/known/); a flaw
    reproducer (corpus/flaws/) names its fix's scenario and a strategy instead.
    """
    if scenario_name is None or strategy is None:
        bug = catalog()[rec.bugs[0]]
        scenario_name, strategy = bug.scenario, bug.strategy
    fixes = list(rec.fixes if fixes is None else fixes)
    with injected(rec.bugs, fixes):
        for scenario in (rec.scenario, canonical(scenario_name)):
            hit = _search(scenario, rec, strategy)
            if hit is None:
                continue
            schedule, spec = hit
            try:
                fresh = confirm_record(
                    scenario, schedule, strategy=spec, executor=rec.executor, bugs=rec.bugs,
                    fixes=fixes, max_steps=rec.max_steps,
                    origin={"refreshed_from": source, "previous_origin": rec.origin,
                            "search": spec.describe()})
            except HarnessError:
                continue  # not exactly replayable: useless as a reproducer
            # The same finding file, refreshed: its history (first seen, hits, label) stays.
            found = dataclasses.replace(fresh, first_seen=rec.first_seen, hits=rec.hits,
                                        known_flaw=rec.known_flaw)
            if scenario is rec.scenario:
                return found  # already minimized; DFS gave the fewest preemptions
            try:
                return minimize(found, source=f"{source} (re-found)", seed=0)[0]
            except NotReproducible:
                return found
    return None


def retrace(rec: FindingRecord, outcome: Outcome) -> FindingRecord | None:
    """``rec`` with the trace of ``outcome`` (its exact replay, which showed its finding), or
    None if its recorded trace hash is that one already.

    A model change that leaves every decision in place can still change the trace (a new
    event, a renamed field): the file then reproduces exactly but ``migfuzz repro`` says
    "trace differs" forever. The decisions, history and origin stay; the trace hash, its
    step count and the model commit become today's.
    """
    fresh = trace_hash(outcome)
    if fresh == rec.trace_hash:
        return None
    return dataclasses.replace(rec, trace_hash=fresh, steps=outcome.steps,
                               model_commit=model_commit())


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
    drift, outcome = _replay(rec, tuple(cat[rec.bugs[0]].expected_kinds))
    if drift is None:
        assert outcome is not None  # it showed the finding
        retraced = retrace(rec, outcome)
        if retraced is None:
            return 0, f"{path}: replays exactly ({rec.signature}); unchanged"
        write_atomic(Path(path), retraced.dumps())
        return 0, (f"{path}: replays exactly ({rec.signature}) with a new trace "
                   f"(was {rec.trace_hash}, now {retraced.trace_hash}); trace re-recorded")
    fresh = refind(rec, path)
    if fresh is None:
        return 1, f"{path}: {drift}; {rec.bugs[0]} NOT re-found; unchanged"
    write_atomic(Path(path), fresh.dumps())
    return 0, (f"{path}: drift, re-found: {drift}; now {fresh.signature} by "
               f"{fresh.strategy.describe()}, {len(fresh.schedule)} decisions; rewritten")
