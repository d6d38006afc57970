"""One contract for every kernel primitive, run over both executors.

Like trio's ``generic_lock_test`` (``trio/_tests/test_sync.py``), each behaviour is written once
and run over every primitive that promises it, and every test runs on the direct and the trio
executor through the ``run`` fixture: a primitive must behave the same whichever executor
transfers control.

Schedules are controlled, never timed: ``RoundRobin`` switches task at every decision (fair, so
a task that polls a flag with ``await preempt()`` always lets the others progress), and the
random-walk tests name their seeds. Lock class names start with ``kp-`` so that no documented
lock order declared elsewhere (``target.mm.locking``) applies to them.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ClassVar

import pytest
from fixed_schedulers import RoundRobin

from stress import Outcome
from stress.executors import EXECUTORS, Executor
from stress.schedulers import RandomScheduler
from target.kernel import (
    HOOKS,
    KObject,
    LockClass,
    WaitBit,
    cond_resched,
    kasan_check,
    kfree,
    lockdep_assert_held,
    preempt,
    rcu_read_lock,
    rcu_read_unlock,
    rw_semaphore,
    spinlock_t,
    yield_,
)

Program = list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]]

SEEDS = range(30)


# -- harness ---------------------------------------------------------------------------------




class Recording(RoundRobin):
    """RoundRobin that remembers what it was asked: (current, yielding) per decision."""

    def __init__(self) -> None:
        self.asked: list[tuple[int | None, bool]] = []

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        self.asked.append((current, yielding))
        return super().next_task(runnable, current, yielding)


@pytest.fixture(params=sorted(EXECUTORS))
def run(request: pytest.FixtureRequest) -> Executor:
    """Each test runs once per executor."""
    return EXECUTORS[request.param]


def go(run: Executor, program: Program, scheduler: Any = None, **kwargs: Any) -> Outcome:
    """Run ``program`` once; RoundRobin unless a scheduler is given.

    The step bound is low: these programs take tens of steps, and a test whose polling can
    never succeed should fail fast with a livelock finding rather than run 50,000 points.
    """
    kwargs.setdefault("max_steps", 2_000)
    return run(scheduler if scheduler is not None else RoundRobin(), program, **kwargs)


def seeded(seed: int) -> RandomScheduler:
    sched = RandomScheduler(seed)
    sched.new_execution()
    return sched


async def until(cond: Callable[[], bool]) -> None:
    """Poll ``cond`` at scheduling points: a Sequencer for a fair scheduler."""
    while not cond():
        await preempt()


def blocked(tid: int) -> bool:
    """Whether task ``tid`` of the running execution is off the run queue, waiting."""
    return HOOKS.rq.tasks[tid].wait_on is not None


def clean(outcome: Outcome) -> None:
    assert outcome.finding is None, outcome.finding


def found(outcome: Outcome, kind: str) -> dict[str, Any]:
    """Assert the run ended with a finding of ``kind``; return its details."""
    f = outcome.finding
    assert f is not None, f"expected a {kind} finding, the run was clean"
    assert f.kind == kind, f
    return f.details


# -- the primitives behind one interface -----------------------------------------------------


class Kind:
    """An exclusive lock primitive behind one interface, for the generic tests."""

    name: ClassVar[str]
    sleeping: ClassVar[bool]
    lock: Any

    def __init__(self, lock_class: LockClass | None = None, name: str = "L") -> None:
        self.lock_class = lock_class or LockClass(f"kp-{self.name}", sleeping=self.sleeping)
        self.lock_name = name

    async def acquire(self, subclass: int = 0) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def holder(self) -> Any:
        raise NotImplementedError

    async def trylock(self) -> bool:
        """True when the lock was taken; never waits."""
        raise NotImplementedError


class Spin(Kind):
    name = "spinlock"
    sleeping = False

    def __init__(self, lock_class: LockClass | None = None, name: str = "L") -> None:
        super().__init__(lock_class, name)
        self.lock = spinlock_t(self.lock_class, name)

    async def acquire(self, subclass: int = 0) -> None:
        await self.lock.lock(subclass)

    def release(self) -> None:
        self.lock.unlock()

    def holder(self) -> Any:
        return self.lock.owner

    async def trylock(self) -> bool:
        return await self.lock.trylock()


class RwsemWrite(Kind):
    name = "rwsem-write"
    sleeping = True

    def __init__(self, lock_class: LockClass | None = None, name: str = "L") -> None:
        super().__init__(lock_class, name)
        self.lock = rw_semaphore(self.lock_class, name)

    async def acquire(self, subclass: int = 0) -> None:
        await self.lock.down_write(subclass)

    def release(self) -> None:
        self.lock.up_write()

    def holder(self) -> Any:
        return self.lock.writer


class PageLock(Kind):
    """PG_locked: ``lock_page`` / ``TestSetPageLocked`` / ``unlock_page``."""

    name = "page-lock"
    sleeping = True

    def __init__(self, lock_class: LockClass | None = None, name: str = "L") -> None:
        super().__init__(lock_class, name)
        self.lock = WaitBit(name, self.lock_class)

    async def acquire(self, subclass: int = 0) -> None:
        await self.lock.lock(subclass)

    def release(self) -> None:
        self.lock.clear()

    def holder(self) -> Any:
        return self.lock.owner

    async def trylock(self) -> bool:
        await preempt()  # test_and_set does not pass a point itself; its caller does
        return not self.lock.test_and_set()


KINDS: list[type[Kind]] = [Spin, RwsemWrite, PageLock]
TRYLOCK_KINDS: list[type[Kind]] = [Spin, PageLock]


def kind_id(kind: type[Kind]) -> str:
    return kind.name


# -- mutual exclusion and wake-ups -----------------------------------------------------------


def counter_program(
    lock: Kind | None, tasks: int = 3, rounds: int = 3
) -> tuple[Program, dict[str, int]]:
    """Tasks increment a shared counter non-atomically: read, point, write back.

    Without mutual exclusion a task preempted between its read and its write loses another
    task's increment; ``state["max_inside"]`` records how many tasks were ever inside at once.
    """
    state = {"count": 0, "inside": 0, "max_inside": 0}

    def body() -> Callable[[], Coroutine[Any, Any, None]]:
        async def task() -> None:
            for _ in range(rounds):
                if lock is not None:
                    await lock.acquire()
                state["inside"] += 1
                state["max_inside"] = max(state["max_inside"], state["inside"])
                value = state["count"]
                await preempt()
                state["count"] = value + 1
                state["inside"] -= 1
                if lock is not None:
                    lock.release()

        return task

    return [(f"t{i}", body()) for i in range(tasks)], state


@pytest.mark.parametrize("kind", KINDS, ids=kind_id)
def test_mutual_exclusion_under_random_schedules(run: Executor, kind: type[Kind]) -> None:
    for seed in SEEDS:
        program, state = counter_program(kind())
        clean(go(run, program, seeded(seed)))
        assert state["count"] == 9, f"seed {seed} lost an update"
        assert state["max_inside"] == 1, f"seed {seed}: two holders at once"


def test_the_counter_program_detects_a_missing_lock(run: Executor) -> None:
    """The control for the test above: without a lock, some seed loses an update."""
    lost = []
    for seed in SEEDS:
        program, state = counter_program(None)
        clean(go(run, program, seeded(seed)))
        if state["count"] < 9:
            lost.append(seed)
    assert lost


@pytest.mark.parametrize("kind", KINDS, ids=kind_id)
def test_waiter_sleeps_until_release_then_gets_the_lock(run: Executor, kind: type[Kind]) -> None:
    lock = kind()
    log: list[str] = []

    async def holder() -> None:
        await lock.acquire()
        log.append("t0 holds")
        await until(lambda: blocked(1))  # t1 tried and now waits
        log.append("t1 waits")
        lock.release()
        log.append("t0 released")

    async def waiter() -> None:
        await until(lambda: lock.holder() is not None)
        await lock.acquire()
        log.append("t1 holds")
        lock.release()

    clean(go(run, [("t0", holder), ("t1", waiter)]))
    assert log == ["t0 holds", "t1 waits", "t0 released", "t1 holds"]


@pytest.mark.parametrize("kind", KINDS, ids=kind_id)
def test_every_waiter_gets_the_lock_in_turn(run: Executor, kind: type[Kind]) -> None:
    lock = kind()
    got: list[str] = []

    async def holder() -> None:
        await lock.acquire()
        await until(lambda: blocked(1) and blocked(2))
        lock.release()

    def waiter(name: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def task() -> None:
            await until(lambda: lock.holder() is not None)
            await lock.acquire()
            got.append(name)
            await preempt()
            lock.release()

        return task

    clean(go(run, [("t0", holder), ("t1", waiter("t1")), ("t2", waiter("t2"))]))
    assert sorted(got) == ["t1", "t2"]


# -- trylock ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRYLOCK_KINDS, ids=kind_id)
def test_trylock_fails_while_held_and_never_blocks(run: Executor, kind: type[Kind]) -> None:
    lock = kind()
    flags = {"tried": False}
    results: list[bool] = []

    async def holder() -> None:
        await lock.acquire()
        # Holds the lock until t1 has tried: a trylock that waited would deadlock here.
        await until(lambda: flags["tried"])
        lock.release()

    async def trier() -> None:
        await until(lambda: lock.holder() is not None)
        results.append(await lock.trylock())
        assert lock.holder() is HOOKS.rq.tasks[0], "t0 still holds it: t1 did not wait"
        flags["tried"] = True
        await until(lambda: lock.holder() is None)
        results.append(await lock.trylock())
        lockdep_assert_held(lock.lock)
        lock.release()

    clean(go(run, [("t0", holder), ("t1", trier)]))
    assert results == [False, True]


# -- rw_semaphore ----------------------------------------------------------------------------


def rwsem() -> rw_semaphore:
    return rw_semaphore(LockClass("kp-rwsem", sleeping=True), "sem")


def test_rwsem_readers_share(run: Executor) -> None:
    sem = rwsem()
    shared = {"both": False}

    def reader() -> Callable[[], Coroutine[Any, Any, None]]:
        async def task() -> None:
            await sem.down_read()
            # Both readers inside at once, or this polls until the step bound (livelock).
            await until(lambda: shared["both"] or len(sem.readers) == 2)
            shared["both"] = True
            sem.up_read()

        return task

    clean(go(run, [("t0", reader()), ("t1", reader())]))


@pytest.mark.parametrize("first", ["writer", "reader"])
def test_rwsem_writer_and_readers_exclude(run: Executor, first: str) -> None:
    """A writer keeps readers out and a reader keeps the writer out, whichever comes first."""
    sem = rwsem()
    log: list[str] = []

    async def writer() -> None:
        await sem.down_write()
        log.append("write")
        await preempt()
        sem.up_write()
        log.append("write done")

    async def reader() -> None:
        await sem.down_read()
        log.append("read")
        await preempt()
        sem.up_read()
        log.append("read done")

    first_fn, second_fn = (writer, reader) if first == "writer" else (reader, writer)

    async def second() -> None:
        await until(lambda: sem.writer is not None or bool(sem.readers))
        await second_fn()

    clean(go(run, [("t0", first_fn), ("t1", second)]))
    assert log[1] == f"{'write' if first == 'writer' else 'read'} done"


def test_rwsem_fifo_hand_off_reader_waits_behind_queued_writer(run: Executor) -> None:
    """A reader arriving after a queued writer waits although only readers hold the lock.

    The 2006 rwsem hands the lock over in FIFO order (``__rwsem_do_wake``): the writer goes
    first when the last reader leaves, so readers cannot starve it.

        t0                      t1                  t2
        down_read
                                down_write: queued
                                                    down_read: queued behind t1
        up_read -> t1 granted
                                up_write -> t2 granted
    """
    sem = rwsem()
    log: list[str] = []

    async def first_reader() -> None:
        await sem.down_read()
        await until(lambda: blocked(1) and blocked(2))
        assert sem.readers == [HOOKS.rq.tasks[0]], "t2 did not join the readers"
        log.append("t0 up_read")
        sem.up_read()

    async def writer() -> None:
        await until(lambda: bool(sem.readers))
        await sem.down_write()
        log.append("t1 writes")
        await preempt()
        sem.up_write()

    async def late_reader() -> None:
        await until(lambda: blocked(1))
        await sem.down_read()
        log.append("t2 reads")
        sem.up_read()

    clean(go(run, [("t0", first_reader), ("t1", writer), ("t2", late_reader)]))
    assert log == ["t0 up_read", "t1 writes", "t2 reads"]


def rwsem_program() -> tuple[Program, list[str]]:
    """Two readers and a writer, each taking the semaphore twice; records any violation."""
    sem = rwsem()
    inside = {"r": 0, "w": 0}
    bad: list[str] = []

    def body(write: bool) -> Callable[[], Coroutine[Any, Any, None]]:
        mode = "w" if write else "r"

        async def task() -> None:
            for _ in range(2):
                await (sem.down_write() if write else sem.down_read())
                inside[mode] += 1
                if inside["w"] > 1 or (inside["w"] and inside["r"]):
                    bad.append(f"{inside}")
                await preempt()
                inside[mode] -= 1
                sem.up_write() if write else sem.up_read()

        return task

    return [("r0", body(False)), ("w", body(True)), ("r1", body(False))], bad


def test_rwsem_invariant_under_random_schedules(run: Executor) -> None:
    """Never a writer together with anyone else, over random walks of 2 readers + 1 writer."""
    for seed in SEEDS:
        program, bad = rwsem_program()
        clean(go(run, program, seeded(seed)))
        assert not bad, f"seed {seed}: {bad}"


# -- WaitBit as PG_writeback -----------------------------------------------------------------


def test_wait_clear_sleeps_until_the_bit_is_cleared(run: Executor) -> None:
    writeback = WaitBit("writeback")  # no lock class: a state, cleared by "I/O completion"
    log: list[str] = []

    async def io() -> None:
        assert writeback.test_and_set() is False
        await until(lambda: blocked(1) and blocked(2))
        log.append("end_page_writeback")
        writeback.clear()

    def waiter(name: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def task() -> None:
            await until(lambda: writeback.is_set)
            await writeback.wait_clear()
            log.append(f"{name} woke")

        return task

    clean(go(run, [("io", io), ("w1", waiter("w1")), ("w2", waiter("w2"))]))
    assert log[0] == "end_page_writeback"
    assert sorted(log[1:]) == ["w1 woke", "w2 woke"]


def test_wait_clear_on_a_clear_bit_does_not_sleep(run: Executor) -> None:
    writeback = WaitBit("writeback")
    woke: list[bool] = []

    async def task() -> None:
        await writeback.wait_clear()
        woke.append(True)

    clean(go(run, [("t0", task)]))
    assert woke == [True]


def test_a_bit_without_lock_class_is_not_owned(run: Executor) -> None:
    """PG_writeback is set by one path and cleared by another: no lock-not-held for that."""
    writeback = WaitBit("writeback")

    async def setter() -> None:
        assert writeback.test_and_set() is False
        assert writeback.test_and_set() is True  # already set: reports the old value

    async def clearer() -> None:
        await until(lambda: writeback.is_set)
        writeback.clear()

    clean(go(run, [("t0", setter), ("t1", clearer)]))
    assert not writeback.is_set


# -- rcu, cond_resched, yield ----------------------------------------------------------------


def test_rcu_read_lock_nests_and_allows_preemption(run: Executor) -> None:
    async def reader() -> None:
        rcu_read_lock()
        rcu_read_lock()
        await preempt()  # a preemption point is not a sleep
        rcu_read_unlock()
        rcu_read_unlock()
        await cond_resched()  # outside the section, sleeping is fine again

    async def other() -> None:
        await preempt()

    clean(go(run, [("t0", reader), ("t1", other)]))


def test_rcu_read_unlock_without_lock(run: Executor) -> None:
    async def task() -> None:
        rcu_read_unlock()

    found(go(run, [("t0", task)]), "lock-not-held")


def test_cond_resched_is_a_scheduling_point(run: Executor) -> None:
    log: list[str] = []

    def body(name: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def task() -> None:
            for i in range(2):
                log.append(f"{name}{i}")
                await cond_resched()

        return task

    clean(go(run, [("a", body("a")), ("b", body("b"))]))
    assert log == ["a0", "b0", "a1", "b1"]  # RoundRobin switched at every cond_resched


def test_yield_is_reported_to_the_scheduler_once(run: Executor) -> None:
    sched = Recording()

    async def yielder() -> None:
        await preempt()
        await yield_()
        await preempt()

    async def other() -> None:
        for _ in range(4):
            await preempt()

    clean(go(run, [("t0", yielder), ("t1", other)], sched))
    assert [asked for asked in sched.asked if asked[1]] == [(0, True)]


# -- lock misuse findings --------------------------------------------------------------------


RELEASE_CASES = [*KINDS, "rwsem-read"]


def acquire_release(case: type[Kind] | str) -> tuple[Any, Any, Any]:
    """(acquire, release, holder test) for one release case."""
    if case == "rwsem-read":
        sem = rwsem()
        return sem.down_read, sem.up_read, lambda: bool(sem.readers)
    assert not isinstance(case, str)
    lock = case()
    return lock.acquire, lock.release, lambda: lock.holder() is not None


def case_id(case: type[Kind] | str) -> str:
    return case if isinstance(case, str) else case.name


@pytest.mark.parametrize("case", RELEASE_CASES, ids=case_id)
def test_unlock_by_non_owner(run: Executor, case: type[Kind] | str) -> None:
    acquire, release, held = acquire_release(case)

    async def owner() -> None:
        await acquire()
        await until(lambda: False)  # holds it; the run ends with t1's finding

    async def thief() -> None:
        await until(held)
        release()

    outcome = go(run, [("t0", owner), ("t1", thief)])
    found(outcome, "lock-not-held")
    assert outcome.finding is not None and outcome.finding.task == "t1"


@pytest.mark.parametrize("case", RELEASE_CASES, ids=case_id)
def test_unlock_of_a_free_lock(run: Executor, case: type[Kind] | str) -> None:
    _, release, _ = acquire_release(case)

    async def task() -> None:
        await preempt()
        release()

    found(go(run, [("t0", task)]), "lock-not-held")


@pytest.mark.parametrize("case", RELEASE_CASES, ids=case_id)
def test_recursive_acquire_is_misuse(run: Executor, case: type[Kind] | str) -> None:
    """Reported by lockdep before waiting, so the self-deadlock never happens."""
    acquire, _, _ = acquire_release(case)

    async def task() -> None:
        await acquire()
        await acquire()

    details = found(go(run, [("t0", task)]), "lock-misuse")
    assert details["lock"] == ("sem" if case == "rwsem-read" else "L")


def test_read_then_write_of_one_rwsem_is_misuse(run: Executor) -> None:
    sem = rwsem()

    async def task() -> None:
        await sem.down_read()
        await sem.down_write()

    found(go(run, [("t0", task)]), "lock-misuse")


@pytest.mark.parametrize("kind", KINDS, ids=kind_id)
def test_two_locks_of_one_class_need_a_nesting_annotation(run: Executor, kind: type[Kind]) -> None:
    cls = LockClass(f"kp-{kind.name}-shared", sleeping=kind.sleeping)

    def program(subclass: int) -> Program:
        outer, inner = kind(cls, "outer"), kind(cls, "inner")

        async def task() -> None:
            await outer.acquire()
            await inner.acquire(subclass)
            inner.release()
            outer.release()

        return [("t0", task)]

    details = found(go(run, program(0)), "lock-misuse")
    assert details["lock"] == "inner"
    clean(go(run, program(1)))  # spin_lock_nested / down_write_nested / lock_page_nested


@pytest.mark.parametrize("case", [*KINDS, "rwsem-read", "trylock", "rcu"], ids=case_id)
def test_lock_held_when_the_task_returns(run: Executor, case: type[Kind] | str) -> None:
    if case == "trylock":
        spin = Spin()

        async def acquire() -> None:
            assert await spin.trylock()

    elif case == "rcu":

        async def acquire() -> None:
            rcu_read_lock()

    else:
        acquire = acquire_release(case)[0]

    async def task() -> None:
        await acquire()

    outcome = go(run, [("t0", task)])
    details = found(outcome, "lock-misuse")
    assert outcome.finding is not None and outcome.finding.function == "task_exit"
    assert len(details["held"]) == 1


# -- sleeping in atomic context --------------------------------------------------------------


SLEEPERS: dict[str, tuple[Callable[[], Coroutine[Any, Any, None]], str]] = {
    # name: (the sleeping call, the op its finding names)
    "down_read": (lambda: rwsem().down_read(), "down_read"),
    "down_write": (lambda: rwsem().down_write(), "down_write"),
    "lock_page": (lambda: WaitBit("page", LockClass("kp-pg", sleeping=True)).lock(),
                  "lock(page)"),
    "wait_on_writeback": (lambda: WaitBit("writeback").wait_clear(), "wait_on(writeback)"),
    "cond_resched": (cond_resched, "cond_resched"),
    "yield": (yield_, "yield"),
}


@pytest.mark.parametrize("context", ["spinlock", "rcu"])
@pytest.mark.parametrize("sleeper", sorted(SLEEPERS))
def test_sleeping_in_atomic_context(run: Executor, context: str, sleeper: str) -> None:
    sleep, op = SLEEPERS[sleeper]

    async def task() -> None:
        if context == "spinlock":
            spin = spinlock_t(LockClass("kp-ctx-spin", sleeping=False), "ctx")
            await spin.lock()
        else:
            rcu_read_lock()
        await sleep()

    details = found(go(run, [("t0", task)]), "sleep-in-atomic")
    assert details["op"] == op
    assert details["held"] == (["ctx"] if context == "spinlock" else ["rcu_read_lock"])


def test_atomic_context_allows_preemption_and_nested_spinlocks(run: Executor) -> None:
    outer = spinlock_t(LockClass("kp-outer", sleeping=False), "outer")
    inner = spinlock_t(LockClass("kp-inner", sleeping=False), "inner")

    async def task() -> None:
        await outer.lock()
        await inner.lock()
        await preempt()
        inner.unlock()
        outer.unlock()
        await cond_resched()  # atomic count back to 0: may sleep
        assert HOOKS.rq.current is not None and HOOKS.rq.current.atomic == 0

    async def other() -> None:
        await preempt()

    clean(go(run, [("t0", task), ("t1", other)]))


# -- lockdep_assert_held ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=kind_id)
def test_lockdep_assert_held_passes_for_the_holder(run: Executor, kind: type[Kind]) -> None:
    lock = kind()

    async def task() -> None:
        await lock.acquire()
        lockdep_assert_held(lock.lock)
        lockdep_assert_held(lock.lock, write=True)  # exclusive holds are write holds
        lock.release()

    clean(go(run, [("t0", task)]))


@pytest.mark.parametrize("kind", KINDS, ids=kind_id)
def test_lockdep_assert_held_fails_for_another_task(run: Executor, kind: type[Kind]) -> None:
    lock = kind()

    async def owner() -> None:
        await lock.acquire()
        await until(lambda: False)

    async def other() -> None:
        await until(lambda: lock.holder() is not None)
        lockdep_assert_held(lock.lock)

    outcome = go(run, [("t0", owner), ("t1", other)])
    assert found(outcome, "lock-not-held")["lock"] == "L"
    assert outcome.finding is not None and outcome.finding.task == "t1"


def test_lockdep_assert_held_for_write_fails_under_a_read_hold(run: Executor) -> None:
    sem = rwsem()

    async def task() -> None:
        await sem.down_read()
        lockdep_assert_held(sem)  # held: passes
        lockdep_assert_held(sem, write=True)

    details = found(go(run, [("t0", task)]), "lock-not-held")
    assert details["held"] == ["sem [kp-rwsem] (read)"]


# -- KASAN -----------------------------------------------------------------------------------


class Obj(KObject):
    __slots__ = ("lock",)
    kind = "test_obj"


class RcuObj(KObject):
    """Like anon_vma: SLAB_DESTROY_BY_RCU, type-stable until a grace period has passed."""

    __slots__ = ()
    kind = "rcu_obj"
    slab_destroy_by_rcu = True


def test_use_after_free_names_allocator_freer_and_accessor(run: Executor) -> None:
    box: dict[str, Obj] = {}

    async def allocator() -> None:
        await preempt()
        box["obj"] = Obj()

    async def freer() -> None:
        await until(lambda: "obj" in box)
        kfree(box["obj"])
        box["freed"] = box["obj"]

    async def user() -> None:
        await until(lambda: "freed" in box)
        kasan_check(box["obj"], "obj->field")

    outcome = go(run, [("allocator", allocator), ("freer", freer), ("user", user)])
    details = found(outcome, "use-after-free")
    assert details["access"] == "obj->field"
    assert details["allocated_by"].startswith("allocator at step ")
    assert details["freed_by"].startswith("freer at step ")
    assert details["accessed_by"].startswith("user at step ")
    assert outcome.finding is not None and outcome.finding.task == "user"


def test_live_object_passes_kasan_check(run: Executor) -> None:
    obj = Obj()

    async def task() -> None:
        kasan_check(obj, "obj->field")
        await preempt()

    clean(go(run, [("t0", task)]))
    assert obj.freed is False


@pytest.mark.parametrize("op", ["spin_lock", "spin_trylock", "spin_unlock", "down"])
def test_lock_embedded_in_a_freed_object(run: Executor, op: str) -> None:
    obj = Obj()  # allocated during setup, outside any execution
    spin = spinlock_t(LockClass("kp-embedded", sleeping=False), "obj->lock", obj)
    sem = rw_semaphore(LockClass("kp-embedded-sem", sleeping=True), "obj->sem", obj)

    async def task() -> None:
        if op == "spin_unlock":
            await spin.lock()
            kfree(obj)  # freed under its own lock: the unlock is the bad access
            spin.unlock()
            return
        kfree(obj)
        if op == "spin_lock":
            await spin.lock()
        elif op == "spin_trylock":
            await spin.trylock()
        else:
            await sem.down_read()

    details = found(go(run, [("t0", task)]), "use-after-free")
    assert details["access"] == f"{op}({'obj->sem' if op == 'down' else 'obj->lock'})"
    assert details["allocated_by"] == "setup at step 0"
    assert details["freed_by"].startswith("t0 at step ")


def test_double_free(run: Executor) -> None:
    obj = Obj()

    async def task() -> None:
        kfree(obj)
        await preempt()
        kfree(obj)

    details = found(go(run, [("t0", task)]), "use-after-free")
    assert details["access"] == "double free"


def test_slab_destroy_by_rcu_object_stays_valid_inside_the_section(run: Executor) -> None:
    """A reader inside rcu_read_lock since before the free may still touch the object
    (page_lock_anon_vma relies on it); once it leaves the section, it may not."""
    obj = RcuObj()
    log: list[str] = []

    async def reader() -> None:
        rcu_read_lock()
        await until(lambda: obj.freed)
        kasan_check(obj, "inside the section")  # type-stable: fine
        log.append("read inside")
        rcu_read_unlock()
        rcu_read_lock()  # a new section: the grace period may have ended in between
        kasan_check(obj, "after the section")

    async def freer() -> None:
        await until(lambda: HOOKS.rq.tasks[0].atomic > 0)
        kfree(obj)

    details = found(go(run, [("reader", reader), ("freer", freer)]), "use-after-free")
    assert log == ["read inside"]
    assert details["access"] == "after the section"
