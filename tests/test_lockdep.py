"""lockdep and the deadlock detector: orders proven unsafe without deadlocking, and real ones.

lockdep (target/kernel/_lockdep.py) reports an order that *could* deadlock from the orders it
has seen, in whatever schedule shows them; the execution's deadlock detector reports the
schedules that *do* deadlock. The tests keep the two apart: an ABBA order in a schedule that
never deadlocks must still be reported, and a deadlock that lockdep cannot see (the two locks
annotated as consistently nested) must be reported by the detector with its wait-for cycle.

Every test runs on both executors. Lock class names start with ``ld-`` so that no documented
order declared by the model applies to them; tests that declare an order use the
``documented_order`` fixture, which restores the module-global list afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from fixed_schedulers import Lowest, RoundRobin

from stress import Outcome
from stress.executors import EXECUTORS, Executor
from stress.schedulers import RandomScheduler
from target.kernel import (
    HOOKS,
    LockClass,
    WaitBit,
    _lockdep,
    declare_order,
    preempt,
    rw_semaphore,
    spinlock_t,
)

Program = list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]]






@pytest.fixture(params=sorted(EXECUTORS))
def run(request: pytest.FixtureRequest) -> Executor:
    return EXECUTORS[request.param]


@pytest.fixture
def documented_order() -> Iterator[Callable[[list[tuple[str, list[Any]]]], None]]:
    """``declare_order`` for one test: the module-global order is restored afterwards.

    ``LockGraph()`` copies ``DOCUMENTED_ORDER`` when an execution starts, so a declaration
    that leaked out of a test would change every later test's lock graph.
    """
    saved = list(_lockdep.DOCUMENTED_ORDER)
    try:
        yield declare_order
    finally:
        _lockdep.DOCUMENTED_ORDER[:] = saved


def finding(outcome: Outcome, kind: str) -> Any:
    f = outcome.finding
    assert f is not None, f"expected a {kind} finding, the run was clean"
    assert f.kind == kind, f
    return f


def spin(cls: str, name: str) -> spinlock_t:
    return spinlock_t(LockClass(cls, sleeping=False), name)


def page_lock(cls: str, name: str) -> WaitBit:
    return WaitBit(name, LockClass(cls, sleeping=True))


# -- lock-order inversion without a deadlock -------------------------------------------------


def abba(lock_a: Any, lock_b: Any, log: list[str]) -> Program:
    """t1 takes A then B; t2 takes B then A. Both release everything they took."""

    async def t1() -> None:
        await lock_a.lock()
        await lock_b.lock()
        log.append("t1 holds A, B")
        unlock(lock_b)
        unlock(lock_a)
        log.append("t1 released")

    async def t2() -> None:
        await lock_b.lock()
        log.append("t2 holds B")
        await lock_a.lock()
        log.append("t2 holds B, A")
        unlock(lock_a)
        unlock(lock_b)

    return [("t1", t1), ("t2", t2)]


def unlock(lock: Any) -> None:
    if isinstance(lock, WaitBit):
        lock.clear()
    else:
        lock.unlock()


LOCK_MAKERS: dict[str, Callable[[str, str], Any]] = {"spinlock": spin, "page-lock": page_lock}


@pytest.mark.parametrize("make", sorted(LOCK_MAKERS))
def test_abba_is_reported_in_a_schedule_that_does_not_deadlock(run: Executor, make: str) -> None:
    """t1 runs to completion before t2 starts, so nothing ever waits; the order is still bad.

        t1                          t2
        lock A; lock B   (A -> B)
        unlock B; unlock A
                                    lock B
                                    lock A   (B -> A closes the cycle: reported here)
    """
    lock_a = LOCK_MAKERS[make]("ld-A", "A")
    lock_b = LOCK_MAKERS[make]("ld-B", "B")
    log: list[str] = []
    outcome = run(Lowest(), abba(lock_a, lock_b, log))

    f = finding(outcome, "lock-order-inversion")
    assert f.task == "t2"
    # No deadlock: t1 had finished and A was free when t2 asked for it.
    assert log == ["t1 holds A, B", "t1 released", "t2 holds B"]
    assert lock_a.owner is None
    assert f.details["classes"] == ["ld-A", "ld-B"]
    # Both chains: the new dependency and the existing one it closes a cycle with.
    assert f.details["new_dependency"].startswith("ld-B -> ld-A: t2 at step ")
    assert "acquiring A" in f.details["new_dependency"]
    [existing] = f.details["existing_chain"]
    assert existing.startswith("ld-A -> ld-B: t1 at step ")
    assert "acquiring B" in existing


def test_abba_is_reported_before_any_schedule_can_deadlock(run: Executor) -> None:
    """Over random walks, lockdep always speaks first: the second acquisition of a deadlock
    adds the closing edge before it waits."""
    kinds = set()
    for seed in range(30):
        sched = RandomScheduler(seed)
        sched.new_execution()
        outcome = run(sched, abba(spin("ld-A", "A"), spin("ld-B", "B"), []))
        kinds.add(finding(outcome, "lock-order-inversion").task)
    assert kinds == {"t1", "t2"}  # either task can be the one that closes the cycle


def test_three_lock_cycle_reports_the_whole_existing_chain(run: Executor) -> None:
    a, b, c = spin("ld-A", "A"), spin("ld-B", "B"), spin("ld-C", "C")

    def pair(first: spinlock_t, second: spinlock_t) -> Callable[[], Coroutine[Any, Any, None]]:
        async def task() -> None:
            await first.lock()
            await second.lock()
            second.unlock()
            first.unlock()

        return task

    outcome = run(Lowest(), [("ab", pair(a, b)), ("bc", pair(b, c)), ("ca", pair(c, a))])
    f = finding(outcome, "lock-order-inversion")
    assert f.task == "ca"
    chain = f.details["existing_chain"]
    assert [link.split(":")[0] for link in chain] == ["ld-A -> ld-B", "ld-B -> ld-C"]


def test_trylock_adds_no_edge_to_the_lock(run: Executor) -> None:
    """A trylock cannot wait, so taking A by trylock under B is no B -> A dependency."""
    a, b = spin("ld-A", "A"), spin("ld-B", "B")

    async def task() -> None:
        await a.lock()
        await b.lock()
        b.unlock()
        a.unlock()
        await b.lock()
        assert await a.trylock()
        a.unlock()
        b.unlock()

    assert run(Lowest(), [("t", task)]).finding is None


def test_a_held_trylock_is_the_source_of_edges(run: Executor) -> None:
    a, b = spin("ld-A", "A"), spin("ld-B", "B")

    async def task() -> None:
        assert await a.trylock()
        await b.lock()  # A -> B, although A was a trylock
        b.unlock()
        a.unlock()
        await b.lock()
        await a.lock()

    finding(run(Lowest(), [("t", task)]), "lock-order-inversion")


def test_the_graph_belongs_to_one_execution(run: Executor) -> None:
    """A -> B in one run and B -> A in the next: each run alone is clean, and a replay of
    either run reports the same thing whatever ran before it."""
    for first, second in (("A", "B"), ("B", "A")):
        locks = {"A": spin("ld-A", "A"), "B": spin("ld-B", "B")}
        assert run(Lowest(), nested(locks[first], locks[second])).finding is None


def test_nesting_subclasses_are_distinct_vertices(run: Executor) -> None:
    """X/0 -> X/1 is fine; X/1 -> X/0 afterwards is an inversion between the subclasses."""
    cls = LockClass("ld-X", sleeping=False)
    parent, child = spinlock_t(cls, "parent"), spinlock_t(cls, "child")

    async def task() -> None:
        await parent.lock()
        await child.lock(subclass=1)
        child.unlock()
        parent.unlock()
        await child.lock(subclass=1)
        await parent.lock()  # X/0 under X/1

    f = finding(run(Lowest(), [("t", task)]), "lock-order-inversion")
    assert f.details["new_dependency"].startswith("ld-X/1 -> ld-X: ")


# -- real deadlocks --------------------------------------------------------------------------


def misannotated_pair(kind: str) -> tuple[Program, list[Any]]:
    """Two locks of one class, each task annotating its second lock as the nested one.

    lockdep sees only X/0 -> X/1 from both tasks, a consistent order, but the tasks take the
    two *instances* in opposite orders: the deadlock lockdep cannot see (the reason nesting
    annotations are dangerous).
    """
    cls = LockClass(f"ld-{kind}", sleeping=kind != "spinlock")
    if kind == "spinlock":
        locks: list[Any] = [spinlock_t(cls, "L1"), spinlock_t(cls, "L2")]
    elif kind == "rwsem":
        locks = [rw_semaphore(cls, "L1"), rw_semaphore(cls, "L2")]
    else:
        locks = [WaitBit("L1", cls), WaitBit("L2", cls)]

    async def take(lock: Any, subclass: int) -> None:
        if isinstance(lock, rw_semaphore):
            await lock.down_write(subclass)
        else:
            await lock.lock(subclass)

    def task(first: Any, second: Any) -> Callable[[], Coroutine[Any, Any, None]]:
        async def body() -> None:
            await take(first, 0)
            await preempt()
            await take(second, 1)

        return body

    return [("t0", task(locks[0], locks[1])), ("t1", task(locks[1], locks[0]))], locks


@pytest.mark.parametrize("kind", ["spinlock", "rwsem", "page-lock"])
def test_deadlock_is_reported_with_its_wait_for_cycle(run: Executor, kind: str) -> None:
    """RoundRobin lets each task take its first lock before either takes its second:

        t0                      t1
        lock L1
                                lock L2
        lock L2: waits for t1
                                lock L1: waits for t0   -> nobody can run
    """
    program, _ = misannotated_pair(kind)
    f = finding(run(RoundRobin(), program), "deadlock")
    assert f.task == "-"
    assert f.details["cycle"] == ["t0 waits for L2", "t1 waits for L1"]
    assert f.details["waits"] == {
        "t0": "waits for L2 (held by t1)",
        "t1": "waits for L1 (held by t0)",
    }
    assert f.details["classes"] == [f"ld-{kind}"]
    assert f.message == "deadlock: t0 waits for L2 -> t1 waits for L1"


def test_deadlock_on_a_bit_that_only_the_other_task_would_clear(run: Executor) -> None:
    """A page lock held across a wait on PG_writeback that only the other task would end.

        t0 (writeback of P)                 t1
        TestSetPageWriteback(P)
                                            lock_page(P)
        lock_page(P): waits for t1
                                            wait_on_page_writeback(P): waits for t0

    The bit has no owner, so there is no owner chain to follow: the detector reports that
    nobody can run and what each task waits for; ``cycle`` stays empty.
    """
    locked = page_lock("ld-PG_locked", "PG_locked")
    writeback = WaitBit("PG_writeback")

    async def t0() -> None:
        writeback.test_and_set()
        await preempt()
        await locked.lock()
        writeback.clear()  # never reached
        locked.clear()

    async def t1() -> None:
        await locked.lock()
        await preempt()
        await writeback.wait_clear()
        locked.clear()

    f = finding(run(RoundRobin(), [("t0", t0), ("t1", t1)]), "deadlock")
    assert f.details["waits"] == {
        "t0": "waits for PG_locked (held by t1)",
        "t1": "waits for PG_writeback (held by nobody)",
    }
    assert f.details["cycle"] == []
    assert f.message.startswith("deadlock: no task can run: ")
    assert f.details["classes"] == ["ld-PG_locked"]


def test_a_lone_task_waiting_forever_is_a_deadlock(run: Executor) -> None:
    bit = WaitBit("never-cleared")

    async def task() -> None:
        bit.test_and_set()
        await bit.wait_clear()

    f = finding(run(Lowest(), [("t", task)]), "deadlock")
    assert f.details["waits"] == {"t": "waits for never-cleared (held by nobody)"}


def test_no_deadlock_when_the_waits_resolve(run: Executor) -> None:
    """The same shape as the misannotated pair, in a consistent instance order: clean."""
    cls = LockClass("ld-consistent", sleeping=False)
    l1, l2 = spinlock_t(cls, "L1"), spinlock_t(cls, "L2")

    async def task() -> None:
        await l1.lock()
        await preempt()
        await l2.lock(subclass=1)
        l2.unlock()
        l1.unlock()

    assert run(RoundRobin(), [("t0", task), ("t1", task)]).finding is None


# -- sleeping under a spinlock ---------------------------------------------------------------


def test_sleeping_under_a_spinlock_is_reported(run: Executor) -> None:
    lock = spin("ld-spin", "ptl")
    sem = rw_semaphore(LockClass("ld-sem", sleeping=True), "mmap_sem")

    async def task() -> None:
        await lock.lock()
        await sem.down_write()

    f = finding(run(Lowest(), [("t", task)]), "sleep-in-atomic")
    assert f.details == {"task": "t", "held": ["ptl"], "op": "down_write"}
    assert "sleeping function called from invalid context" in f.message


def test_an_inverted_sleeping_acquisition_under_a_spinlock_reports_the_order(
    run: Executor,
) -> None:
    """Both wrong at once: lockdep runs before might_sleep, so the finding is the order (the
    more specific diagnosis: the fix is to take the sleeping lock first)."""
    lock = spin("ld-spin", "ptl")
    sem = rw_semaphore(LockClass("ld-sem", sleeping=True), "mmap_sem")

    async def task() -> None:
        await sem.down_read()
        await lock.lock()
        lock.unlock()
        sem.up_read()
        await lock.lock()
        await sem.down_read()

    finding(run(Lowest(), [("t", task)]), "lock-order-inversion")


# -- the documented order --------------------------------------------------------------------


TREE: list[tuple[str, list[Any]]] = [
    ("ld-doc-outer", [("ld-doc-middle", [("ld-doc-inner", [])])]),
]


def nested(outer: spinlock_t, inner: spinlock_t) -> Program:
    async def task() -> None:
        await outer.lock()
        await inner.lock()
        inner.unlock()
        outer.unlock()

    return [("t", task)]


def test_one_acquisition_against_the_documented_order_is_reported(
    run: Executor, documented_order: Callable[[list[tuple[str, list[Any]]]], None]
) -> None:
    """The reverse order was never observed: the documented tree alone makes it a cycle."""
    documented_order(TREE)
    outer, inner = spin("ld-doc-outer", "outer"), spin("ld-doc-middle", "middle")
    f = finding(run(Lowest(), nested(inner, outer)), "lock-order-inversion")
    assert f.details["existing_chain"] == [
        "ld-doc-outer -> ld-doc-middle: documented in mm/rmap.c lock ordering"
    ]
    # Fresh locks: the run above ended holding ``inner`` (lock state outlives a run).
    outer, inner = spin("ld-doc-outer", "outer"), spin("ld-doc-middle", "middle")
    assert run(Lowest(), nested(outer, inner)).finding is None  # the documented direction


def test_the_documented_order_relates_every_ancestor_to_every_descendant(
    run: Executor, documented_order: Callable[[list[tuple[str, list[Any]]]], None]
) -> None:
    documented_order(TREE)
    outer, inner = spin("ld-doc-outer", "outer"), spin("ld-doc-inner", "inner")
    f = finding(run(Lowest(), nested(inner, outer)), "lock-order-inversion")
    assert f.details["existing_chain"] == [
        "ld-doc-outer -> ld-doc-inner: documented in mm/rmap.c lock ordering"
    ]


def test_undeclared_classes_are_not_ordered(run: Executor) -> None:
    """Without the fixture, nothing relates the ld-doc-* classes: either order is clean."""
    outer, inner = spin("ld-doc-outer", "outer"), spin("ld-doc-middle", "middle")
    assert not any(e[0] == ("ld-doc-outer", 0) for e in _lockdep.DOCUMENTED_ORDER)
    assert run(Lowest(), nested(inner, outer)).finding is None


def test_hooks_hold_no_graph_between_runs() -> None:
    """After a run the installed run queue is a fresh one; its graph has only documented edges."""
    graph = HOOKS.rq.lockdep
    documented = sum(len(v) for v in graph.edges.values())
    assert documented == len(set(_lockdep.DOCUMENTED_ORDER))
