"""One bug, one signature: a finding's signature is a function of its cause, not its trace.

A lock-order inversion is a cycle in lockdep's class graph; which of its edges a schedule
shows last, and so where lockdep reports it, is the trace's doing. The signature names the
cycle's classes in the canonical order (:func:`target.kernel.canonical_classes`); it used to
name the closing edge's two classes only, so one cycle closed at two edges had two names.

The two names of issue 16 (``lock_page [PG_locked]`` beside ``lock_page [PG_locked ->
anon_vma->lock]``, both in a night that injected page-lock-under-anon-vma *and*
unlock-before-remove) are two bugs, not one: injected alone, page-lock-under-anon-vma only
ever closes its cycle at the fault's ``lock_page`` under anon_vma->lock (a page lock under
that spinlock annotated nested, which lockdep would pass, is a sleep in atomic context
first), and ``[PG_locked]`` is unlock-before-remove's page-lock/page-lock cycle (the old and
the new page of one migration, taken in both orders). A test keeps them apart; the
two-edge case is shown with a sleeping lock the documented order does not rank.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fixed_schedulers import Lowest

import target.mm.locking  # noqa: F401  (declares the documented order)
from migfuzz.bugs import injected
from migfuzz.findings import load
from migfuzz.replay import replay_schedule, run_traced
from stress.executors import EXECUTORS
from stress.scenarios import CANONICAL
from stress.schedulers import RandomScheduler
from target.kernel import LockClass, WaitBit, canonical_classes, rw_semaphore
from target.mm.filemap import lock_page, unlock_page
from target.mm.locking import PG_LOCKED

KNOWN = Path(__file__).resolve().parent.parent / "corpus" / "known"
BUG = "page-lock-under-anon-vma"
SIGNATURE = "lock-order-inversion in lock_page [PG_locked -> anon_vma->lock]"

Program = list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]]


class _Page:
    """What lock_page/unlock_page touch of a page: its PG_locked bit lock."""

    def __init__(self, n: int) -> None:
        self.pfn = n
        self.locked = WaitBit(f"page{n}.PG_locked", PG_LOCKED)
        self.ghost_migration_ptes = 0


def _inversion(nested: bool) -> Program:
    """A page lock and a sleeping lock S taken in both orders. ``nested``: the second order
    goes through a nested page lock, so the cycle closes at PG_locked/1 -> PG_locked."""
    sem = rw_semaphore(LockClass("ld-sem", sleeping=True), "sem")
    p, q = _Page(1), _Page(2)

    async def first() -> None:  # PG_locked -> S
        await lock_page(p)  # type: ignore[arg-type]
        await sem.down_write()
        sem.up_write()
        unlock_page(p)  # type: ignore[arg-type]

    async def second() -> None:  # S -> PG_locked: closes the cycle, or S -> PG_locked/1
        await sem.down_write()
        await lock_page(q, 1 if nested else 0)  # type: ignore[arg-type]
        unlock_page(q)  # type: ignore[arg-type]
        sem.up_write()

    async def third() -> None:  # PG_locked/1 -> PG_locked: closes the nested cycle
        await lock_page(q, 1)  # type: ignore[arg-type]
        await lock_page(p)  # type: ignore[arg-type]

    return [("first", first), ("second", second), *([("third", third)] if nested else [])]


def test_one_inversion_closed_at_two_edges_has_one_signature() -> None:
    run = EXECUTORS["direct"]
    first = run(Lowest(), _inversion(nested=False)).finding
    second = run(Lowest(), _inversion(nested=True)).finding
    assert first is not None and second is not None
    assert first.kind == second.kind == "lock-order-inversion"
    # two traces: lockdep saw a different closing edge in each, both in lock_page
    assert first.details["new_dependency"].startswith("ld-sem -> PG_locked: ")
    assert second.details["new_dependency"].startswith("PG_locked/1 -> PG_locked: ")
    assert first.signature == second.signature == (
        "lock-order-inversion in lock_page [PG_locked -> ld-sem]")


def test_the_bugs_reproducer_and_another_scenarios_trace_share_it() -> None:
    """The catalog bug found in its committed reproducer (migrate-vs-fault, minimized) and by
    a seeded random search of another scenario (a thread exiting while another waits on a
    migration entry): two schedules of two scenarios, one signature."""
    rec = load(KNOWN / f"{BUG}.json")
    assert rec.signature == SIGNATURE
    with injected(rec.bugs, rec.fixes):
        rep = replay_schedule(rec.scenario, rec.schedule, executor=rec.executor,
                              max_steps=rec.max_steps)
        assert rep.outcome is not None and rep.outcome.finding is not None
        scenario = CANONICAL["thread-exit-vs-entry-wait"]()
        other = next(out.finding for seed in range(200)
                     if (out := run_traced(scenario, RandomScheduler(seed), executor="direct",
                                           max_steps=rec.max_steps)).finding is not None
                     and out.finding.kind == "lock-order-inversion")
    assert rep.outcome.finding.signature == other.signature == SIGNATURE


def test_canonical_order_is_the_documented_one_then_by_name() -> None:
    assert canonical_classes(["anon_vma->lock", "PG_locked/1", "PG_locked"]) == [
        "PG_locked", "anon_vma->lock"]
    assert canonical_classes(["pte_lock", "mm->mmap_sem", "anon_vma->lock"]) == [
        "mm->mmap_sem", "anon_vma->lock", "pte_lock"]
    assert canonical_classes(["zz-user", "aa-user", "PG_locked"]) == [
        "PG_locked", "aa-user", "zz-user"]


def test_two_bugs_keep_two_signatures() -> None:
    """unlock-before-remove's inversion is between the old and the new page's locks: its
    cycle has PG_locked alone, another cause than the page lock under anon_vma->lock."""
    scenario = CANONICAL["migrate-vs-writeback"]()
    with injected(["unlock-before-remove"], []):
        f = run_traced(scenario, RandomScheduler(0), executor="direct",
                       max_steps=50_000).finding
    assert f is not None and f.signature == "lock-order-inversion in lock_page [PG_locked]"
    assert f.details["new_dependency"].startswith("PG_locked/1 -> PG_locked: ")
    assert f.details["existing_chain"][0].startswith("PG_locked -> PG_locked/1: ")
    with injected([BUG], []):
        assert run_traced(scenario, RandomScheduler(0), executor="direct",
                          max_steps=50_000).finding is None
