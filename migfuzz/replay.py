"""Exact replays of a finding, trace hashes, and the reproduce / fixed / drift verdict.

A traced replay records every timeline event (stress's ``trace=True``) plus one ``op`` event
when a task starts an operation of its program, so the timeline can say *what* each task was
doing. The trace hash is a hash of :attr:`stress.Outcome.trace_key` of such a replay: the
decisions, the step count, the finding and every event. Two replays of one input must give
the same hash; a finding file stores the hash of the replay made when it was saved, so a later
replay that differs is *drift* (the model changed), which is reported as such and never
silently as "fixed".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stress import Outcome
from stress.run import run_scenario
from stress.schedulers import Scheduler
from stress.workload import Scenario

from ._errors import FindingFileError, HarnessError, UsageError
from .bugs import injected
from .findings import FindingRecord, model_commit, now, trace_hash
from .strategies import (
    REBUILDABLE,
    StrategySpec,
    divergence_of,
    make_scheduler,
    replay_scheduler,
)


def run_traced(scenario: Scenario, scheduler: Scheduler, *, executor: str,
               max_steps: int) -> Outcome:
    """One traced execution (the scheduler's ``new_execution`` is called here)."""
    scheduler.new_execution()
    return run_scenario(scenario, scheduler, executor=executor, max_steps=max_steps, trace=True)


@dataclass
class Replay:
    """One replay of a recorded schedule: an outcome, or where the schedule stopped applying.

    ``exhausted`` says the divergence is the schedule *running out* after every recorded
    decision was followed: the recorded interleaving replayed in full, and the run went on.
    """

    outcome: Outcome | None
    divergence: str | None = None
    exhausted: bool = False

    @property
    def trace_hash(self) -> str | None:
        return None if self.outcome is None else trace_hash(self.outcome)

    @property
    def signature(self) -> str | None:
        o = self.outcome
        return None if o is None or o.finding is None else o.finding.signature


def replay_schedule(scenario: Scenario, schedule: Sequence[int], *, executor: str,
                    max_steps: int, trace: bool = True) -> Replay:
    """Replay ``schedule`` exactly; a ScheduleDivergence becomes ``Replay.divergence``.

    The caller injects the bugs. Any other harness error propagates.
    """
    sched = replay_scheduler(schedule)
    try:
        if trace:
            outcome = run_traced(scenario, sched, executor=executor, max_steps=max_steps)
        else:
            sched.new_execution()
            outcome = run_scenario(scenario, sched, executor=executor, max_steps=max_steps)
    except Exception as exc:  # StressInternalError wrapping the divergence, or itself
        div = divergence_of(exc)
        if div is None:
            raise
        return Replay(None, str(div) or type(div).__name__,
                      exhausted=bool(getattr(sched, "finished", False)))
    return Replay(outcome)


def confirm_record(scenario: Scenario, schedule: Sequence[int], *, strategy: StrategySpec,
                   executor: str, bugs: Sequence[str], fixes: Sequence[str], max_steps: int,
                   origin: dict[str, Any], signature: str | None = None,
                   what: str = "the finding") -> FindingRecord:
    """The finding file's record of the run that took ``schedule``: the one path from an
    outcome to a file (campaign, gate, fuzz).

    The record is built from a traced exact replay, whose hash the file keeps, so the file
    is checked to reproduce before it exists. The caller injects ``bugs`` and ``fixes``.

    Raises:
        HarnessError: the replay diverges, ends without a finding, with another signature
            than ``signature`` (when given), or after other decisions: the file would not
            reproduce what was found, a harness bug, never a finding.
    """
    rep = replay_schedule(scenario, schedule, executor=executor, max_steps=max_steps)
    o = rep.outcome
    if (o is None or o.finding is None or o.schedule != list(schedule)
            or signature not in (None, o.finding.signature)):
        raise HarnessError(f"{what}: the traced exact replay of its {len(schedule)} decisions "
                           f"does not reproduce it ({rep.divergence or 'different outcome'})")
    return FindingRecord.from_outcome(scenario, o, strategy=strategy, executor=executor,
                                      bugs=bugs, fixes=fixes, max_steps=max_steps,
                                      origin=origin, stamp=now(), commit=model_commit())


class ContinueScheduler:
    """Follow a schedule, then keep the current task running (the lowest runnable one when
    it cannot run): how a replay goes on past the end of its recording."""

    def __init__(self, schedule: Sequence[int]) -> None:
        self.schedule = list(schedule)
        self.i = 0

    def new_execution(self) -> bool:
        self.i = 0
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        i, self.i = self.i, self.i + 1
        if i < len(self.schedule) and self.schedule[i] in runnable:
            return self.schedule[i]
        if current is not None and current in runnable and not yielding:
            return current
        return next((t for t in runnable if t != current), runnable[0])


@dataclass
class Verdict:
    """What ``migfuzz repro`` concludes about one finding file.

    status:
        ``reproduced``: the exact replay gives the same signature (exit 1).
        ``drift-reproduced``: the recorded schedule no longer applies, but the recorded
        strategy and seed, re-run on today's model, find the same signature (exit 1).
        ``fixed``: the recorded interleaving replays in full and the finding is gone (exit 0).
        ``drift``: the schedule no longer applies and the re-search does not find it: the
        model changed, and nothing can be concluded (exit 0, loudly).
    """

    record: FindingRecord
    executor: str
    first: Replay
    second: Replay
    status: str = ""
    notes: list[str] = field(default_factory=list)
    continued: Outcome | None = None  # the run past the end of the recording (``fixed``)
    research: Outcome | None = None  # the recorded strategy re-run (on drift)

    @property
    def reproduced(self) -> bool:
        return self.status in ("reproduced", "drift-reproduced")

    @property
    def deterministic(self) -> bool:
        return (self.first.trace_hash, self.first.divergence) == (
            self.second.trace_hash, self.second.divergence)

    @property
    def trace_matches(self) -> bool:
        return self.first.trace_hash == self.record.trace_hash

    @property
    def shown(self) -> Outcome | None:
        """The traced run the timeline shows."""
        return self.first.outcome or self.continued or self.research


def _ended(outcome: Outcome) -> str:
    f = outcome.finding
    return "cleanly" if f is None else f"with a different finding: {f.signature}"


def _replays(record: FindingRecord, ex: str) -> Verdict:
    """Two exact replays of ``record`` on ``ex`` (with its bugs and fixes), and on divergence
    the run continued past the recording and the recorded strategy re-run: what
    :func:`check` judges."""
    with injected(record.bugs, record.fixes):
        first = replay_schedule(record.scenario, record.schedule, executor=ex,
                                max_steps=record.max_steps)
        second = replay_schedule(record.scenario, record.schedule, executor=ex,
                                 max_steps=record.max_steps)
        v = Verdict(record, ex, first, second)
        if first.divergence is not None and first.exhausted:
            v.continued = run_traced(record.scenario, ContinueScheduler(record.schedule),
                                     executor=ex, max_steps=record.max_steps)
        if first.divergence is not None and record.strategy.name in REBUILDABLE:
            try:
                sched = make_scheduler(record.strategy)
            except (UsageError, ValueError):
                sched = None
            if sched is not None:
                v.research = run_traced(record.scenario, sched, executor=ex,
                                        max_steps=record.max_steps)
    return v


def _judge_not_reproduced(v: Verdict, used: int | None, model_note: str) -> bool:
    """The verdict of a replay that does not reproduce ``v.record`` exactly: fixed,
    drift-reproduced or drift, with its note; whether it is "fixed"."""
    record, first = v.record, v.first

    def same(o: Outcome | None) -> bool:
        return o is not None and o.finding is not None and (
            o.finding.signature == record.signature)

    searched = ("" if v.research is None else
                f"; {record.strategy.describe()} re-run on today's model ends "
                f"{_ended(v.research)}")
    if first.divergence is None:
        assert first.outcome is not None
        v.status = "fixed"
        took = (f"replays exactly ({len(record.schedule)} decisions) and the run"
                if used == len(record.schedule) else
                f"replays, and the run, taking only {used} of its {len(record.schedule)} "
                "decisions,")
        v.notes.append(f"the recorded schedule {took} ends {_ended(first.outcome)}; "
                       f"{model_note}")
    elif same(v.continued) or same(v.research):
        v.status = "drift-reproduced"
        how = ("all recorded decisions replay, and the run continued past the recording "
               "(without preemption) hits it later" if same(v.continued) else
               f"{record.strategy.describe()} re-run on today's model finds it")
        v.notes.append(f"DRIFT: the recorded schedule does not reproduce the finding "
                       f"({first.divergence}), but the same signature still shows: {how}; "
                       f"{model_note}")
        return False
    elif v.continued is not None:
        assert first.divergence is not None
        v.status = "fixed"
        v.notes.append(f"all {len(record.schedule)} recorded decisions replay exactly and the "
                       f"finding does not fire; the run needs more decisions than were "
                       f"recorded, and continued without preemption it ends "
                       f"{_ended(v.continued)}{searched}; {model_note}")
    else:
        v.status = "drift"
        v.notes.append(f"DRIFT: the recorded schedule no longer applies "
                       f"({first.divergence}){searched}; {model_note}. The model changed: "
                       "this is not evidence of a fix")
        return False
    return True


def check(record: FindingRecord, executor: str | None = None,
          source: str = "<finding>") -> Verdict:
    """Replay ``record`` twice (with its bugs) and judge: reproduced, fixed, or drift.

    A recording ends where its finding fired: a replay that reproduces the finding with
    recorded decisions left over means decisions were added to the file (padded or edited),
    :class:`FindingFileError` naming ``source``, never a verdict.
    """
    v = _replays(record, executor or record.executor)
    first, second = v.first, v.second
    commit = model_commit()
    model_note = (f"recorded at model commit {record.model_commit}, now {commit}"
                  if record.model_commit != commit else f"model commit {commit} unchanged")
    if not v.deterministic:
        v.notes.append(
            f"NON-DETERMINISM: two replays of the same input differ (trace "
            f"{first.trace_hash or first.divergence} vs {second.trace_hash or second.divergence})"
            ": a harness or model bug; please report it")
    used = None if first.outcome is None else len(first.outcome.schedule)
    if used is not None and used < len(record.schedule) and (
            first.signature == record.signature):
        raise FindingFileError(source, f"field schedule: the finding fires after {used} of its "
                                       f"{len(record.schedule)} decisions: the schedule was "
                                       "padded or edited")
    if first.divergence is None and first.signature == record.signature:
        v.status = "reproduced"
        if not v.trace_matches:
            v.notes.append(f"DRIFT: same finding, but the trace differs from the recorded one "
                           f"({first.trace_hash} vs {record.trace_hash}); {model_note}")
        return v
    if _judge_not_reproduced(v, used, model_note) and record.model_commit == commit:
        v.notes.append("the model commit is unchanged, yet the finding is gone: look for "
                       "uncommitted changes, an edited file, or non-determinism")
    return v
