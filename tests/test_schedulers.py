"""Scheduling strategies: the shared contract, then PCT, DFS, replay and bytes on tiny programs.

The programs here are a few lines of model code on ``target.kernel`` primitives, small enough
that every interleaving can be worked out by hand. Each ``make_*`` returns a fresh task list,
since the tasks capture their state and an execution consumes them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migfuzz._errors import find_cause
from stress import Outcome, StressInternalError
from stress._execution import ModelTask
from stress.executors import run_direct, run_trio
from stress.schedulers import (
    ByteScheduler,
    DFSScheduler,
    PCTScheduler,
    RandomScheduler,
    ReplayScheduler,
    ScheduleDivergence,
    Scheduler,
    SURWScheduler,
)
from target.kernel import BUG_ON, LockClass, WaitBit, preempt, spinlock_t, yield_

Executor = Callable[..., Outcome]
TaskFn = Callable[[], Coroutine[Any, Any, None]]
TEST_LOCK = LockClass("test_lock", sleeping=False)


# -- tiny programs -------------------------------------------------------------------------------


@dataclass
class Log:
    """What the tasks of one execution did, in order."""

    entries: list[str] = field(default_factory=list)

    def letters(self) -> str:
        """The task of each logged segment, e.g. ``"AABBBA"``."""
        return "".join(e[0] for e in self.entries)


def make_steps(log: Log, points: int = 2, names: str = "AB") -> list[ModelTask]:
    """Tasks that each pass ``points`` preemption points and do nothing else.

    A task runs from one point to the next atomically, so it has ``points + 1`` segments
    (start to first point, ..., last point to return); each logs ``<name><index>`` once.
    """

    def task(name: str) -> TaskFn:
        async def body() -> None:
            for i in range(points):
                log.entries.append(f"{name}{i}")
                await preempt()
            log.entries.append(f"{name}{points}")

        return body

    return [(name, task(name)) for name in names]


def make_locked(log: Log, tasks: int = 3) -> list[ModelTask]:
    """``tasks`` tasks incrementing a counter under one spinlock: contention, no finding."""
    lock = spinlock_t(TEST_LOCK, "counter_lock")
    state = {"counter": 0}

    def task(name: str) -> TaskFn:
        async def body() -> None:
            await preempt()
            await lock.lock()
            value = state["counter"]
            await preempt()
            state["counter"] = value + 1
            log.entries.append(name)
            lock.unlock()
            await preempt()

        return body

    return [(f"t{i}", task(f"t{i}")) for i in range(tasks)]


def make_lost_update(locked: bool = False) -> list[ModelTask]:
    """Two unlocked read-modify-write increments; the second to finish checks the count.

    The update is lost when both reads come before both writes, which takes one preemption:
    ``A`` reads, ``B`` preempts it and runs to the end, ``A`` writes its stale value.
    """
    lock = spinlock_t(TEST_LOCK, "x_lock")
    state = {"x": 0, "done": 0}

    async def inc() -> None:
        await preempt()
        if locked:
            await lock.lock()
        value = state["x"]
        await preempt()
        state["x"] = value + 1
        if locked:
            lock.unlock()
        state["done"] += 1
        BUG_ON(state["done"] == 2 and state["x"] != 2, "bug", "lost update")

    return [("A", inc), ("B", inc)]


def make_abba() -> list[ModelTask]:
    """ABBA on two bit locks: A takes a then b, B takes b then a.

    Bit locks without a lock class, because lockdep would report the spinlock version as a
    lock-order inversion in *every* schedule (it checks before waiting); here the only report
    is the executor's "no task can run", and only where the interleaving actually deadlocks.
    """
    a, b = WaitBit("bit_a"), WaitBit("bit_b")

    async def take(bit: WaitBit) -> None:
        await preempt()
        while bit.test_and_set():
            await bit.wait_clear()

    def task(first: WaitBit, second: WaitBit) -> TaskFn:
        async def body() -> None:
            await take(first)
            await take(second)
            second.clear()
            first.clear()

        return body

    return [("A", task(a, b)), ("B", task(b, a))]


def make_ordering_bug() -> list[ModelTask]:
    """A clears a pointer for a moment; B dereferences it. Found only if A is preempted.

    A: point; ptr = None; point; ptr = restored.   B: point; BUG_ON(ptr is None).
    B's check must run between A's two stores: one preemption, at one exact decision.
    """
    state: dict[str, object] = {"ptr": object()}

    async def a() -> None:
        await preempt()
        saved = state["ptr"]
        state["ptr"] = None
        await preempt()
        state["ptr"] = saved

    async def b() -> None:
        await preempt()
        BUG_ON(state["ptr"] is None, "bug", "NULL pointer dereference")

    return [("A", a), ("B", b)]


def make_yield_spin(log: Log) -> list[ModelTask]:
    """A waiter spinning on ``yield()`` for a flag that the other task sets."""
    state = {"flag": False}

    async def waiter() -> None:
        while not state["flag"]:
            await yield_()
        log.entries.append("W")

    async def setter() -> None:
        await preempt()
        state["flag"] = True
        log.entries.append("S")

    return [("waiter", waiter), ("setter", setter)]


def run_all(
    scheduler: Scheduler,
    make: Callable[[], list[ModelTask]],
    executor: Executor = run_direct,
    *,
    max_steps: int = 1000,
    limit: int = 10_000,
) -> list[Outcome]:
    """Every execution the scheduler asks for (at most ``limit``), each on fresh tasks."""
    outcomes = []
    while scheduler.new_execution():
        outcomes.append(executor(scheduler, make(), max_steps=max_steps, trace=True))
        assert len(outcomes) <= limit, "the strategy does not stop"
    return outcomes


# -- the contract every strategy keeps ------------------------------------------------------------


class Checked:
    """Wraps a strategy and checks the protocol on every decision."""

    def __init__(self, inner: Scheduler) -> None:
        self.inner = inner
        self.decisions = 0

    def new_execution(self) -> bool:
        return self.inner.new_execution()

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        assert len(runnable) >= 2 and list(runnable) == sorted(set(runnable))
        tid = self.inner.next_task(runnable, current, yielding)
        assert tid in runnable, f"{self.inner!r} chose {tid} from {list(runnable)}"
        self.decisions += 1
        return tid


def _recorded_schedule() -> list[int]:
    sched = RandomScheduler(3)
    sched.new_execution()
    return run_direct(sched, make_locked(Log())).schedule


STRATEGIES: dict[str, Callable[[], Scheduler]] = {
    "random": lambda: RandomScheduler(11, iterations=15),
    "pct": lambda: PCTScheduler(11, depth=3, iterations=15),
    "dfs": lambda: DFSScheduler(preemption_bound=1, max_executions=200),
    "replay": lambda: ReplayScheduler(_recorded_schedule()),
    "bytes": lambda: ByteScheduler(bytes([0, 7, 3, 255, 128, 1, 2, 9, 4, 4, 4, 250])),
    # execution 0 measures, the others sample: both executors must feed the step hook alike
    "surw": lambda: SURWScheduler(11, iterations=15),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_chooses_a_runnable_task_and_is_deterministic(name: str) -> None:
    runs = []
    for _ in range(2):
        sched = Checked(STRATEGIES[name]())
        outcomes = run_all(sched, lambda: make_locked(Log()))
        assert outcomes and sched.decisions > 0
        assert all(o.finding is None for o in outcomes)
        runs.append([o.trace_key for o in outcomes])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_gives_the_same_runs_on_both_executors(name: str) -> None:
    direct = [o.trace_key for o in run_all(STRATEGIES[name](), lambda: make_locked(Log()))]
    trio_ = [o.trace_key for o in run_all(STRATEGIES[name](), lambda: make_locked(Log()),
                                          run_trio)]
    assert direct == trio_


# -- PCT ------------------------------------------------------------------------------------------


def test_pct_depth_1_never_preempts() -> None:
    """No change points: the higher-priority task runs to the end, then the other."""
    orders = set()
    sched = PCTScheduler(5, depth=1, iterations=30)
    while sched.new_execution():
        log = Log()
        run_direct(sched, make_steps(log, points=3))
        orders.add(log.letters())
    assert orders == {"AAAABBBB", "BBBBAAAA"}  # both priority orders occur, nothing else


def test_pct_depth_1_misses_the_ordering_bug_and_depth_2_finds_it() -> None:
    """The bug needs one preemption at one of the ~4 decisions, with A ranked first: a depth-2
    bug, found with probability >= 1/(n k) = 1/8 per execution by PCT of depth 2."""
    shallow = run_all(PCTScheduler(0, depth=1, iterations=100), make_ordering_bug)
    assert all(o.finding is None for o in shallow)
    deep = run_all(PCTScheduler(0, depth=2, iterations=100), make_ordering_bug)
    found = [i for i, o in enumerate(deep) if o.finding is not None]
    assert found, "PCT depth 2 missed a depth-2 bug in 100 executions"
    first = deep[found[0]].finding
    assert first is not None and first.message == "NULL pointer dereference"
    assert len(found) >= 5  # about 1 in 6 once k is learnt: not a lucky single hit


def test_pct_execution_i_depends_only_on_seed_and_i() -> None:
    """Two schedulers with one seed make the same executions; another seed, others."""
    first = [o.trace_key for o in run_all(PCTScheduler(9, iterations=8), make_ordering_bug)]
    again = [o.trace_key for o in run_all(PCTScheduler(9, iterations=8), make_ordering_bug)]
    other = [o.trace_key for o in run_all(PCTScheduler(10, iterations=8), make_ordering_bug)]
    assert first == again and first != other


def test_pct_keeps_a_yielding_task_s_priority() -> None:
    """yield() does not lower a priority: a waiter ranked first spins until the step bound.

    That is the livelock of V2's yield() busy-wait; a fair random walk lets the setter run.
    """
    kinds = []
    sched = PCTScheduler(1, depth=1, iterations=20)
    while sched.new_execution():
        out = run_direct(sched, make_yield_spin(Log()), max_steps=200)
        kinds.append(out.finding.kind if out.finding else None)
    assert set(kinds) == {None, "livelock"}  # setter ranked first / waiter ranked first
    walk = run_all(RandomScheduler(1, iterations=20), lambda: make_yield_spin(Log()),
                   max_steps=200)
    assert all(o.finding is None for o in walk)


def test_pct_rejects_a_depth_below_1() -> None:
    with pytest.raises(ValueError, match="depth must be at least 1"):
        PCTScheduler(0, depth=0)


# -- DFS ------------------------------------------------------------------------------------------


def preemptions(letters: str) -> int:
    """Preemptions of a run of two-task segments (see test_dfs_counts...)."""
    runs = len(list(itertools.groupby(letters)))
    return max(runs - 2, 0)


@pytest.mark.parametrize(
    ("bound", "expected"), [(0, 2), (1, 6), (2, 14), (3, 18), (4, 20), (None, 20)]
)
def test_dfs_counts_for_two_tasks_of_two_points(bound: int | None, expected: int) -> None:
    """Two tasks, A and B, each passing two points: ``await preempt()`` twice.

    A task chosen at a decision runs to its next point, so each task is three atomic
    segments (start to point 1, point 1 to point 2, point 2 to return), and a run is an
    arrangement of AAABBB: C(6, 3) = 20 of them. A decision is recorded at every point while
    both tasks are unfinished, and once one has returned the other runs alone, undecided; so
    distinct arrangements are distinct schedules and DFS without a bound runs 20.

    An arrangement is r runs of one letter (r >= 2). Each switch between runs is a preemption
    except the last, which comes after the other task's final segment (it returned, it was not
    preempted); decision 0 has no current task. So an arrangement has r - 2 preemptions.
    With 3 A's and 3 B's there are 2 * C(2, k-1)**2 arrangements of r = 2k runs and
    2 * C(2, k) * C(2, k-1) of r = 2k + 1 runs:

        r   preemptions  count  arrangements (those starting with B are the mirrors)
        2   0            2      AAABBB
        3   1            4      AABBBA ABBBAA
        4   2            8      AABBAB AABABB ABBAAB ABAABB
        5   3            4      ABBABA ABABBA
        6   4            2      ABABAB

    Within a bound c: c = 0: 2; c = 1: 2 + 4 = 6; c = 2: 6 + 8 = 14; c = 3: 14 + 4 = 18;
    c = 4 or no bound: 18 + 2 = 20, all of C(6, 3).
    """
    sched = DFSScheduler(preemption_bound=bound)
    logs: list[Log] = []

    def make() -> list[ModelTask]:
        logs.append(Log())
        return make_steps(logs[-1], points=2)

    outcomes = run_all(sched, make)
    assert sched.executions == len(outcomes) == expected
    assert not sched.new_execution()  # exhausted stays exhausted
    arrangements = [log.letters() for log in logs]
    assert len(set(arrangements)) == expected  # each interleaving once
    assert len({tuple(o.schedule) for o in outcomes}) == expected
    limit = 4 if bound is None else bound
    every = {"".join(p) for p in itertools.permutations("AAABBB")}
    assert set(arrangements) == {a for a in every if preemptions(a) <= limit}


def test_dfs_explores_each_schedule_once_under_contention() -> None:
    """Three tasks on one spinlock: blocking switches cost no preemption, nothing repeats."""
    for bound in (0, 1, 2):
        sched = DFSScheduler(preemption_bound=bound)
        outcomes = run_all(sched, lambda: make_locked(Log()))
        schedules = [tuple(o.schedule) for o in outcomes]
        assert len(schedules) == len(set(schedules)) == sched.executions
        assert all(o.finding is None for o in outcomes)
    assert sched.executions > 100  # bound 2 really branched


def test_dfs_finds_the_lost_update_with_one_preemption_and_not_with_none() -> None:
    none = run_all(DFSScheduler(preemption_bound=0), make_lost_update)
    assert len(none) == 2 and all(o.finding is None for o in none)
    one = run_all(DFSScheduler(preemption_bound=1), make_lost_update)
    assert any(o.finding is not None and o.finding.message == "lost update" for o in one)
    locked = run_all(DFSScheduler(preemption_bound=None), lambda: make_lost_update(True))
    assert len(locked) > 2 and all(o.finding is None for o in locked)


def test_dfs_finds_the_abba_deadlock() -> None:
    assert all(o.finding is None for o in run_all(DFSScheduler(0), make_abba))
    found = [o for o in run_all(DFSScheduler(1), make_abba) if o.finding is not None]
    assert found and {o.finding.kind for o in found if o.finding} == {"deadlock"}


def test_dfs_max_executions_stops_early() -> None:
    sched = DFSScheduler(preemption_bound=None, max_executions=5)
    assert len(run_all(sched, lambda: make_steps(Log()))) == 5
    assert sched.executions == 5 and not sched.exhausted


def test_dfs_of_a_program_without_decisions_runs_it_once() -> None:
    sched = DFSScheduler()
    assert len(run_all(sched, lambda: make_steps(Log(), names="A"))) == 1


# -- replay ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", [run_direct, run_trio], ids=["direct", "trio"])
def test_replay_of_a_random_walk_is_identical(executor: Executor) -> None:
    walk = RandomScheduler(42)
    walk.new_execution()
    original = run_direct(walk, make_locked(Log()), trace=True)
    assert len(original.schedule) > 5
    replay = ReplayScheduler(original.schedule)
    assert replay.new_execution()
    again = executor(replay, make_locked(Log()), trace=True)
    assert again.trace_key == original.trace_key
    assert replay.finished and not replay.new_execution()


@pytest.mark.parametrize("executor", [run_direct, run_trio], ids=["direct", "trio"])
def test_replay_reproduces_a_finding(executor: Executor) -> None:
    walk = RandomScheduler(0, iterations=200)
    found = next(o for o in run_all(walk, make_lost_update) if o.finding is not None)
    replay = ReplayScheduler(found.schedule)
    again = run_all(replay, make_lost_update, executor)
    assert [o.trace_key for o in again] == [found.trace_key]


WALK_42 = [0, 1, 2, 2, 2, 1, 0, 2, 1, 0, 1, 0, 2, 1]  # RandomScheduler(42) on make_locked


def test_the_recorded_walk_is_still_the_walk() -> None:
    walk = RandomScheduler(42)
    walk.new_execution()
    assert run_direct(walk, make_locked(Log())).schedule == WALK_42


@pytest.mark.parametrize("executor", [run_direct, run_trio], ids=["direct", "trio"])
@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ([5], r"^scheduled task 5 is not runnable at decision 0, runnable: \[0, 1, 2\]$"),
        ([], r"^the schedule ran out: it has 0 decisions but the run needs another at "
             r"decision 0, runnable: \[0, 1, 2\]$"),
        (WALK_42[:5], r"^the schedule ran out: it has 5 decisions but the run needs another "
                      r"at decision 5, runnable: \[0, 1, 2\]$"),
        ([*WALK_42[:5], 9], r"^scheduled task 9 is not runnable at decision 5, "
                            r"runnable: \[0, 1, 2\]$"),
    ],
    ids=["bad-first", "empty", "ran-out-mid-run", "bad-mid-run"],
)
def test_replay_divergence_is_reported(
    executor: Executor, schedule: list[int], message: str
) -> None:
    """Execution.pick reports whatever a scheduler raises as a StressInternalError; the
    divergence is its cause (on trio, mid-run, one level further down: the error passes
    through the model task that reached the point)."""
    replay = ReplayScheduler(schedule)
    replay.new_execution()
    with pytest.raises(StressInternalError) as info:
        executor(replay, make_locked(Log()))
    div = find_cause(info.value, ScheduleDivergence)
    assert div is not None, f"no ScheduleDivergence behind {info.value!r}"
    assert re.search(message, str(div))


def test_replay_notices_a_schedule_longer_than_the_run() -> None:
    walk = RandomScheduler(42)
    walk.new_execution()
    schedule = run_direct(walk, make_locked(Log())).schedule
    replay = ReplayScheduler([*schedule, 0, 1])
    replay.new_execution()
    run_direct(replay, make_locked(Log()))
    assert not replay.finished and replay.position == len(schedule)


# -- bytes ----------------------------------------------------------------------------------------


@given(st.binary(max_size=64))
def test_any_bytes_are_a_schedule(data: bytes) -> None:
    sched = ByteScheduler(data)
    assert sched.new_execution() and not sched.new_execution()
    out = run_direct(sched, make_locked(Log()))
    assert out.finding is None
    assert sched.consumed == min(len(data), len(out.schedule))
    again = ByteScheduler(data)
    again.new_execution()
    assert run_direct(again, make_locked(Log())).trace_key == out.trace_key


def test_bytes_run_out_into_a_run_without_preemptions() -> None:
    log = Log()
    sched = ByteScheduler(b"")
    sched.new_execution()
    run_direct(sched, make_steps(log, points=3, names="ABC"))
    assert log.letters() == "AAAABBBBCCCC"
    assert sched.consumed == 0


def test_bytes_pick_by_remainder() -> None:
    log = Log()
    sched = ByteScheduler(bytes([1, 3]))  # decision 0: 1 % 2 = B; decision 1: 3 % 2 = B
    sched.new_execution()
    out = run_direct(sched, make_steps(log, points=1))
    assert out.schedule[:2] == [1, 1] and log.letters() == "BBAA"
