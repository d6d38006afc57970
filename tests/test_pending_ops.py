"""Typed scheduling points: a scheduler that asks sees what every runnable task will do next.

Every point of the model names its pending operation (``target.kernel.PendingOp``: the object,
the part of it, the action), as loom's ``Operation`` and fray's pending operation do; a
strategy implementing ``next_task_pending`` (``stress.schedulers.PendingOpsScheduler``) gets
the pending operation of every runnable task at each decision, on both executors. These tests
run real executions and check that what the scheduler is told is what the tasks then do; and
that nothing is guessed from names or paths (lock classes ride on the events,
tests/test_fuzzers.py; a finding's model function is found by module name, here).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from stress.executors import EXECUTORS, Executor
from stress.run import run_scenario
from stress.scenarios import CANONICAL
from stress.schedulers import RandomScheduler
from target.kernel import ACQUIRE, HOOKS, NONE, READ, TRY, WRITE, PendingOp, spinlock_t
from target.mm.locking import PTL


class Recording:
    """A strategy of the richer protocol: random choices (as ``RandomScheduler``), and a log
    of (step, runnable tids, their pending operations, chosen tid) per decision."""

    def __init__(self, seed: int) -> None:
        self.inner = RandomScheduler(seed)
        self.log: list[tuple[int, Sequence[int], Sequence[PendingOp], int]] = []
        self.plain_calls = 0

    def new_execution(self) -> bool:
        return self.inner.new_execution()

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        self.plain_calls += 1  # must not happen: the execution calls next_task_pending
        return self.inner.next_task(runnable, current, yielding)

    def next_task_pending(self, runnable: Sequence[int], current: int | None, yielding: bool,
                          pending: Sequence[PendingOp]) -> int:
        tid = self.inner.next_task(runnable, current, yielding)
        self.log.append((HOOKS.rq.step, list(runnable), pending, tid))  # the step decided
        return tid


class FirstFree:
    """Runs task 0 to its first point, then task 1 to its own, then lets them race."""

    def __init__(self) -> None:
        self.seen: list[Sequence[PendingOp]] = []

    def new_execution(self) -> bool:
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        raise AssertionError("a PendingOpsScheduler is asked through next_task_pending")

    def next_task_pending(self, runnable: Sequence[int], current: int | None, yielding: bool,
                          pending: Sequence[PendingOp]) -> int:
        self.seen.append(pending)
        return [0, 1][len(self.seen) - 1] if len(self.seen) <= 2 else runnable[0]


@pytest.mark.parametrize("executor", sorted(EXECUTORS))
def test_two_tasks_about_to_take_one_ptl_name_the_same_lock(executor: str) -> None:
    ptl = spinlock_t(PTL, "mm1.ptl[0]")
    other = spinlock_t(PTL, "mm1.ptl[1]")

    async def taker() -> None:
        await ptl.lock()
        await ptl.unlock()
        await other.lock()  # (not nested: lockdep wants a subclass for that)
        await other.unlock()

    run: Executor = EXECUTORS[executor]
    sched = FirstFree()
    out = run(sched, [("a", taker), ("b", taker)])
    assert out.finding is None
    start, after_a, both = sched.seen[:3]
    assert [(p.tid, p.obj, p.action) for p in start] == [(0, None, NONE), (1, None, NONE)]
    assert [(p.tid, p.obj, p.action) for p in after_a] == [(0, ptl, ACQUIRE), (1, None, NONE)]
    assert [(p.tid, p.obj, p.action) for p in both] == [(0, ptl, ACQUIRE), (1, ptl, ACQUIRE)]
    assert both[0].lock_class is both[1].lock_class is PTL
    # the second ptl is another object of the same class: no conflict, one class
    later = [p for ops in sched.seen for p in ops if p.obj is other]
    assert later and all(p.lock_class is PTL for p in later)


_CHECKED = ("lock", "get_page", "put_page", "mapcount", "pte", "peek")


def _matches(op: PendingOp, kind: str, f: dict[str, Any]) -> bool:
    """Whether event ``kind`` with fields ``f`` is the operation ``op`` announced."""
    obj: Any = op.obj
    if kind == "lock":
        return op.action in (ACQUIRE, TRY) and obj is not None and obj.name == f["lock"]
    if kind in ("get_page", "put_page", "mapcount"):
        part = "mapcount" if kind == "mapcount" else "count"
        return op.action == WRITE and op.part == part and obj.pfn == f["pfn"]
    action = WRITE if kind == "pte" else READ
    return op.action == action and op.part == f["addr"] and obj.name == f["mm"]


def test_the_pending_op_is_what_the_chosen_task_does() -> None:
    """At every decision, each runnable task's announced operation is the first shared
    access it makes when it next runs (its lock, its page count or mapcount, its pte write
    or peek), unless the operation is a read or a release, which leave no event. And
    asking for pending operations changes no decision: the same seed gives the same trace
    as the plain protocol."""
    scenario = "migrate-vs-fork-exit"  # seed 0 alone reaches every kind checked
    checked: dict[str, int] = {}
    for seed in (0, 1):
        rec = Recording(seed)
        rec.new_execution()
        out = run_scenario(CANONICAL[scenario](), rec, trace=True)
        assert rec.plain_calls == 0 and rec.log
        plain = RandomScheduler(seed)
        plain.new_execution()
        assert run_scenario(CANONICAL[scenario](), plain, trace=True).trace_key == out.trace_key

        by_step: dict[tuple[int, int], list[tuple[str, dict[str, Any]]]] = {}
        runner: list[int] = [-1] * (out.steps + 2)  # who ran at each step, from the switches
        for e in out.events or []:
            by_step.setdefault((e.step, e.tid), []).append((e.kind, e.fields))
            if e.kind == "switch":
                runner[e.step] = e.tid
        for s in range(1, len(runner)):
            if runner[s] == -1:
                runner[s] = runner[s - 1]
        for step, runnable, pending, _ in rec.log:
            assert [p.tid for p in pending] == list(runnable)
            for op in pending:  # every runnable task's, checked where it next runs
                nxt = next((s for s in range(step, out.steps + 1) if runner[s] == op.tid), None)
                if nxt is None or op.action not in (ACQUIRE, TRY, WRITE, READ):
                    continue  # never ran again, or a release/start point
                first = next(((k, f) for k, f in by_step.get((nxt, op.tid), [])
                              if k in _CHECKED), None)
                if first is None or (op.action == READ and first[0] != "peek"):
                    continue  # nothing shared in that step, or a read (reads leave no event)
                kind, fields = first
                assert _matches(op, kind, fields), (nxt, op, kind, fields)
                checked[kind] = checked.get(kind, 0) + 1
    assert {"lock", "get_page", "put_page", "mapcount", "pte"} <= set(checked), checked


def test_the_function_a_finding_fired_in_is_found_by_module_not_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A finding names the innermost *model* function: a frame of a ``target.`` module
    outside ``target.kernel``. A helper whose file merely sits under a folder named
    ``target`` is not model code (the old path test said it was)."""
    from target.kernel import BUG
    from target.mm.swap import get_page
    from target.mm.types import Page

    folder = tmp_path / "target"
    folder.mkdir()
    (folder / "outside_helper.py").write_text(
        "async def helper(bug):\n    bug('bug', 'raised outside the model')\n")
    monkeypatch.syspath_prepend(str(folder))
    import outside_helper  # type: ignore[import-not-found]

    async def model() -> None:
        await get_page(Page(7, 0))  # a free page: use-after-free in get_page

    async def outside() -> None:
        await outside_helper.helper(BUG)

    for fn, expected in ((model, "get_page"), (outside, "?")):
        sched = RandomScheduler(0)
        sched.new_execution()
        out = EXECUTORS["direct"](sched, [("t", fn)])
        assert out.finding is not None and out.finding.function == expected
