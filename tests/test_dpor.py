"""DPOR (stress/schedulers/dpor.py): it covers what exhaustive DFS covers, with fewer schedules.

(a) On the gate's tiny scenarios, DPOR at DFS's preemption bound reaches the same set of
    final states (a digest of the machine when the concurrent phase ends, before the
    quiescent checks) and the same findings as DFS, with fewer schedules (the ratio is
    printed; bench/dpor.md has every scenario's).
(b) On small programs written with migfuzz.testing, DPOR runs exactly one schedule per
    Mazurkiewicz trace: the count is worked out by hand in each case, and checked by brute
    force (every schedule of unbounded DFS, grouped by the order of its dependent steps,
    computed here independently of the scheduler's own relation).
(c) With a catalog bug injected into a tiny scenario, DPOR finds it, and its schedule replays.
(d) ``migfuzz stress --strategy dpor`` runs DPOR (the finding file names it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from migfuzz.bugs import injected
from migfuzz.cli import main
from migfuzz.findings import load
from migfuzz.testing import Mutex, Shared, explore, replay, run_once, spawn
from stress.run import run_scenario
from stress.scenarios import TINY_BOUND, canonical
from stress.schedulers import (
    DFSScheduler,
    DPORScheduler,
    NondeterminismError,
    ReplayScheduler,
    Scheduler,
)
from target.fixes import FIXES
from target.kernel import ACQUIRE, READ, RELEASE, TRY, WRITE, Runqueue

ALL_FIXES = tuple(sorted(FIXES))

_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
from bench.dpor import search  # noqa: E402  (the digest of a final state, and the search)

# -- (a) the tiny scenarios: same final states and findings as DFS ------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("name", "bugs", "seed"), [
    ("tiny-migrate-fault", (), None),
    ("tiny-migrate-fault", ("get-after-unlock",), None),  # a deep race: 2 preemptions
    # A seed orders the tasks at a context switch, never preempts first (dpor.py): a
    # seeded search that did reached 5 of the 8 states and missed the use-after-free.
    ("tiny-migrate-fault", ("get-after-unlock",), 0),
    ("tiny-migrate-fault", ("get-after-unlock",), 1),
    ("reclaim-vs-exit", (), None),  # exit writes the process table a syscall entry reads
    # find_get_page's get_page under tree_lock (no point) against reclaim's put_page: the
    # page accesses past points (TracedPage); without them DPOR reached 6 of the 8 states.
    ("swapin-vs-reclaim", (), None),
    # The interrupt actor's completions: what they touch, not everything (5,330 vs 9).
    ("migrate-vs-writeback", ("remove-pte-unlocked",), None),
])
def test_dpor_reaches_every_state_and_finding_dfs_reaches(
        name: str, bugs: tuple[str, ...], seed: int | None) -> None:
    dfs = DFSScheduler(2)
    n_dfs, states_dfs, found_dfs = search(name, dfs, bugs)
    dpor = DPORScheduler(2, seed=seed)
    n_dpor, states_dpor, found_dpor = search(name, dpor, bugs)
    print(f"{name} {bugs}: DFS {n_dfs} schedules, DPOR {n_dpor} "
          f"({n_dfs / n_dpor:.2f}x fewer), {len(states_dfs)} final states")
    assert dfs.exhausted and dpor.exhausted
    assert states_dpor == states_dfs and len(states_dfs) > 1
    assert found_dpor == found_dfs and bool(found_dfs) == bool(bugs)
    # Schedules are deterministic: 3.5-4.8x fewer here (bench/dpor.md); 1.3-2.2x before
    # the steps past a point said what they touch.
    assert n_dpor * 3 < n_dfs
    assert dpor.fallbacks == 0  # every race's reversal had a runnable initial


@pytest.mark.slow
def test_dpor_finishes_a_search_dfs_cannot() -> None:
    """The gate's swapin-vs-reclaim at bound 3 (TINY_BOUND): DPOR explores it to its end;
    DFS given twice DPOR's executions is nowhere near its end (it is not at 50,000, the
    gate's cap: bench/dpor.md), and every final state DFS reaches there DPOR reaches."""
    assert TINY_BOUND["swapin-vs-reclaim"] == 3
    dpor = DPORScheduler(3)
    n_dpor, states_dpor, _ = search("swapin-vs-reclaim", dpor)
    assert dpor.exhausted and n_dpor < 5_000 and dpor.fallbacks == 0
    dfs = DFSScheduler(3, max_executions=2 * n_dpor)
    n_dfs, states_dfs, _ = search("swapin-vs-reclaim", dfs)
    assert n_dfs == 2 * n_dpor and not dfs.exhausted
    assert states_dfs <= states_dpor


# -- (b) one schedule per Mazurkiewicz trace ----------------------------------------------------

Program = Callable[[], Coroutine[Any, Any, None]]


