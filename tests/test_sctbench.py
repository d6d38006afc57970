"""The runtime API (migfuzz.testing) and the SCTBench ports on it (bench/sctbench/).

Each port: some seeded strategy finds its bug (of its kind) within a small budget, the failing
schedule replays to the same finding, and the sequential run (DFS with preemption bound 0,
its first schedule: each task to completion) shows the bug only where the original's needs
no interleaving. The API tests each drive one feature so that disconnecting it fails.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from migfuzz.testing import (
    Cond,
    Mutex,
    Shared,
    check,
    explore,
    make_scheduler,
    replay,
    run_once,
    spawn,
    yield_,
)
from target.kernel import ACQUIRE, READ, RELEASE, WRITE, PendingOp

_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
from bench.sctbench import (  # noqa: E402
    PROGRAMS,
    InterlockedWorkStealQueue,
    WorkStealQueue,
    din_phil5_sat,
    phase01_bad,
    sync01_bad,
    sync02_bad,
)

# The budget each port's search gets and the strategy: the cheapest that finds it (seeded).
# The comment after each: its bug depth, the fewest preemptions (DFS bound) a failing
# schedule needs here (0: the sequential order or every order fails); PCT needs d >= depth
# + 1 to find it. SCTBench's published per-program table (Thomson, Donaldson, Betts, TOPC
# 2016) was not available to check against (bench/sctbench.md cites its totals only).
SEARCH = {
    "account_bad": ("random", 1, 200),
    "arithmetic_prog_bad": ("random", 1, 10),
    "carter01_bad": ("pct", 1, 200),
    "circular_buffer_bad": ("pct", 1, 200),
    "deadlock01_bad": ("random", 1, 200),
    "din_phil2_sat": ("random", 1, 10),
    "lazy01_bad": ("random", 1, 10),
    "reorder_3_bad": ("pct", 1, 200),
    "stack_bad": ("random", 1, 200),
    "twostage_bad": ("pct", 1, 200),
    "wronglock_bad": ("random", 1, 200),
    "din_phil3_sat": ("random", 1, 10),  # depth 0
    "din_phil4_sat": ("random", 1, 10),  # depth 0
    "din_phil5_sat": ("random", 1, 10),  # depth 0: every order fails
    "phase01_bad": ("random", 1, 10),  # depth 0: every order deadlocks
    "queue_bad": ("random", 1, 10),  # depth 1 (DFS pb=1: 286 schedules)
    "reorder_5_bad": ("pct", 1, 200),  # depth 1
    "reorder_10_bad": ("pct", 2, 200),  # depth 1, among 10 threads' orders
    "sync01_bad": ("random", 1, 10),  # depth 0: every order deadlocks
    "sync02_bad": ("random", 1, 10),  # depth 0: every order deadlocks
    "WorkStealQueue": ("pct", 2, 100),  # depth 2 (DFS pb=1 exhausts 84 without it)
    "InterlockedWorkStealQueue": ("pct", 2, 100),  # depth 2 (pb=1 exhausts 84)
}

# Ports whose bug none of our strategies finds in a small budget (in 200,000 schedules, seed
# 1: random once, at schedule 184,999; PCT d=3 or 5 and DFS pb=3 not at all:
# bench/sctbench_safestack.md): a witness schedule shows it (below). safestack's
# depth is 7 preemptions at least (bench/sctbench/safestack_bug1.py says how measured).
WITNESSED = {"safestack_bug1"}


def test_every_port_has_a_search() -> None:
    assert sorted([*SEARCH, *WITNESSED]) == sorted(PROGRAMS)


@pytest.mark.parametrize("name", sorted(SEARCH))
def test_port_bug_found_and_replayed(name: str) -> None:
    port = PROGRAMS[name]
    strategy, seed, budget = SEARCH[name]
    r = explore(port.main, strategy, schedules=budget, seed=seed)
    assert r.finding is not None, f"{name}: no finding in {budget} {strategy} schedules"
    assert r.finding.kind == port.kind, r.finding.message
    again = replay(port.main, r.schedule)
    assert again.finding is not None
    assert (again.finding.signature, again.finding.step) == (r.finding.signature,
                                                             r.finding.step)
    assert again.schedule == r.schedule


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_port_sequential_run(name: str) -> None:
    port = PROGRAMS[name]
    r = explore(port.main, "dfs", bound=0, schedules=1)
    assert r.schedules == 1
    if port.sequential_bug:
        assert r.finding is not None and r.finding.kind == port.kind
    else:
        assert r.finding is None, f"{name}: {r.finding}"


# The fixed variants (SCTBench's *_ok / *_unsat files, or the fix the source names) of the
# ports whose bug shows in every order, and of the work-stealing queues: a port that fails
# whatever it runs would fail these. (strategy, bound or seed, budget): DFS runs to
# exhaustion where it can.
FIXED = {
    "phase01_bad": (phase01_bad.main_ok, "dfs", 2, 1000),  # phase01_ok.c
    "sync01_bad": (sync01_bad.main_ok, "dfs", 2, 1000),  # sync01_ok.c
    "sync02_bad": (sync02_bad.main_ok, "pct", 1, 30),  # sync02_ok.c (20 items each)
    "din_phil5_sat": (din_phil5_sat.main_unsat, "pct", 1, 100),  # din_phil5_unsat.c
    # Without BUG3, the search that finds it (SEARCH above) finds nothing.
    "WorkStealQueue": (WorkStealQueue.main_fixed, "pct", 2, 100),
    "InterlockedWorkStealQueue": (InterlockedWorkStealQueue.main_fixed, "pct", 2, 100),
}


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_variant_passes(name: str) -> None:
    main, strategy, arg, budget = FIXED[name]
    r = explore(main, strategy, schedules=budget, seed=arg, bound=arg)
    assert r.finding is None, f"{name}: {r.finding}"
    assert r.exhausted or r.schedules == budget


@pytest.mark.slow
@pytest.mark.parametrize("name", ["WorkStealQueue", "InterlockedWorkStealQueue"])
def test_work_steal_queue_fixed_survives_every_two_preemption_schedule(name: str) -> None:
    # BUG3 needs two preemptions (SEARCH): the fixed queue passes all of them.
    r = explore(FIXED[name][0], "dfs", bound=2, schedules=10_000)
    assert r.finding is None and r.exhausted
    bugged = explore(PROGRAMS[name].main, "dfs", bound=2, schedules=10_000)
    assert bugged.finding is not None and bugged.finding.kind == "bug"


# The thread (0..2) that makes each access to the stack's shared variables (head, count,
# Next, Value), in order, on the shortest path to the assertion that an explicit-state
# search of SafeStack.cpp's sequentially consistent semantics (3 threads, 3 items; not part
# of migfuzz) found: two threads end up holding index 0 and one's Value is overwritten.
SAFESTACK_WITNESS = "0001100000012222000002222101202220222222212"


class FollowAccesses:
    """A scheduler that runs main until it blocks, then the thread ``order`` names next,
    counting only its accesses to a :class:`Shared` (a thread's first point is not one)."""

    def __init__(self, order: str) -> None:
        self.order = [int(c) + 1 for c in order]  # thread i is task i + 1; main is task 0

    def new_execution(self) -> bool:
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        raise AssertionError("the executor passes pending operations to this scheduler")

    def next_task_pending(self, runnable: Sequence[int], current: int | None,
                          yielding: bool, pending: Sequence[PendingOp]) -> int:
        if 0 in runnable:
            return 0
        want = self.order[0]
        if isinstance(pending[list(runnable).index(want)].obj, Shared):
            self.order.pop(0)
        return want


def test_safestack_bug_is_reachable_in_the_port() -> None:
    main = PROGRAMS["safestack_bug1"].main
    follow = FollowAccesses(SAFESTACK_WITNESS)
    out = run_once(main, follow)
    assert out.finding is not None and out.finding.kind == "bug", out.finding
    assert out.finding.message == "assertion failed: array[elem].Value == idx"
    assert follow.order == []  # the whole witness ran: the last access is the failing read
    again = replay(main, out.schedule)
    assert again.finding is not None and again.finding.signature == out.finding.signature


# -- the API, feature by feature ------------------------------------------------------------

async def lost_update() -> None:
    x = Shared("x", 0)

    async def inc() -> None:
        await x.write(await x.read() + 1)

    a, b = await spawn(inc), await spawn(inc)
    await a.join()
    await b.join()
    check(await x.read() == 2, "x == 2")


def test_shared_accesses_are_points() -> None:
    # Only an interleaving between a read and its write loses an update: found iff the
    # accesses are scheduling points.
    r = explore(lost_update, "dfs", bound=1, schedules=100)
    assert r.finding is not None and r.finding.kind == "bug"
    assert r.finding.message == "assertion failed: x == 2"
    assert r.finding.function == "lost_update"


async def locked_update() -> None:
    x, m = Shared("x", 0), Mutex("m")

    async def inc() -> None:
        await m.lock()
        await x.write(await x.read() + 1)
        await m.unlock()

    a, b = await spawn(inc), await spawn(inc)
    await a.join()
    await b.join()
    check(await x.read() == 2, "x == 2")


def test_mutex_excludes_and_dfs_exhausts() -> None:
    r = explore(locked_update, "dfs", bound=1, schedules=10_000)
    assert r.finding is None and r.exhausted
    assert r.schedules > 1


async def handoff() -> None:
    m, cv = Mutex("m"), Cond("cv")
    ready, got = Shared("ready", False), Shared("got", 0)

    async def consumer() -> None:
        await m.lock()
        while not await ready.read():
            await cv.wait(m)
        await got.write(1)
        await m.unlock()

    async def producer() -> None:
        await m.lock()
        await ready.write(True)
        await cv.signal()
        await m.unlock()

    c = await spawn(consumer)
    p = await spawn(producer)
    await c.join()
    await p.join()
    check(await got.read() == 1, "got == 1")


def test_cond_wait_signal_never_deadlocks() -> None:
    r = explore(handoff, "dfs", bound=1, schedules=10_000)
    assert r.finding is None and r.exhausted


async def lost_wakeup() -> None:
    # The signal is sent without the predicate: a consumer that waits after it sleeps forever.
    m, cv = Mutex("m"), Cond("cv")

    async def consumer() -> None:
        await m.lock()
        await cv.wait(m)
        await m.unlock()

    c = await spawn(consumer)
    await cv.broadcast()
    await c.join()


def test_lost_wakeup_is_a_deadlock_with_its_wait() -> None:
    r = explore(lost_wakeup, "dfs", bound=0, schedules=10)
    assert r.finding is not None and r.finding.kind == "deadlock"
    assert "waits for cv" in str(r.finding.details["waits"])
    assert "waits for consumer" in str(r.finding.details["waits"])  # main's join
    assert r.finding.signature.removeprefix("deadlock in ") in ("consumer", "lost_wakeup")


async def abba() -> None:
    a, b = Mutex("a"), Mutex("b")

    async def one(x: Mutex, y: Mutex) -> None:
        await x.lock()
        await y.lock()
        await y.unlock()
        await x.unlock()

    await spawn(one, a, b, name="ab")
    await spawn(one, b, a, name="ba")


def test_deadlock_names_the_cycle() -> None:
    r = explore(abba, "random", schedules=100, seed=0)
    assert r.finding is not None and r.finding.kind == "deadlock"
    assert sorted(r.finding.details["cycle"]) == ["ab waits for b", "ba waits for a"]
    # Named by the user's function the first blocked task is in, not "deadlock in ?": a
    # signature that names nothing would merge every deadlock of every program.
    assert r.finding.signature == "deadlock in one"


async def trylock_prog() -> None:
    m = Mutex("m")
    took = Shared("took", 0)

    async def t() -> None:
        if await m.trylock():
            await took.write(await took.read() + 1)
            # keeps m: a second trylock must fail however the tasks interleave

    a, b = await spawn(t), await spawn(t)
    await a.join()
    await b.join()
    check(await took.read() == 1, "exactly one trylock succeeds")


def test_trylock_takes_only_a_free_mutex() -> None:
    r = explore(trylock_prog, "dfs", bound=None, schedules=10_000)
    assert r.finding is None and r.exhausted


async def foreign_unlock() -> None:
    m = Mutex("m")
    await m.lock()

    async def t() -> None:
        await m.unlock()

    await spawn(t, name="thief")


def test_unlock_by_non_owner_is_a_finding() -> None:
    r = explore(foreign_unlock, "random", schedules=1)
    assert r.finding is not None and r.finding.kind == "lock-not-held"
    assert r.finding.task == "thief"


class Recorder:
    """A scheduler wrapper that takes the pending-operation protocol and keeps what it saw."""

    def __init__(self) -> None:
        self.inner = make_scheduler("random", 3)
        self.seen: list[PendingOp] = []

    def new_execution(self) -> bool:
        return self.inner.new_execution()

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        return self.inner.next_task(runnable, current, yielding)

    def next_task_pending(self, runnable: Sequence[int], current: int | None,
                          yielding: bool, pending: Sequence[PendingOp]) -> int:
        self.seen.extend(pending)
        return self.inner.next_task(runnable, current, yielding)


def test_points_carry_typed_pending_ops() -> None:
    rec = Recorder()
    rec.new_execution()
    run_once(locked_update, rec)
    kinds = {(type(p.obj).__name__, p.action) for p in rec.seen}
    assert ("Mutex", ACQUIRE) in kinds and ("Mutex", RELEASE) in kinds
    assert ("Shared", READ) in kinds or ("Shared", WRITE) in kinds
    assert ("Thread", WRITE) in kinds or ("Thread", ACQUIRE) in kinds


@pytest.mark.parametrize("strategy", ["random", "pct", "dfs"])
def test_every_strategy_finds_the_lost_update(strategy: str) -> None:
    r = explore(lost_update, strategy, schedules=500, seed=2, depth=2, bound=1)
    assert r.finding is not None and r.schedules <= 500


async def cas_counter() -> None:
    # Each task adds 1 with a compare-and-swap retry loop: no update is lost iff the CAS is
    # one atomic point (as two points, a read then a write, DFS finds the lost update).
    x = Shared("x", 0)

    async def inc() -> None:
        while True:
            old = await x.read()
            if await x.compare_exchange(old, old + 1) == old:
                break

    a, b = await spawn(inc), await spawn(inc)
    await a.join()
    await b.join()
    check(await x.read() == 2, "x == 2")


def test_compare_exchange_is_one_atomic_point() -> None:
    r = explore(cas_counter, "dfs", bound=2, schedules=10_000)
    assert r.finding is None and r.exhausted and r.schedules > 10


async def exchange_lock() -> None:
    # A test-and-set spinlock on exchange (the chess WorkStealQueue's SpinLock) guarding a
    # read-modify-write: mutual exclusion iff exchange is atomic; fetch_add counts entries.
    lock, x, entries = Shared("lock", 0), Shared("x", 0), Shared("entries", 0)

    async def inc() -> None:
        while await lock.exchange(1) != 0:
            await yield_()
        await x.write(await x.read() + 1)
        await entries.fetch_add(1)
        await lock.write(0)

    a, b = await spawn(inc), await spawn(inc)
    await a.join()
    await b.join()
    check(await x.read() == 2 and await entries.read() == 2, "x == entries == 2")


def test_exchange_lock_excludes_under_every_order() -> None:
    r = explore(exchange_lock, "dfs", bound=2, schedules=10_000)
    assert r.finding is None and r.exhausted and r.schedules > 10


def test_rmw_ops_are_one_write_point_each() -> None:
    rec = Recorder()
    rec.new_execution()
    run_once(exchange_lock, rec)
    lock_ops = [p.action for p in rec.seen if getattr(p.obj, "name", "") == "lock"]
    assert lock_ops and set(lock_ops) == {WRITE}


async def flag_wait() -> None:
    flag = Shared("flag", 0)

    async def waiter() -> None:
        while not await flag.read():
            await yield_()

    t = await spawn(waiter)
    await flag.write(1)
    await t.join()


@pytest.mark.parametrize("program", [flag_wait, exchange_lock])
def test_yield_gives_way_to_the_task_a_spinner_waits_for(program: object) -> None:
    # PCT keeps a yielder's priority: were yield_ a bare point, a spinner with the higher
    # priority would spin until max_steps, a livelock finding. The yielder sleeps until
    # something changes instead, so every run ends.
    for seed in range(3):
        r = explore(program, "pct", schedules=20, seed=seed, max_steps=2000)  # type: ignore[arg-type]
        assert r.finding is None, r.finding


async def lone_spinner() -> None:
    flag = Shared("flag", 0)
    while not await flag.read():
        await yield_()


async def spinner_and_a_sleeper() -> None:
    # The other task blocks on a mutex main holds: main, spinning, is then the only one
    # that can run, so its yield must not sleep (that would be a false deadlock).
    m = Mutex("m")
    await m.lock()

    async def t() -> None:
        await m.lock()

    await spawn(t)
    await lone_spinner()


@pytest.mark.parametrize("program", [lone_spinner, spinner_and_a_sleeper])
def test_a_spinner_nobody_can_release_is_a_livelock(program: object) -> None:
    r = explore(program, "random", schedules=3, max_steps=300)  # type: ignore[arg-type]
    assert r.finding is not None and r.finding.kind == "livelock"


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="unknown strategy 'bogus'"):
        explore(lost_update, "bogus")


