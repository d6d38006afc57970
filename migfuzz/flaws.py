"""Known flaws of V2 as posted: which finding a known flaw explains, decided by execution.

The default model is the Swapless V2 code as posted, flaws included (``target/fixes``), so a
campaign on it finds those flaws; they are known, and must not read as new bugs. A finding is
*explained* by the flaw that ``fix`` removes when, with ``fix`` added to the run's fixes:

1. the finding's recorded schedule replays in full and the finding is gone; or
2. the replay diverges (the fix changed the code path, so the recorded decisions no longer
   fit), and with the fix neither the recorded decisions followed while they apply (then no
   preemption) nor the finding's own scenario and strategy re-run for :data:`RERUN_SEEDS`
   seeds show the signature. How often the same re-runs show it *without* the fix is
   reported beside the label; for a campaign's finding it must be at least 1 (its own seed),
   else the re-runs say nothing. A minimized reproducer's scenario is often found only by
   its recorded interleaving, so for those the count may be 0.

Limit: a rare race that a fix's changed code path makes the recorded schedule miss, and that
8 seeds do not hit again with the fix, would be labelled; the kind filter below and the
with/without counts printed beside every such label are the guard.

A name match (same kind, same function) would be a guess: two flaws share a kind, and a new
bug can show with a flaw's kind. Only the fixes whose ``finding_kinds`` include the finding's
kind are tried (a fix's declared kinds are how its flaw shows), fewest fixes added first, so
that a fix built on another does not take the credit for the earlier one.

    finding (kind K, fixes R) --> for F in FIXES with K in F.finding_kinds, F not in R:
        replay schedule with R + F --- replays, finding gone ---------> explained by F
                                   \\-- replays, same signature -------> not F
                                   \\-- diverges --> with F: recorded decisions then no
                                         preemption, and seeds s..s+7 re-run:
                                         never the signature ---------> explained by F
"""

from __future__ import annotations

from dataclasses import replace

from stress.run import run_scenario
from target.fixes import FIXES, UpstreamFix, expand

from .bugs import injected
from .findings import FindingRecord, KnownFlaw
from .replay import ContinueScheduler, replay_schedule
from .strategies import REBUILDABLE, StrategySpec, make_scheduler

RERUN_SEEDS = 8
"""Seeds of the re-run when the replay diverges: the finding's own seed and the next ones."""


def candidates(record: FindingRecord) -> list[UpstreamFix]:
    """The fixes that could explain ``record``: not applied yet, declaring its kind."""
    applied = set(record.fixes)
    found = [f for f in FIXES.values()
             if f.name not in applied and record.kind in f.finding_kinds]
    return sorted(found, key=lambda f: (len(expand([*applied, f.name])), f.name))


def _signature_seen(record: FindingRecord, fixes: list[str]) -> int:
    """How many of the re-run seeds find ``record``'s signature with ``fixes``."""
    seen = 0
    with injected(record.bugs, fixes):
        for i in range(RERUN_SEEDS):
            spec = replace(record.strategy, seed=record.strategy.seed + i)
            try:
                sched = make_scheduler(spec)
            except ValueError:  # a minimized or fuzz record: the plain random walk
                sched = make_scheduler(StrategySpec("random", spec.seed))
            sched.new_execution()
            out = run_scenario(record.scenario, sched, executor=record.executor,
                               max_steps=record.max_steps)
            if out.finding is not None and out.finding.signature == record.signature:
                seen += 1
    return seen


def explained_by(record: FindingRecord, fix: UpstreamFix) -> str | None:
    """How adding ``fix`` removes ``record``'s finding, or None if it does not."""
    fixes = sorted(expand([*record.fixes, fix.name]))
    with injected(record.bugs, fixes):
        rep = replay_schedule(record.scenario, record.schedule, executor=record.executor,
                              max_steps=record.max_steps, trace=False)
    if rep.divergence is None:
        assert rep.outcome is not None
        if rep.signature == record.signature:
            return None
        f = rep.outcome.finding
        end = "cleanly" if f is None else f"with {f.signature}"
        return (f"with {fix.name} the recorded schedule replays in full and ends {end}")
    with injected(record.bugs, fixes):
        cont = run_scenario(record.scenario, ContinueScheduler(record.schedule),
                            executor=record.executor, max_steps=record.max_steps)
    if cont.finding is not None and cont.finding.signature == record.signature:
        return None
    if _signature_seen(record, fixes):
        return None
    without_fix = _signature_seen(record, list(record.fixes))
    if not without_fix and record.strategy.name in REBUILDABLE:
        # A campaign's own strategy and seed found it: if they no longer do even without
        # the fix, the re-runs say nothing about the fix.
        return None
    first = record.strategy.seed
    return (f"with {fix.name} the recorded schedule diverges (the code path changed); with "
            f"the fix neither its decisions (then no preemption) nor {record.strategy.name} "
            f"seeds {first}..{first + RERUN_SEEDS - 1} show it (without the fix those seeds "
            f"show it {without_fix}/{RERUN_SEEDS} times)")


def explain(record: FindingRecord) -> KnownFlaw | None:
    """The known flaw that explains ``record``, decided by execution; None for a new finding."""
    for fix in candidates(record):
        how = explained_by(record, fix)
        if how is not None:
            return KnownFlaw(fix.name, fix.label(), how)
    return None