class _Steps:
    """Unbounded DFS, recording each execution's steps as (tid, object, writes): the object
    a step's point announced, written unless a READ; a lock's release is written by the
    step that did it (the one before the task's RELEASE point). Written for these tests,
    apart from the scheduler's own relation."""

    def __init__(self) -> None:
        self.dfs = DFSScheduler(None)
        self.steps: list[tuple[int, object, bool]] = []
        self._ops: dict[int, tuple[object, object]] = {}
        self._rq: Runqueue | None = None

    def new_execution(self) -> bool:
        self.steps = []
        self._ops = {}
        return self.dfs.new_execution()

    def next_task(self, runnable: Any, current: int | None, yielding: bool) -> int:
        return self.dfs.next_task(runnable, current, yielding)

    def observe(self, rq: Runqueue | None) -> None:
        if rq is None:  # the end: the last step ran (the run queue is the one seen last)
            rq, self._rq = self._rq, None
            if rq is None:
                return
        self._rq = rq
        cur = rq.current
        if cur is not None and cur.tid in self._ops:
            obj, action = self._ops[cur.tid]
            if action in (ACQUIRE, TRY, READ, WRITE, RELEASE):
                self.steps.append((cur.tid, obj, action != READ))
            if cur.op_action == RELEASE and not cur.finished:  # it stopped at a new point
                self.steps.append((cur.tid, cur.op_obj, True))
        self._ops = {t.tid: (t.op_obj, t.op_action) for t in rq.tasks}


def _trace(steps: list[tuple[int, object, bool]]) -> frozenset[tuple[tuple[int, int], ...]]:
    """The trace of a schedule: for each pair of dependent accesses of two tasks (one
    object, one of them a write), which came first; accesses named (tid, k-th of its own)."""
    named: list[tuple[tuple[int, int], object, bool]] = []
    count: dict[int, int] = {}
    for tid, obj, w in steps:
        count[tid] = count.get(tid, 0) + 1
        named.append(((tid, count[tid]), obj, w))
    return frozenset((a, b) for i, (a, oa, wa) in enumerate(named)
                     for b, ob, wb in named[i + 1:]
                     if a[0] != b[0] and oa is not None and type(oa) is type(ob)
                     and getattr(oa, "name", 0) == getattr(ob, "name", 1) and (wa or wb))


def _traces(main: Program) -> tuple[int, int]:
    """(schedules of unbounded DFS, distinct traces among them)."""
    rec = _Steps()
    seen = set()
    n = 0
    while rec.new_execution():
        n += 1
        run_once(main, rec)
        seen.add(_trace(rec.steps))
    return n, len(seen)


def _dpor_schedules(main: Program) -> int:
    result = explore(main, "dpor", schedules=100_000, bound=None)
    assert result.exhausted and result.finding is None
    return result.schedules


def _threads(*bodies: Callable[[], Coroutine[Any, Any, None]]) -> Program:
    async def main() -> None:
        for body in bodies:
            await spawn(body)
    return main


def _independent() -> Program:
    x, y = Shared("x", 0), Shared("y", 0)

    async def a() -> None:
        await x.write(1)
        await x.write(2)

    async def b() -> None:
        await y.write(1)
        await y.write(2)

    return _threads(a, b)


def _write_write_read() -> Program:
    x = Shared("x", 0)

    async def a() -> None:
        await x.write(1)

    async def b() -> None:
        await x.write(2)

    async def c() -> None:
        await x.read()

    return _threads(a, b, c)


def _write_read_read() -> Program:
    x = Shared("x", 0)

    async def a() -> None:
        await x.write(1)

    async def b() -> None:
        await x.read()

    return _threads(a, b, b)


def _locked_increments() -> Program:
    m, x = Mutex("m"), Shared("x", 0)

    async def inc() -> None:
        await m.lock()
        await x.write(await x.read() + 1)
        await m.unlock()

    return _threads(inc, inc)


def _fresh(make: Callable[[], Program]) -> Program:
    """A program whose shared state is new in each execution."""
    async def main() -> None:
        await make()()
    return main


@pytest.mark.parametrize(("make", "traces"), [
    # Two threads on two variables: nothing is dependent, one trace.
    (_independent, 1),
    # Three accesses to x, each pair dependent (two writes, and each write with the read):
    # every order of the three is its own trace, 3! = 6.
    (_write_write_read, 6),
    # One write, two reads: the reads commute, each read is before or after the write:
    # 2 x 2 = 4.
    (_write_read_read, 4),
    # Two locked increments. A thread's accesses to m: its acquisition, the release (in its
    # step that writes x), and the step after the release (which DPOR counts as touching
    # the lock too: module docstring of stress/schedulers/_dpor_events.py). Who takes m
    # first (2), times whether the other tries m while it is held (a failed acquisition,
    # a step of its own) or only after the release (2), times where the first thread's
    # after-release step falls among the second's acquisition, release and after-release
    # step (4): 2 x 2 x 4 = 16.
    (_locked_increments, 16),
])
def test_dpor_runs_one_schedule_per_trace(make: Callable[[], Program], traces: int) -> None:
    schedules, counted = _traces(_fresh(make))
    assert counted == traces and schedules > traces
    # Source sets with sleep sets (no wakeup trees) may run a trace twice in general
    # (a sleep-set-blocked execution); on these programs they do not: exactly one each.
    assert _dpor_schedules(_fresh(make)) == traces


