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
)
from target.kernel import ACQUIRE, READ, RELEASE, WRITE, PendingOp

_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
from bench.sctbench import PROGRAMS  # noqa: E402

# The budget each port's search gets and the strategy: the cheapest that finds it (seeded).
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
}


def test_every_port_has_a_search() -> None:
    assert sorted(SEARCH) == sorted(PROGRAMS)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
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
    for name, port in PROGRAMS.items():
        assert len(rows[name]) == 10  # random, PCT d=1..3, POS, cpct, SURW, DFS pb=0..2
        if port.sequential_bug:  # the run-to-completion order shows it: found in every column
            assert all(c.startswith(("1/1", "found")) for c in rows[name]), (name, rows[name])
    bad = subprocess.run([*script, "--seeds", "0", "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--seeds" in bad.stderr
