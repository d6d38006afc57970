"""Run one scenario under one scheduler decision sequence: setup, concurrent phase, checks.

    setup        the prefault stores, one task, no decisions (deterministic)
    concurrent   the scenario's tasks under the scheduler: the only phase with decisions
    read-back    every live process reads every value it expects (I10), one task
    quiescence   oracles.check_quiescent over the whole machine

A finding in any phase ends the run; only the concurrent phase's schedule is recorded, since
the other phases have a single task and nothing to decide.
"""

from __future__ import annotations

from target.kernel import KernelFinding
from target.mm.world import set_world

from ._execution import DEFAULT_MAX_STEPS, Finding, Outcome
from .executors import get_executor, run_direct
from .oracles import check_quiescent
from .schedulers import RandomScheduler, Scheduler
from .workload import (
    Scenario,
    births_of,
    build_world,
    program,
    readback_program,
    setup_program,
)


class _Single:
    """The scheduler of a one-task phase: never consulted."""

    def new_execution(self) -> bool:
        return True

    def next_task(self, runnable: object, current: object, yielding: bool) -> int:
        raise AssertionError("a single-task phase has no decisions")


def run_scenario(
    scenario: Scenario,
    scheduler: Scheduler,
    *,
    executor: str = "direct",
    max_steps: int = DEFAULT_MAX_STEPS,
    trace: bool = False,
) -> Outcome:
    """One execution of ``scenario`` (the caller has called ``scheduler.new_execution()``)."""
    run = get_executor(executor)
    world, _ = build_world(scenario)
    set_world(world)
    try:
        setup = run_direct(_Single(), [("setup", setup_program(scenario))], max_steps=max_steps)
        if setup.finding is not None:
            return Outcome(setup.finding, [], setup.steps, [] if trace else None)
        births = births_of(scenario)
        tasks = [(t.name, program(t.ops, births)) for t in scenario.tasks]
        outcome = run(scheduler, tasks, max_steps=max_steps, trace=trace)
        if outcome.finding is not None:
            return outcome
        back = run_direct(_Single(), [("readback", readback_program())], max_steps=max_steps)
        if back.finding is not None:
            outcome.finding = back.finding
            return outcome
        try:
            check_quiescent(world)
        except KernelFinding as exc:
            outcome.finding = Finding(exc.kind, exc.message, exc.function or "quiescence",
                                      "-", outcome.steps, exc.details)
        return outcome
    finally:
        set_world(None)


def run_seed(scenario: Scenario, seed: int, executor: str = "direct") -> Outcome:
    """Convenience: one random-walk execution with ``seed``."""
    sched = RandomScheduler(seed)
    sched.new_execution()
    return run_scenario(scenario, sched, executor=executor)
