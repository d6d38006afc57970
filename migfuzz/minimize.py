"""Shrink a finding: fewer tasks, operations and prefaulted pages, then fewer preemptions.

The test for every candidate is "the same signature still reproduces". A candidate input is a
scenario plus a *hint* schedule, and it is tried three ways, cheapest first:

1. an exact replay of the hint (``ReplayScheduler``); a ``ScheduleDivergence`` (the removed
   operation changed which tasks can run) means "not this way";
2. a guided replay (:class:`GuidedScheduler`): follow the hint while its choice can run, then
   keep running the current task (or, when it cannot run, the lowest runnable one);
3. a re-search: ``search_runs`` fresh runs of random / PCT on the smaller scenario.

The first that reproduces gives the candidate's exact schedule (the decisions it recorded).
Scenario passes delete chunks of tasks, operations, processes and prefault stores (halving
chunk sizes, as Hypothesis's shrinker and Zeller's ddmin do). The schedule pass then removes
preemptions: for each preemption, last first, try "prefix up to it, then never preempt", then
"only this decision flipped to the current task"; a candidate is kept only if it has fewer
preemptions (or as many and fewer decisions), so the pass terminates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from stress.run import run_scenario
from stress.workload import (
    Op,
    ProcessSpec,
    Scenario,
    ScenarioError,
    TaskSpec,
    execution_task_names,
    validate,
)

from . import __version__
from .bugs import injected
from .findings import FindingRecord, model_commit, now
from .replay import replay_schedule
from .strategies import (
    BASE_STRATEGIES,
    StrategySpec,
    make_scheduler,
    spec_for_run,
)

Decision = tuple[tuple[int, ...], int | None, bool, int]  # runnable, current, yielding, chosen


class GuidedScheduler:
    """Follow ``choices`` while the choice is runnable, then run without preempting.

    After the prefix (or where its choice cannot run) the current task keeps running; when it
    cannot (it blocked, finished, or asked to yield), the lowest runnable tid runs. Records
    every decision, so the caller can count preemptions.
    """

    def __init__(self, choices: Sequence[int]) -> None:
        self.choices = list(choices)
        self.log: list[Decision] = []

    def new_execution(self) -> bool:
        self.log = []
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        i = len(self.log)
        if i < len(self.choices) and self.choices[i] in runnable:
            tid = self.choices[i]
        elif current is not None and current in runnable and not yielding:
            tid = current
        else:
            others = [t for t in runnable if t != current]
            tid = others[0] if others else runnable[0]
        self.log.append((tuple(runnable), current, yielding, tid))
        return tid


def preemptions(log: Sequence[Decision]) -> list[int]:
    """Indices of the decisions that switched away from a runnable, non-yielding task."""
    return [i for i, (runnable, cur, yielding, tid) in enumerate(log)
            if cur is not None and cur in runnable and tid != cur and not yielding]


@dataclass(frozen=True)
class Sizes:
    tasks: int
    ops: int
    decisions: int
    preemptions: int

    def __str__(self) -> str:
        return (f"{self.tasks} tasks, {self.ops} ops, {self.decisions} decisions, "
                f"{self.preemptions} preemptions")

    def to_json(self) -> dict[str, int]:
        return {"tasks": self.tasks, "ops": self.ops, "decisions": self.decisions,
                "preemptions": self.preemptions}


@dataclass
class Candidate:
    scenario: Scenario
    schedule: list[int]
    log: list[Decision]

    def sizes(self) -> Sizes:
        tasks, ops = self.scenario.size()
        return Sizes(tasks, ops, len(self.schedule), len(preemptions(self.log)))


class NotReproducible(Exception):
    """The finding does not reproduce to begin with: nothing to minimize."""


class Minimizer:
    """Shrinks one finding record; run under the record's bugs (see :func:`minimize`)."""

    def __init__(self, record: FindingRecord, *, search_runs: int = 12, seed: int = 0,
                 executor: str = "direct",
                 log: Callable[[str], None] | None = None) -> None:
        self.record = record
        self.signature = record.signature
        self.search_runs = search_runs
        self.seed = seed
        self.executor = executor
        self.max_steps = record.max_steps
        self.tries = 0
        self.members = BASE_STRATEGIES
        self._log = log or (lambda _: None)

    # -- the test ----------------------------------------------------------------------------

    def _guided(self, scenario: Scenario, choices: Sequence[int]) -> Candidate | None:
        sched = GuidedScheduler(choices)
        sched.new_execution()
        self.tries += 1
        out = run_scenario(scenario, sched, executor=self.executor, max_steps=self.max_steps)
        if out.finding is not None and out.finding.signature == self.signature:
            return Candidate(scenario, list(out.schedule), list(sched.log))
        return None

    def attempt(self, scenario: Scenario, hint: Sequence[int]) -> Candidate | None:
        """The candidate's exact schedule if ``scenario`` still shows the finding."""
        try:
            validate(scenario)
        except ScenarioError:
            return None
        self.tries += 1
        rep = replay_schedule(scenario, hint, executor=self.executor,
                              max_steps=self.max_steps, trace=False)
        if rep.signature == self.signature:  # a divergence leaves rep.outcome None
            return self._guided(scenario, hint)  # same decisions, plus the preemptions
        found = self._guided(scenario, hint)
        if found is not None:
            return found
        for j in range(self.search_runs):
            spec = spec_for_run("portfolio", self.seed * 1000 + j, j, self.members,
                                len(hint) or None)
            sched = make_scheduler(spec)
            sched.new_execution()
            self.tries += 1
            out = run_scenario(scenario, sched, executor=self.executor,
                               max_steps=self.max_steps)
            if out.finding is not None and out.finding.signature == self.signature:
                return self._guided(scenario, out.schedule)
        return None

    # -- scenario passes ---------------------------------------------------------------------

    def _shrink(self, best: Candidate, units: list[Any],
                build: Callable[[list[Any]], tuple[Scenario, list[int]] | None]) -> Candidate:
        """Delete chunks of ``units`` (halving sizes) while the finding reproduces."""
        k = max(1, len(units) // 2)
        while k >= 1 and units:
            i = 0
            while i < len(units):
                cand_units = units[:i] + units[i + k:]
                built = build(cand_units)
                found = self.attempt(*built) if built is not None else None
                if found is not None:
                    units, best = cand_units, found
                else:
                    i += 1
            k //= 2
        return best

    def shrink_ops(self, best: Candidate) -> Candidate:
        """Operations (and so tasks: a task left with no operation is dropped)."""
        sc = best.scenario
        units = [(ti, op) for ti, t in enumerate(sc.tasks) for op in t.ops]
        hint = best.schedule

        def build(kept: list[tuple[int, Op]]) -> tuple[Scenario, list[int]] | None:
            progs: dict[int, list[Op]] = {}
            for ti, op in kept:
                progs.setdefault(ti, []).append(op)
            old = sorted(progs)
            if not old:
                return None
            tasks = [TaskSpec(sc.tasks[ti].name, progs[ti]) for ti in old]
            return replace(sc, tasks=tasks), remap(hint, old + irq_tid(sc))

        return self._shrink(best, units, build)

    def shrink_tasks(self, best: Candidate) -> Candidate:
        sc = best.scenario
        hint = best.schedule

        def build(kept: list[int]) -> tuple[Scenario, list[int]] | None:
            if not kept:
                return None
            return (replace(sc, tasks=[sc.tasks[i] for i in kept]),
                    remap(hint, kept + irq_tid(sc)))

        return self._shrink(best, list(range(len(sc.tasks))), build)

    def shrink_processes(self, best: Candidate) -> Candidate:
        sc = best.scenario
        hint = best.schedule

        def build(kept: list[int]) -> tuple[Scenario, list[int]] | None:
            return replace(sc, processes=[sc.processes[i] for i in kept]), hint

        best = self._shrink(best, list(range(len(sc.processes))), build)
        sc = best.scenario
        hint = best.schedule
        units = [(pi, st) for pi, p in enumerate(sc.processes) for st in p.prefault]

        def build_prefault(kept: list[tuple[int, tuple[int, int]]]
                           ) -> tuple[Scenario, list[int]] | None:
            procs = [ProcessSpec(p.pid, p.vmas, [st for pi, st in kept if pi == i])
                     for i, p in enumerate(sc.processes)]
            return replace(sc, processes=procs), hint

        return self._shrink(best, units, build_prefault)

    # -- the schedule pass ---------------------------------------------------------------------

    def shrink_preemptions(self, best: Candidate) -> Candidate:
        def key(c: Candidate) -> tuple[int, int]:
            s = c.sizes()
            return s.preemptions, s.decisions

        improved = True
        while improved:
            improved = False
            for i in reversed(preemptions(best.log)):
                cur = best.log[i][1]
                assert cur is not None
                prefix = best.schedule[:i]
                for choices in (prefix, [*prefix, cur, *best.schedule[i + 1:]]):
                    found = self._guided(best.scenario, choices)
                    if found is not None and key(found) < key(best):
                        best = found
                        improved = True
                        break
                if improved:
                    break
        return best

    # -- driver ------------------------------------------------------------------------------

    def run(self) -> tuple[Candidate, Sizes, Sizes]:
        start = self._guided(self.record.scenario, self.record.schedule)
        if start is None or start.schedule != self.record.schedule:
            found = self.attempt(self.record.scenario, self.record.schedule)
            if found is None:
                raise NotReproducible(f"the finding {self.signature!r} does not reproduce")
            start = found
        before = start.sizes()
        best = start
        for rnd in range(4):
            prev = best.sizes()
            best = self.shrink_tasks(best)
            best = self.shrink_ops(best)
            best = self.shrink_processes(best)
            best = self.shrink_preemptions(best)
            self._log(f"round {rnd + 1}: {best.sizes()} ({self.tries} runs so far)")
            if best.sizes() == prev:
                break
        return best, before, best.sizes()


def irq_tid(sc: Scenario) -> list[int]:
    """The interrupt actor's tid, which every shrink keeps (it comes after the scenario's
    tasks, so it is renumbered with them), or nothing in a world without one."""
    return [len(sc.tasks)] if len(execution_task_names(sc)) > len(sc.tasks) else []


def remap(schedule: Sequence[int], kept: Sequence[int]) -> list[int]:
    """A hint for a scenario that keeps only tasks ``kept`` (old tids, in order)."""
    new = {old: i for i, old in enumerate(kept)}
    return [new[t] for t in schedule if t in new]


def minimize(record: FindingRecord, *, source: str, search_runs: int = 12, seed: int = 0,
             executor: str | None = None, log: Callable[[str], None] | None = None
             ) -> tuple[FindingRecord, Sizes, Sizes]:
    """The minimized finding, verified by an exact traced replay, and sizes before / after.

    Raises:
        NotReproducible: the finding does not reproduce, before or (a harness bug) after.
    """
    out_executor = executor or record.executor
    with injected(record.bugs, record.fixes):
        m = Minimizer(record, search_runs=search_runs, seed=seed, log=log)
        best, before, after = m.run()
        final = replay_schedule(best.scenario, best.schedule, executor=out_executor,
                                max_steps=record.max_steps)
    o = final.outcome
    if o is None or o.finding is None or o.finding.signature != record.signature:
        raise NotReproducible("the minimized input does not replay exactly on the "
                              f"{out_executor} executor ({final.divergence or 'other outcome'})")
    f = o.finding
    sc = best.scenario
    name = sc.name if sc.name.endswith("(minimized)") else f"{sc.name} (minimized)"
    stamp = now()
    rec = replace(
        record,
        message=f.message, function=f.function, task=f.task, step=f.step, details=f.details,
        scenario=replace(sc, name=name),
        strategy=StrategySpec("minimize", seed, {"search_runs": search_runs,
                                                 "from": record.strategy.describe()}),
        executor=out_executor, schedule=list(o.schedule), steps=o.steps,
        trace_hash=final.trace_hash or "", last_seen=stamp, tool_version=__version__,
        model_commit=model_commit(),
        origin={"minimized_from": source, "minimized_at": stamp, "before": before.to_json(),
                "after": after.to_json(), "runs": m.tries, "original_origin": record.origin},
    )
    return rec, before, after
