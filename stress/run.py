"""Run one scenario under one scheduler decision sequence: setup, concurrent phase, checks.

    setup        the prefault stores, one task, no decisions (deterministic)
    concurrent   the scenario's tasks under the scheduler: the only phase with decisions
    progress     a quiescent migration and reclaim must move / free what they can, one task
    read-back    every live process reads every value it expects (I10), one task
    retry-limit  a page held by an extra reference is retried for exactly 11 passes
                 (on one execution in RETRY_CHECK_EVERY)
    quiescence   oracles.check_quiescent over the whole machine

A finding in any phase ends the run; only the concurrent phase's schedule is recorded, since
the other phases have a single task and nothing to decide.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from target.kernel import KernelFinding
from target.mm.page_io import swap_bio_irq
from target.mm.world import set_world

from ._execution import DEFAULT_MAX_STEPS, Finding, Outcome
from ._progress_oracle import progress_program, retry_limit_program
from .executors import get_executor, run_direct
from .oracles import check_quiescent
from .schedulers import RandomScheduler, Scheduler
from .workload import (
    IRQ_TASK,
    MigrationStats,
    Scenario,
    births_of,
    build_world,
    program,
    readback_program,
    setup_program,
    threads_of,
)

RETRY_CHECK_EVERY = 4
"""The retry-limit check (11 traced passes) costs as much as a run; the final states of one
scenario differ little, so it runs on the executions whose decision count is a multiple of
this: a pure function of the schedule, so a replay checks exactly when the original did."""


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
    if getattr(scheduler, "needs_every_access", False):  # DPOR: see TracedPage
        world.trace_page_accesses()
    set_world(world)
    try:
        setup = run_direct(_Single(), [("setup", setup_program(scenario))], max_steps=max_steps)
        if setup.finding is not None:
            return Outcome(setup.finding, [], setup.steps, [] if trace else None)
        births = births_of(scenario)
        stats = MigrationStats()
        threads = threads_of(scenario)
        tasks = [(t.name, program(t.ops, births, stats, t.name, threads))
                 for t in scenario.tasks]
        if scenario.world.swap_io_delay:
            tasks.append((IRQ_TASK, swap_bio_irq))  # last: the scenario's tids are unchanged
        outcome = run(scheduler, tasks, max_steps=max_steps, trace=trace)
        outcome.migrations = (stats.attempted, stats.moved)
        outcome.move_pages = dict(stats.move_pages)
        if outcome.finding is not None:
            return outcome
        for name, body in (("progress", progress_program(world)),
                           ("readback", readback_program())):
            phase = run_direct(_Single(), [(name, body)], max_steps=max_steps)
            if phase.finding is not None:
                outcome.finding = phase.finding
                return outcome
        if len(outcome.schedule) % RETRY_CHECK_EVERY == 0:
            body, check_retries = retry_limit_program(world)
            retry = run_direct(_Single(), [("retry-limit", body)], max_steps=max_steps,
                               trace=True)
            outcome.finding = retry.finding or _oracle(
                lambda: check_retries(retry.events or []), "progress", outcome.steps)
        if outcome.finding is None:
            outcome.finding = _oracle(lambda: check_quiescent(world), "quiescence",
                                      outcome.steps)
        return outcome
    finally:
        set_world(None)


def _oracle(check: Callable[[], None], where: str, step: int) -> Finding | None:
    """Run one whole-machine check. A check that fails while building its report (a model
    mutant can leave state no sane kernel has) is still a finding, with what it raised."""
    try:
        check()
    except KernelFinding as exc:
        return Finding(exc.kind, exc.message, exc.function or where, "-", step, exc.details)
    except Exception as exc:
        return Finding("bug", f"{where} oracle failed on the final state: {exc!r}", where,
                       "-", step, {"error": repr(exc),
                                   "at": traceback.format_exception(exc)[-2].strip()})
    return None


def run_seed(scenario: Scenario, seed: int, executor: str = "direct") -> Outcome:
    """Convenience: one random-walk execution with ``seed``."""
    sched = RandomScheduler(seed)
    sched.new_execution()
    return run_scenario(scenario, sched, executor=executor)