@pytest.mark.slow
def test_the_table_script_runs_every_program_under_every_strategy(tmp_path: Path) -> None:
    """bench/sctbench.py as a user runs it: a row per ported program, a column per strategy,
    the bugs the sequential order shows found by every strategy, and bad input exit 2."""
    script = [sys.executable, str(_ROOT / "bench" / "sctbench.py")]
    out = tmp_path / "t.md"
    done = subprocess.run([*script, "--seeds", "1", "--limit", "20", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {line.split(" | ")[0].removeprefix("| "): line.split(" | ")[1:-1]
            for line in out.read_text().splitlines() if line.startswith("| ")}
    assert set(PROGRAMS) <= set(rows)
    strategies = rows.pop("program")  # the header: random, PCT d=1..3, DFS pb=0..2, ...
    assert "DPOR pb=2" in strategies
    for name, port in PROGRAMS.items():
        assert len(rows[name]) == len(strategies)
        if port.sequential_bug:  # the run-to-completion order shows it: found in every column
            assert all(c.startswith(("1/1", "found")) for c in rows[name]), (name, rows[name])
    bad = subprocess.run([*script, "--seeds", "0", "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--seeds" in bad.stderr


@pytest.mark.slow
def test_the_table_script_runs_only_the_programs_asked(tmp_path: Path) -> None:
    script = [sys.executable, str(_ROOT / "bench" / "sctbench.py")]
    out = tmp_path / "t.md"
    done = subprocess.run([*script, "--seeds", "1", "--limit", "5", "--out", str(out),
                           "--programs", "sync01_bad,phase01_bad"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line.split(" | ")[0].removeprefix("| ") for line in out.read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| program")]
    assert rows == ["sync01_bad", "phase01_bad", "**programs found** (of 2)",
                    "**geomean of the medians**"]
    bad = subprocess.run([*script, "--programs", "sync01_bad,nope", "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown program nope" in bad.stderr
    assert bad.stderr.count("\n") == 1  # one line, no traceback


@pytest.mark.slow
def test_the_safestack_script_runs_its_four_searches() -> None:
    """bench/sctbench_safestack.py as bench/sctbench_safestack.md runs it, on a tiny budget:
    one row per search, each the schedules it ran (none finds the bug within 30); a budget
    that is not a number is exit 2."""
    script = [sys.executable, str(_ROOT / "bench" / "sctbench_safestack.py")]
    done = subprocess.run([*script, "--schedules", "30"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows] == [
        "| random", "| pct {'depth': 3}", "| pct {'depth': 5}", "| dfs {'bound': 3}"]
    assert all(" | none in 30 | " in r for r in rows), rows
    bad = subprocess.run([*script, "--schedules", "many"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "--schedules" in bad.stderr
