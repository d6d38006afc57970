"""Processes with several user threads (issue 13): the races of one mm.

Each race the issue names is made to happen under some schedule of a small scenario (the race
is real in the model, not only possible on paper); racing stores of two threads are not lost
writes, while a store a thread really loses still is; a planted bug in a path only threads
reach is found; the fork-vs-GUP flaw that threads bring within reach is found on V2 as posted
and gone with its upstream fix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from mutants import mutant

from stress.run import run_scenario
from stress.scenarios import canonical, generate
from stress.schedulers import PCTScheduler, RandomScheduler
from stress.workload import ProcessSpec, Scenario, TaskSpec, VmaSpec, build_world, validate
from target.bugs import inject
from target.fixes import lookup
from target.kernel import current
from target.mm import memory, syscalls
from target.mm.world import WorldConfig, set_world


def runs(sc: Scenario, n: int, *, fixes: bool = True, pct: bool = False) -> Iterator[Any]:
    """``n`` seeded executions of ``sc``, random walk or PCT of depth 3 (the stress
    portfolio's two), with every upstream fix unless told."""
    with inject(lookup(["all"]) if fixes else []):
        for seed in range(n):
            sched = PCTScheduler(seed, depth=3) if pct else RandomScheduler(seed)
            sched.new_execution()
            yield run_scenario(sc, sched)


def one_process(*tasks: TaskSpec, prefault: bool = True, pages: int = 2) -> Scenario:
    sc = Scenario(WorldConfig(pages_per_node=8),
                  [ProcessSpec(1, [VmaSpec(0, pages)],
                               [(a, 10 + a) for a in range(pages)] if prefault else [])],
                  list(tasks), name="threads-test")
    validate(sc)
    return sc


@pytest.fixture
def user_accesses(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool, int | None]]:
    """Every completed user access: (task, write, value read or stored)."""
    seen: list[tuple[str, bool, int | None]] = []
    real = syscalls.user_access

    async def recording(p: Any, addr: int, write: bool, value: int = 0) -> int | None:
        got = await real(p, addr, write, value)
        seen.append((current().name, write, got))
        return got

    import stress.workload as workload

    monkeypatch.setattr(workload.syscalls, "user_access", recording)
    return seen


# -- threads share one mm --------------------------------------------------------------------------


def test_a_threads_exit_keeps_the_mm_until_the_last_thread() -> None:
    """clone(CLONE_VM) takes an mm_users reference per thread; exit_mm drops one; the last
    thread's exit detaches and tears down the mm."""
    sc = one_process(TaskSpec("T1", [("read", 1, 0)]), TaskSpec("T2", [("read", 1, 1)]))
    world, procs = build_world(sc)
    set_world(world)
    try:
        p = procs[1]
        mm = p.mm
        assert mm is not None and mm.mm_users == 2 and p.threads == {"T1", "T2"}

        async def exit_one_then_the_other() -> None:
            await syscalls.sys_exit(p, "T1")
            assert p.mm is mm and mm.mm_users == 1 and not mm.freed
            await syscalls.sys_exit(p, "T1")  # an exited thread exits once
            assert mm.mm_users == 1
            await syscalls.sys_exit(p, "T2")
            assert p.mm is None and mm.freed

        sched = RandomScheduler(0)
        sched.new_execution()
        from stress.executors import run_direct

        assert run_direct(sched, [("t", exit_one_then_the_other)]).finding is None
    finally:
        set_world(None)


def test_a_sibling_keeps_running_after_a_thread_exits(
    user_accesses: list[tuple[str, bool, int | None]],
) -> None:
    """T1 exits, T2 keeps reading its process's memory: never a use-after-free, and all 80
    of T2's reads (2 in each of 40 schedules, the exit before, between or after them)
    complete with the prefault values: T1's exit drops only T1's mm reference."""
    sc = one_process(TaskSpec("T1", [("exit", 1)]),
                     TaskSpec("T2", [("read", 1, 0), ("read", 1, 1)]))
    order = Counter()
    for out in runs(sc, 40):
        assert out.finding is None, out.finding
    # T2's own reads (the read-back task is named "readback"): all returned the prefault
    assert {v for t, w, v in user_accesses if t == "T2"} == {10, 11}
    order.update(t for t, _, _ in user_accesses)
    assert order["T2"] == 80


# -- the data oracle with several writers ---------------------------------------------------------


def test_racing_stores_of_two_threads_are_not_lost_writes(
    user_accesses: list[tuple[str, bool, int | None]],
) -> None:
    """Two threads store different values to one address and read it back: each read may
    see either store, by whichever ran last. No schedule is a finding, and both outcomes
    happen (the test would be empty if the threads never raced)."""
    sc = one_process(TaskSpec("T1", [("write", 1, 0, 1), ("read", 1, 0)]),
                     TaskSpec("T2", [("write", 1, 0, 2), ("read", 1, 0)]),
                     TaskSpec("migrator", [("migrate", 1, 0, 1, 0)]))
    for out in runs(sc, 150):
        assert out.finding is None, out.finding
    t1_reads = Counter(v for t, w, v in user_accesses if t == "T1" and not w)
    assert t1_reads[1] and t1_reads[2], t1_reads


