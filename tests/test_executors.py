"""The two executors are interchangeable: same input, same trace; same endings, same cleanup.

An executor only transfers control (stress/executors/__init__.py); every decision and record
lives in ``Execution``. So for the same program and the same scheduler decisions, ``run_direct``
and ``run_trio`` must produce an identical ``Outcome.trace_key``, end the run the same way on a
finding, a livelock or a deadlock, turn a Python error into ``StressInternalError`` (never a
finding), and leave no executor installed behind them.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import pytest
from fixed_schedulers import Lowest, RoundRobin

from stress import Outcome, StressInternalError
from stress.executors import EXECUTORS, Executor, run_direct, run_trio
from stress.executors.trio import run_in_trio
from stress.schedulers import RandomScheduler
from target.kernel import (
    HOOKS,
    KernelFinding,
    LockClass,
    WaitBit,
    cond_resched,
    preempt,
    rw_semaphore,
    spinlock_t,
    yield_,
)

Program = list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]]






class Replay:
    """Makes the recorded decisions again, in order."""

    def __init__(self, schedule: Sequence[int]) -> None:
        self.decisions = iter(schedule)

    def new_execution(self) -> bool:
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        return next(self.decisions)


@pytest.fixture(params=sorted(EXECUTORS))
def run(request: pytest.FixtureRequest) -> Executor:
    return EXECUTORS[request.param]


def seeded(seed: int) -> RandomScheduler:
    sched = RandomScheduler(seed)
    sched.new_execution()
    return sched


def assert_uninstalled() -> None:
    """No executor is left installed: the model cannot run outside one (a point raises when
    awaited; calling ``preempt()`` alone runs nothing, like any coroutine function)."""

    async def point() -> None:
        await preempt()

    coro = point()
    with pytest.raises(RuntimeError, match="no executor installed"):
        coro.send(None)
    assert HOOKS.rq.current is None
    assert HOOKS.tracer is None


# -- the mixed program -----------------------------------------------------------------------


SPIN_A = LockClass("ex-spin-a", sleeping=False)
SPIN_B = LockClass("ex-spin-b", sleeping=False)
SEM = LockClass("ex-sem", sleeping=True)
PAGE = LockClass("ex-PG_locked", sleeping=True)


def mixed_program() -> Program:
    """Three tasks over two spinlocks, an rwsem, a page lock and a writeback bit.

    Deadlock-free and lock-order consistent (sem -> a, page -> a, sem -> b), with one
    deliberate race: ``reader`` checks two counters that ``writer`` updates in two steps
    without a common lock, and reports a (test-only) finding when it sees them differ. So
    some seeds end in a finding and some run to the end, and both endings are compared.
    """
    a, b = spinlock_t(SPIN_A, "a"), spinlock_t(SPIN_B, "b")
    sem = rw_semaphore(SEM, "sem")
    page, writeback = WaitBit("page", PAGE), WaitBit("writeback")
    state = {"x": 0, "y": 0}

    async def writer() -> None:
        for _ in range(2):
            await sem.down_read()
            await a.lock()
            state["x"] += 1
            await preempt()
            a.unlock()
            sem.up_read()
            await cond_resched()
            state["y"] += 1
        await page.lock()
        writeback.test_and_set()
        await preempt()
        writeback.clear()
        page.clear()

    async def locker() -> None:
        await sem.down_write()
        await b.lock()
        await preempt()
        b.unlock()
        sem.up_write()
        await yield_()
        await page.lock()
        await a.lock()
        a.unlock()
        page.clear()
        await writeback.wait_clear()

    async def reader() -> None:
        for _ in range(3):
            if await a.trylock():
                seen = (state["x"], state["y"])
                a.unlock()
                if seen[0] != seen[1]:
                    raise KernelFinding("data-race", "saw x run ahead of y", {"seen": seen})
            await preempt()
        await sem.down_read()
        await cond_resched()
        sem.up_read()

    return [("writer", writer), ("locker", locker), ("reader", reader)]


def test_same_seed_same_trace_on_both_executors() -> None:
    """200 random walks of the mixed program, traced, on each executor: identical keys."""
    kinds = set()
    for seed in range(200):
        direct = run_direct(seeded(seed), mixed_program(), trace=True)
        trio_ = run_trio(seeded(seed), mixed_program(), trace=True)
        assert direct.trace_key == trio_.trace_key, f"seed {seed}"
        kinds.add(direct.finding.kind if direct.finding else None)
    assert kinds == {None, "data-race"}  # both endings were compared


def test_same_seed_same_trace_on_one_executor(run: Executor) -> None:
    for seed in range(20):
        first = run(seeded(seed), mixed_program(), trace=True)
        second = run(seeded(seed), mixed_program(), trace=True)
        assert first.trace_key == second.trace_key


def test_a_recorded_schedule_replays_on_the_other_executor() -> None:
    for seed in range(20):
        for record, replay in ((run_direct, run_trio), (run_trio, run_direct)):
            original = record(seeded(seed), mixed_program(), trace=True)
            again = replay(Replay(original.schedule), mixed_program(), trace=True)
            assert again.trace_key == original.trace_key


def test_the_trace_key_depends_on_the_schedule() -> None:
    """The comparison above is not vacuous: different seeds give different traces."""
    keys = {run_direct(seeded(seed), mixed_program(), trace=True).trace_key for seed in range(20)}
    assert len(keys) > 10


async def test_run_in_trio_matches_direct() -> None:
    """An execution inside an already running trio loop (bench/executors.py's path) gives
    the trace of the direct executor."""
    for seed in range(10):
        direct = run_direct(seeded(seed), mixed_program(), trace=True)
        in_trio = await run_in_trio(seeded(seed), mixed_program(), trace=True)
        assert in_trio.trace_key == direct.trace_key
    assert_uninstalled()


def test_only_choices_between_two_or_more_tasks_are_decisions(run: Executor) -> None:
    async def alone() -> None:
        for _ in range(5):
            await preempt()

    outcome = run(seeded(0), [("t", alone)])
    assert outcome.finding is None
    assert outcome.schedule == []
    assert outcome.steps == 6  # five points and the resumption that returns


def test_no_tasks(run: Executor) -> None:
    """An empty execution ends at once (the trio executor used to wait forever here)."""
    outcome = run(seeded(0), [])
    assert (outcome.finding, outcome.schedule, outcome.steps) == (None, [], 0)
    assert_uninstalled()


# -- findings end the run --------------------------------------------------------------------


def finding_program(log: list[str]) -> Program:
    async def victim() -> None:
        for i in range(10):
            log.append(f"victim {i}")
            await preempt()

    async def buggy() -> None:
        await preempt()
        await preempt()
        raise KernelFinding("bug", "BUG_ON(page_count(page) == 0)", {"pfn": 7})

    return [("victim", victim), ("buggy", buggy)]


def test_a_finding_ends_the_run_identically_on_both_executors() -> None:
    outcomes = {}
    logs = {}
    for name, run in EXECUTORS.items():
        logs[name] = []
        outcomes[name] = run(seeded(3), finding_program(logs[name]), trace=True)
    direct, trio_ = outcomes["direct"], outcomes["trio"]
    assert direct.finding is not None
    assert (direct.finding.kind, direct.finding.task) == ("bug", "buggy")
    assert direct.finding.details == {"pfn": 7}
    assert direct.finding == trio_.finding
    assert direct.trace_key == trio_.trace_key
    assert logs["direct"] == logs["trio"]
    assert len(logs["direct"]) < 10  # the victim did not run on after the finding
    assert_uninstalled()


# -- harness errors are not findings ---------------------------------------------------------


def test_a_python_error_in_a_task_is_a_harness_error(run: Executor) -> None:
    async def victim() -> None:
        while True:
            await preempt()

    async def broken() -> None:
        await preempt()
        _ = 1 // 0

    with pytest.raises(StressInternalError, match="broken") as info:
        run(seeded(1), [("victim", victim), ("broken", broken)])
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert_uninstalled()


def test_a_bare_assert_in_the_model_is_a_harness_error(run: Executor) -> None:
    """Kernel checks raise KernelFinding; an AssertionError is the harness's or the model's."""

    async def task() -> None:
        await preempt()
        raise AssertionError("model invariant written as a bare assert")

    with pytest.raises(StressInternalError) as info:
        run(seeded(0), [("t", task)])
    assert isinstance(info.value.__cause__, AssertionError)
    assert_uninstalled()


class Wrong:
    """A scheduler bug: chooses a tid that is not runnable (or raises)."""

    def __init__(self, choice: Any) -> None:
        self.choice = choice

    def new_execution(self) -> bool:
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        if isinstance(self.choice, BaseException):
            raise self.choice
        return self.choice  # type: ignore[no-any-return]


@pytest.mark.parametrize("choice", [5, -1, "0", ValueError("strategy bug")], ids=repr)
def test_a_scheduler_error_is_a_harness_error(run: Executor, choice: Any) -> None:
    async def task() -> None:
        for _ in range(3):
            await preempt()

    with pytest.raises(StressInternalError, match="scheduler"):
        run(Wrong(choice), [("t0", task), ("t1", task)])
    assert_uninstalled()


def test_model_code_running_during_teardown_is_a_harness_error(run: Executor) -> None:
    """An unlock in a ``finally`` would run after the run ended, as whichever task was last
    current: its lock-not-held must not become the run's finding."""
    lock = spinlock_t(LockClass("ex-teardown", sleeping=False), "L")

    async def unwinder() -> None:
        await lock.lock()
        try:
            while True:
                await preempt()
        finally:
            lock.unlock()

    async def buggy() -> None:
        for _ in range(3):
            await preempt()
        assert lock.owner is not None, "the unwinder holds the lock by now"
        raise KernelFinding("bug", "the finding the run ended with")

    # RoundRobin: the unwinder holds the lock and polls when the buggy task raises.
    with pytest.raises(StressInternalError, match="torn down"):
        run(RoundRobin(), [("buggy", buggy), ("unwinder", unwinder)], max_steps=100)
    assert_uninstalled()


def test_even_the_owner_may_not_unlock_during_teardown(run: Executor) -> None:
    """The unwinder is itself current when its livelock ends the run; its ``finally`` still
    finds no executor to unlock through: model code does not run after the outcome."""
    lock = spinlock_t(LockClass("ex-teardown", sleeping=False), "L")

    async def unwinder() -> None:
        await lock.lock()
        try:
            while True:
                await preempt()
        finally:
            lock.unlock()

    with pytest.raises(StressInternalError, match="torn down") as info:
        run(Lowest(), [("unwinder", unwinder)], max_steps=20)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert_uninstalled()


# -- livelock and deadlock -------------------------------------------------------------------


@pytest.mark.parametrize("spinners", [1, 2])
def test_the_step_bound_turns_an_endless_loop_into_a_livelock(
    run: Executor, spinners: int
) -> None:
    async def spin() -> None:
        while True:
            await preempt()

    async def finisher() -> None:
        await preempt()

    program = [(f"spin{i}", spin) for i in range(spinners)] + [("done", finisher)]
    outcome = run(seeded(0), program, max_steps=500)
    f = outcome.finding
    assert f is not None and f.kind == "livelock"
    assert f.details["max_steps"] == 500
    assert f.details["unfinished"] == [f"spin{i}" for i in range(spinners)]
    assert outcome.steps == 501
    assert_uninstalled()


def test_livelock_is_reported_identically() -> None:
    async def spin() -> None:
        while True:
            await yield_()

    keys = [
        run(seeded(4), [("a", spin), ("b", spin)], max_steps=300, trace=True).trace_key
        for run in (run_direct, run_trio)
    ]
    assert keys[0] == keys[1]


def test_deadlock_is_reported_identically() -> None:
    def program() -> Program:
        bits = [WaitBit("x"), WaitBit("y")]

        def task(mine: WaitBit, theirs: WaitBit) -> Callable[[], Coroutine[Any, Any, None]]:
            async def body() -> None:
                mine.test_and_set()
                await preempt()
                await theirs.wait_clear()
                mine.clear()

            return body

        return [("t0", task(bits[0], bits[1])), ("t1", task(bits[1], bits[0]))]

    outcomes = [run(RoundRobin(), program(), trace=True) for run in (run_direct, run_trio)]
    assert outcomes[0].finding is not None and outcomes[0].finding.kind == "deadlock"
    assert outcomes[0].trace_key == outcomes[1].trace_key


# -- nothing is left installed ---------------------------------------------------------------


def ending_program(ending: str) -> tuple[Program, dict[str, Any]]:
    """A one-task program that ends the run in the named way; kwargs for the executor."""
    kwargs: dict[str, Any] = {"max_steps": 50, "trace": True}

    async def task() -> None:
        await preempt()
        if ending == "finding":
            raise KernelFinding("bug", "BUG()")
        if ending == "harness-error":
            raise ZeroDivisionError
        if ending == "livelock":
            while True:
                await preempt()
        if ending == "deadlock":
            bit = WaitBit("forever")
            bit.test_and_set()
            await bit.wait_clear()

    return [("t", task)], kwargs


@pytest.mark.parametrize("ending", ["clean", "finding", "harness-error", "livelock", "deadlock"])
def test_no_executor_is_left_installed(run: Executor, ending: str) -> None:
    program, kwargs = ending_program(ending)
    try:
        outcome: Outcome | None = run(seeded(0), program, **kwargs)
    except StressInternalError:
        outcome = None
    assert (outcome is None) == (ending == "harness-error")
    if outcome is not None:
        kind = outcome.finding.kind if outcome.finding else "clean"
        assert kind == {"finding": "bug"}.get(ending, ending)
    assert_uninstalled()