# -- (c) a catalog bug, found and replayed; the scheduler's own guarantees ---------------------


@pytest.mark.slow
def test_dpor_finds_a_deep_race_in_a_tiny_scenario_and_its_schedule_replays() -> None:
    sched = DPORScheduler(2)
    with injected(("get-after-unlock",), ALL_FIXES):
        n = 0
        while sched.new_execution():
            n += 1
            out = run_scenario(canonical("tiny-migrate-fault"), sched)
            if out.finding is not None:
                break
        assert out.finding is not None and out.finding.kind == "use-after-free", n
        again = ReplayScheduler(out.schedule)
        again.new_execution()
        replayed = run_scenario(canonical("tiny-migrate-fault"), again)
    assert replayed.finding is not None
    assert replayed.finding.signature == out.finding.signature
    assert n < 334  # DFS's first detection, at the same bound (bench/dpor.md)


def test_a_program_that_is_not_deterministic_is_refused() -> None:
    runs = iter(range(1_000_000))

    async def main() -> None:
        x = Shared("x", 0)

        async def a() -> None:
            await x.write(1)

        for _ in range(2 + next(runs) % 2):  # not a function of the schedule
            await spawn(a)

    with pytest.raises(Exception) as info:
        explore(main, "dpor", schedules=1000, bound=None)
    assert any(isinstance(e, NondeterminismError) for e in _chain(info.value))


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def test_dpor_of_a_user_program_finds_the_lost_update_and_replays_it() -> None:
    async def main() -> None:
        x = Shared("x", 0)

        async def inc() -> None:
            await x.write(await x.read() + 1)

        a, b = await spawn(inc), await spawn(inc)
        await a.join()
        await b.join()
        from migfuzz.testing import check
        check(await x.read() == 2, "lost update")

    result = explore(main, "dpor", schedules=1000, bound=None)
    assert result.finding is not None and "lost update" in result.finding.message
    assert replay(main, result.schedule).finding is not None


def test_the_execution_shows_dpor_every_step() -> None:
    """The hook DPOR needs: ``observe`` at every pick (decisions or not) and at the end."""
    calls: list[int | None] = []

    class Watch(DFSScheduler):
        def observe(self, rq: Runqueue | None) -> None:
            calls.append(None if rq is None else rq.step)

    sched: Scheduler = Watch(0)
    sched.new_execution()
    out = run_once(_fresh(_independent), sched)
    assert calls[-1] is None and calls[:-1] == list(range(1, out.steps + 1))
    assert len(out.schedule) < out.steps  # most steps were not decisions


def test_dpor_searches_alike_on_both_executors() -> None:
    """The step hook is the execution's, not an executor's: under trio, DPOR's first 20
    executions of tiny-migrate-fault make the schedules and step counts they make directly."""

    def search_on(executor: str) -> list[tuple[int, list[int]]]:
        sched = DPORScheduler(2, max_executions=20)
        runs = []
        with injected((), ALL_FIXES):
            while sched.new_execution():
                out = run_scenario(canonical("tiny-migrate-fault"), sched, executor=executor)
                runs.append((out.steps, out.schedule))
        return runs

    direct = search_on("direct")
    assert len(direct) == 20 and len({tuple(s) for _, s in direct}) == 20
    assert search_on("trio") == direct

# -- (d) the command line ------------------------------------------------------------------------


@pytest.mark.slow
def test_stress_strategy_dpor_searches_with_dpor(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One ``dpor`` run searches tiny-migrate-fault until get-after-unlock (a deep race) shows;
    the file records the strategy and its search, and ``migfuzz repro`` replays it."""
    out = tmp_path / "findings"
    code = main(["stress", "--strategy", "dpor", "--scenario", "tiny-migrate-fault",
                 "--runs", "1", "--jobs", "1", "--bug", "get-after-unlock", "--fixes", "all",
                 "--executor", "direct", "--out", str(out)])
    assert code == 1, capsys.readouterr().out
    [path] = sorted(out.glob("*.json"))
    rec = load(path)
    assert rec.strategy.name == "dpor" and rec.bugs == ["get-after-unlock"]
    assert rec.strategy.params == {"preemption_bound": 2, "max_executions": 2000}
    capsys.readouterr()
    assert main(["repro", str(path)]) == 1
    assert "result: REPRODUCED (identical trace" in capsys.readouterr().out