def test_a_store_a_thread_loses_is_still_a_lost_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted bug only threads reach: do_anonymous_page without its recheck of pte_none
    under the ptl. Two threads write-fault one empty pte; the second installs its own zeroed
    page over the first's, and the first thread's store, already in the page it mapped, is
    gone: a lost write (and the overwritten page a leak). Single-threaded processes never
    fault twice on one pte, so the same bug is invisible without threads."""

    recheck = ("        if pte_read(table, address) is not None:\n"
               "            await table.ptl.unlock()\n"
               "            await put_page(page)\n"
               "            return VM_FAULT_MINOR\n")
    # two rechecks, the write path's then the read path's: only the first goes
    monkeypatch.setattr(memory, "do_anonymous_page",
                        mutant(memory.do_anonymous_page, (recheck, ""), count=2,
                               first_only=True))
    threaded = one_process(TaskSpec("T1", [("write", 1, 0, 1), ("read", 1, 0)]),
                           TaskSpec("T2", [("write", 1, 0, 2)]), prefault=False)
    kinds = Counter(out.finding.kind for out in runs(threaded, 200) if out.finding is not None)
    assert kinds["lost-write"], kinds
    single = one_process(TaskSpec("T1", [("write", 1, 0, 1), ("read", 1, 0),
                                         ("write", 1, 0, 2)]),
                         TaskSpec("migrator", [("migrate", 1, 0, 1, 0)]), prefault=False)
    assert all(out.finding is None for out in runs(single, 200))


# -- the races threads bring ---------------------------------------------------------------------


def test_two_faults_wait_on_one_migration_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both threads of threads-vs-migrate sleep in migration_entry_wait on the same entry at
    once in some schedule, and every schedule ends cleanly."""
    real = memory.migration_entry_wait
    inside: Counter[tuple[int, int]] = Counter()
    most = 0

    async def migration_entry_wait(mm: Any, table: Any, address: int) -> None:
        nonlocal most
        key = (id(mm), address)
        inside[key] += 1
        most = max(most, inside[key])
        try:
            await real(mm, table, address)
        finally:
            inside[key] -= 1

    monkeypatch.setattr(memory, "migration_entry_wait", migration_entry_wait)
    for out in runs(canonical("threads-vs-migrate"), 300, pct=True):
        assert out.finding is None, out.finding
    assert most >= 2


def test_exit_with_a_sibling_in_migration_entry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread exits while its sibling sleeps in migration_entry_wait: the sibling holds a
    reference of the page, not of the mm's last user, and the mm survives until it leaves."""
    real = memory.migration_entry_wait
    waiting: set[str] = set()
    met = 0

    async def migration_entry_wait(mm: Any, table: Any, address: int) -> None:
        waiting.add(current().name)
        try:
            await real(mm, table, address)
        finally:
            waiting.discard(current().name)

    real_exit = syscalls.sys_exit

    async def sys_exit(p: Any, thread: str | None = None) -> None:
        nonlocal met
        if waiting - {thread}:
            met += 1
        await real_exit(p, thread)

    import stress.workload as workload

    monkeypatch.setattr(memory, "migration_entry_wait", migration_entry_wait)
    monkeypatch.setattr(workload.syscalls, "sys_exit", sys_exit)
    sc = one_process(TaskSpec("T1", [("read", 1, 0)] * 3 + [("exit", 1)]),
                     TaskSpec("T2", [("read", 1, 0)] * 4 + [("write", 1, 0, 7)]),
                     TaskSpec("migrator", [("migrate", 1, 0, 1, 0)]))
    for out in runs(sc, 400, pct=True):
        assert out.finding is None, out.finding
    assert met


def test_gup_in_one_thread_vs_fork_in_another_is_the_known_flaw() -> None:
    """V2 as posted (and every kernel until 5.9) shares a pinned page with the child: found
    on gup-vs-fork; gone with fork-early-cow-pinned applied."""
    sc = canonical("gup-vs-fork")
    first = next((out.finding for out in runs(sc, 300, fixes=False) if out.finding), None)
    assert first is not None and first.kind == "lost-write"
    assert all(out.finding is None for out in runs(sc, 100))


def test_the_generator_makes_multi_threaded_processes() -> None:
    """Swarm scenarios have sibling threads as a normal part (a third or more of them)."""
    threaded = sum(any("." in t.name for t in generate(s).tasks) for s in range(100))
    assert threaded >= 30
