"""Every oracle fires on a deliberately broken state, with the right finding kind.

An oracle that never fires proves nothing, so each test below first shows the state is clean
(``check_quiescent`` passes, or the same operation succeeds without the breakage), then
breaks exactly one thing and asserts the finding's ``kind`` (and, where it tells something,
where it fired). The breakages are of two sorts: direct corruption of model state, standing
for a kernel bug whose effect it is (a lost reference, a stray write bit), and a model call in
a context its ``Context:`` line forbids (a lock taken in the wrong order, a sleep under a
spinlock). The last tests check the other direction: on clean runs no oracle fires.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from fixed_schedulers import RoundRobin

from stress import scenarios
from stress._execution import Finding, Outcome, StressInternalError
from stress.executors import run_direct
from stress.oracles import check_quiescent
from stress.run import run_seed
from stress.schedulers import RandomScheduler
from stress.workload import ProcessSpec, Scenario, TaskSpec, VmaSpec, build_world
from target.bugs import inject
from target.fixes import lookup
from target.kernel import (
    KernelFinding,
    cond_resched,
    kasan_check,
    kfree,
    preempt,
    rcu_read_lock,
    rcu_read_unlock,
)
from target.mm import migrate, syscalls
from target.mm.filemap import lock_page, unlock_page, wait_on_page_locked
from target.mm.mmap import check_mm, mmput
from target.mm.page_alloc import alloc_pages_node, free_hot_cold_page
from target.mm.rmap import anon_vma_prepare, page_remove_rmap, try_to_unmap
from target.mm.swap import get_page, lru_cache_add, put_page
from target.mm.swapfile import swap_free
from target.mm.swapops import (
    SWAP_TYPE_DEVICE,
    SWP_TYPE_MIGRATION,
    make_migration_entry,
    migration_entry_to_page,
)
from target.mm.syscalls import UserProcess
from target.mm.types import PTRS_PER_PTE, MmStruct, Page, PresentPte, SwapPte
from target.mm.world import World, WorldConfig, set_world

Body = Callable[[], Awaitable[None]]

# -- harness ------------------------------------------------------------------------------------




def run(tasks: Body | list[tuple[str, Body]], *, sched: Any = None, **kw: Any) -> Outcome:
    """Run one body (task "t") or several; an AssertionError in a body is re-raised as is."""
    if not isinstance(tasks, list):
        tasks = [("t", tasks)]
    if sched is None:
        sched = RandomScheduler(0)
        sched.new_execution()
    try:
        return run_direct(sched, tasks, **kw)  # type: ignore[arg-type]
    except StressInternalError as exc:
        if isinstance(exc.__cause__, AssertionError):
            raise exc.__cause__ from None
        raise


def finding_of(tasks: Body | list[tuple[str, Body]], kind: str, **kw: Any) -> Finding:
    """Run and require a finding of ``kind``."""
    out = run(tasks, **kw)
    assert out.finding is not None, f"expected a {kind} finding, the run was clean"
    assert out.finding.kind == kind, out.finding
    return out.finding


def run_ok(body: Body) -> None:
    out = run(body)
    assert out.finding is None, out.finding


def call(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    box: dict[str, Any] = {}

    async def body() -> None:
        box["r"] = await fn(*args)

    run_ok(body)
    return box["r"]


def quiescent_finding(world: World, kind: str) -> KernelFinding:
    with pytest.raises(KernelFinding) as info:
        check_quiescent(world)
    assert info.value.kind == kind, info.value
    assert info.value.function == "quiescence"
    return info.value


class Machine:
    """A world with process 1 (vma [0, 4)) that has written 7 at address 0: page P."""

    def __init__(self, **config: Any) -> None:
        cfg = {"nodes": 2, "pages_per_node": 6, "swap_slots": 4, **config}
        sc = Scenario(WorldConfig(**cfg), [ProcessSpec(1, [VmaSpec(0, PTRS_PER_PTE)])],
                      [TaskSpec("unused", [("read", 1, 0)])])
        self.world, procs = build_world(sc)
        set_world(self.world)
        self.p: UserProcess = procs[1]
        self.mm: MmStruct = self.p.mm  # type: ignore[assignment]
        call(syscalls.user_access, self.p, 0, True, 7)
        self.P = self.page(self.mm, 0)
        check_quiescent(self.world)  # clean before each test breaks it

    def page(self, mm: MmStruct, addr: int) -> Page:
        pte = self.pte(mm, addr)
        assert type(pte) is PresentPte
        return self.world.mem_map[pte.pfn]

    @staticmethod
    def pte(mm: MmStruct, addr: int) -> Any:
        return mm.pgtables[addr // PTRS_PER_PTE].ptes[addr % PTRS_PER_PTE]

    @staticmethod
    def set_pte(mm: MmStruct, addr: int, pte: Any) -> None:
        """A pte store behind the model's back (no lock, no ghost bookkeeping)."""
        mm.pgtables[addr // PTRS_PER_PTE].ptes[addr % PTRS_PER_PTE] = pte

    def fork(self) -> UserProcess:
        return call(syscalls.sys_fork, self.p, 2)  # type: ignore[no-any-return]

    def free_page(self) -> Page:
        page = self.world.zones[1].free_list[0]
        assert page.count == 0
        return page


@pytest.fixture
def m() -> Iterator[Machine]:
    try:
        yield Machine()
    finally:
        set_world(None)


# -- bad-page-state (I3, free_pages_check) -------------------------------------------------------


def test_bad_page_state_freeing_mapped_page(m: Machine) -> None:
    async def body() -> None:
        free_hot_cold_page(m.P)

    f = finding_of(body, "bad-page-state")
    assert "mapcount=1" in f.details["problems"]


def test_bad_page_state_last_put_of_mapped_page(m: Machine) -> None:
    """The usual shape of a lost reference: the last put_page of a page a pte still maps."""

    async def body() -> None:
        await put_page(m.P)

    f = finding_of(body, "bad-page-state")
    assert f.function == "free_pages_check"


def test_bad_page_state_freeing_lru_page(m: Machine) -> None:
    """An unmapped page still on the LRU (PG_lru): freed without __page_cache_release."""

    async def body() -> None:
        page = await alloc_pages_node(1)
        assert page is not None
        await lru_cache_add(page)
        free_hot_cold_page(page)

    f = finding_of(body, "bad-page-state")
    assert not any(s.startswith("mapcount") for s in f.details["problems"])
    assert any("lru" in s for s in f.details["problems"])


def test_bad_page_state_freeing_locked_page(m: Machine) -> None:
    async def body() -> None:
        page = await alloc_pages_node(1)
        assert page is not None
        await lock_page(page)
        await put_page(page)

    f = finding_of(body, "bad-page-state")
    assert "PG_locked" in f.details["problems"]


# -- refcount-underflow ---------------------------------------------------------------------------


def test_refcount_underflow_put_page_on_free_page(m: Machine) -> None:
    free = m.free_page()

    async def body() -> None:
        await put_page(free)

    f = finding_of(body, "refcount-underflow")
    assert f.details["pfn"] == free.pfn and f.details["count"] == 0


def test_refcount_underflow_swap_free_of_unused_slot(m: Machine) -> None:
    async def body() -> None:
        await swap_free(SwapPte(SWAP_TYPE_DEVICE, 1))

    finding_of(body, "refcount-underflow")


def test_refcount_underflow_at_quiescence(m: Machine) -> None:
    """A page whose count is below what its mappings explain (a reference dropped twice)."""
    m.fork()
    m.P._count -= 1  # 2 ptes map it, one reference is gone
    e = quiescent_finding(m.world, "refcount-underflow")
    assert e.details["count"] == 1 and e.details["expected"] == 2


def test_free_page_still_mapped_at_quiescence(m: Machine) -> None:
    """Count 0 (on no free list: the put that freed it never happened) while a pte maps it."""
    m.P._count = 0
    quiescent_finding(m.world, "use-after-free")


# -- use-after-free (KASAN, I6) -------------------------------------------------------------------


def test_uaf_get_page_on_free_page(m: Machine) -> None:
    """The rejected lookup_swap_cache design of the V2 review: get_page on a random page."""
    free = m.free_page()

    async def body() -> None:
        await get_page(free)

    f = finding_of(body, "use-after-free")
    assert f.details["pfn"] == free.pfn


def test_uaf_wait_on_page_locked_without_reference(m: Machine) -> None:
    free = m.free_page()

    async def body() -> None:
        await wait_on_page_locked(free)

    finding_of(body, "use-after-free")


def test_uaf_freed_vma(m: Machine) -> None:
    vma = m.mm.mmap[0]
    assert call(syscalls.sys_munmap, m.p, 0) == 0
    assert vma.freed

    async def body() -> None:
        await anon_vma_prepare(vma)

    f = finding_of(body, "use-after-free")
    assert "vma" in f.message and f.function == "anon_vma_prepare"


def test_uaf_freed_mm(m: Machine) -> None:
    mm = m.mm
    call(syscalls.sys_exit, m.p)
    assert mm.freed

    async def body() -> None:
        await mmput(mm)  # an mmput too many

    f = finding_of(body, "use-after-free")
    assert "mm" in f.message


def test_uaf_freed_anon_vma_kasan_check(m: Machine) -> None:
    av = m.mm.mmap[0].anon_vma
    assert av is not None
    call(syscalls.sys_munmap, m.p, 0)
    assert av.freed

    async def body() -> None:
        kasan_check(av, "test")

    finding_of(body, "use-after-free")


def test_uaf_lock_freed_anon_vma_outside_rcu(m: Machine) -> None:
    """Locking a freed anon_vma's lock, outside any RCU read section: not type-stable for us."""
    av = m.mm.mmap[0].anon_vma
    assert av is not None
    call(syscalls.sys_munmap, m.p, 0)

    async def body() -> None:
        await av.lock.lock()

    f = finding_of(body, "use-after-free")
    assert "spin_lock" in f.message


def test_uaf_vma_pointing_at_freed_anon_vma_at_quiescence(m: Machine) -> None:
    av = m.mm.mmap[0].anon_vma
    assert av is not None

    async def body() -> None:
        kfree(av)  # freed while a vma and a mapped page still use it

    run_ok(body)
    quiescent_finding(m.world, "use-after-free")


# -- SLAB_DESTROY_BY_RCU: who may still lock a freed anon_vma ------------------------------------


def _rcu_race(m: Machine, late_reader: bool) -> tuple[Outcome, dict[str, Any]]:
    """Task "reader" enters rcu_read_lock, then the "freer" munmaps the only vma of the
    anon_vma (anon_vma_unlink frees it), then the reader locks it. With ``late_reader``, a
    third task enters its RCU section only after the free and tries the same. The gates are
    flags polled at preemption points, so the order is the same in every schedule."""
    av = m.mm.mmap[0].anon_vma
    assert av is not None
    state: dict[str, Any] = {"entered": False, "freed": False}

    async def reader() -> None:
        rcu_read_lock()
        state["entered"] = True
        while not state["freed"]:
            await preempt()  # a point, not a sleep: still inside the read section
        await av.lock.lock()  # page_lock_anon_vma's lock of a just-freed anon_vma
        state["head"] = list(av.head)
        av.lock.unlock()
        rcu_read_unlock()
        state["reader_done"] = True

    async def freer() -> None:
        while not state["entered"]:
            await preempt()
        await syscalls.sys_munmap(m.p, 0)
        state["freed"] = av.freed

    async def late() -> None:
        while not state["freed"]:
            await preempt()
        rcu_read_lock()
        await av.lock.lock()
        av.lock.unlock()
        rcu_read_unlock()

    tasks: list[tuple[str, Body]] = [("reader", reader), ("freer", freer)]
    if late_reader:
        tasks.append(("late", late))
    return run(tasks), state


def test_rcu_reader_inside_section_may_lock_freed_anon_vma(m: Machine) -> None:
    out, state = _rcu_race(m, late_reader=False)
    assert out.finding is None, out.finding
    assert state["freed"] and state["reader_done"]
    assert state["head"] == []  # what page_lock_anon_vma's caller finds: an empty list


def test_rcu_reader_entering_after_free_may_not(m: Machine) -> None:
    out, _ = _rcu_race(m, late_reader=True)
    assert out.finding is not None and out.finding.kind == "use-after-free", out.finding
    assert out.finding.task == "late"


# -- migration entries (I1, I2) -------------------------------------------------------------------


def test_migration_entry_to_unlocked_page(m: Machine) -> None:
    async def body() -> None:
        migration_entry_to_page(SwapPte(SWP_TYPE_MIGRATION, m.P.pfn))

    f = finding_of(body, "migration-entry-on-unlocked-page")
    assert f.details["pfn"] == m.P.pfn


def test_make_migration_entry_on_unlocked_page(m: Machine) -> None:
    async def body() -> None:
        make_migration_entry(m.P)

    finding_of(body, "migration-entry-on-unlocked-page")


def test_fault_on_leaked_migration_entry(m: Machine) -> None:
    """I1 as a task meets it: a fault on an entry whose page is not locked (a leaked entry)
    reaches migration_entry_wait -> migration_entry_to_page -> BUG_ON(!PageLocked)."""
    m.set_pte(m.mm, 0, SwapPte(SWP_TYPE_MIGRATION, m.P.pfn))

    async def body() -> None:
        await syscalls.user_access(m.p, 0, False)

    f = finding_of(body, "migration-entry-on-unlocked-page")
    assert f.function == "migration_entry_to_page"


async def isolate_under_ptl(m: Machine, pagelist: list[Page]) -> None:
    """isolate_lru_page in its required context: the ptl of the pte mapping the page held."""
    table = m.mm.pte_table(0, alloc=False)
    assert table is not None
    await table.ptl.lock()
    await migrate.isolate_lru_page(m.P, pagelist)
    table.ptl.unlock()


def test_isolate_without_the_ptl_is_reported(m: Machine) -> None:
    """isolate_lru_page's context, checked like lockdep_assert_held (isolate-outside-ptl)."""

    async def body() -> None:
        await migrate.isolate_lru_page(m.P, [])

    f = finding_of(body, "lock-not-held")
    assert "without the ptl" in f.message


def test_unlock_page_with_migration_entry_left(m: Machine) -> None:
    """I2: the migrator unlocks the old page while a pte still holds M(old)."""

    async def body() -> None:
        pagelist: list[Page] = []
        await isolate_under_ptl(m, pagelist)
        await lock_page(m.P)
        await try_to_unmap(m.P, True)
        assert m.pte(m.mm, 0) == SwapPte(SWP_TYPE_MIGRATION, m.P.pfn)
        unlock_page(m.P)

    f = finding_of(body, "migration-entry-leak")
    assert f.function == "unlock_page" and f.details["entries"] == 1


def test_migration_entry_left_at_quiescence(m: Machine) -> None:
    # What V2's try_to_unmap_one does to the pte and rss, with nobody to restore it.
    m.set_pte(m.mm, 0, SwapPte(SWP_TYPE_MIGRATION, m.P.pfn))
    m.mm.anon_rss -= 1
    e = quiescent_finding(m.world, "migration-entry-leak")
    assert e.details == {"pfn": m.P.pfn, "entries": 1}


# -- mapcount, rss ---------------------------------------------------------------------------------


def test_mapcount_mismatch_at_quiescence(m: Machine) -> None:
    m.P._mapcount += 1
    m.P._count += 1  # keep count == mapcount so that the mapcount check is what fires
    e = quiescent_finding(m.world, "mapcount-mismatch")
    assert e.details["mapcount"] == 2 and e.details["ptes"] == 1


def test_mapcount_mismatch_zero_page(m: Machine) -> None:
    call(syscalls.user_access, m.p, 1, False)
    check_quiescent(m.world)
    assert m.world.zero_page is not None
    m.world.zero_page._mapcount += 1
    quiescent_finding(m.world, "mapcount-mismatch")


def test_mapcount_below_zero_in_page_remove_rmap(m: Machine) -> None:
    async def body() -> None:
        await page_remove_rmap(m.P)  # 1 -> 0: fine
        await page_remove_rmap(m.P)  # 0 -> -1: BUG

    f = finding_of(body, "mapcount-mismatch")
    assert f.function == "page_remove_rmap"


def test_rss_mismatch_at_quiescence(m: Machine) -> None:
    m.mm.anon_rss += 1
    e = quiescent_finding(m.world, "rss-mismatch")
    assert (e.details["anon_rss"], e.details["anon"]) == (2, 1)


def test_rss_mismatch_check_mm(m: Machine) -> None:
    check_mm(MmStruct("clean"))  # all zero: silent
    m.mm.file_rss -= 1
    with pytest.raises(KernelFinding) as info:
        check_mm(m.mm)
    assert info.value.kind == "rss-mismatch"


def test_rss_mismatch_at_exit(m: Machine) -> None:
    """check_mm at the end of exit_mmap: the B10 shape (an rss decrement that never came)."""
    m.mm.anon_rss += 1

    async def body() -> None:
        await syscalls.sys_exit(m.p)

    f = finding_of(body, "rss-mismatch")
    assert f.function == "check_mm"


# -- page-leak -------------------------------------------------------------------------------------


def test_page_leak_extra_reference(m: Machine) -> None:
    async def body() -> None:
        await get_page(m.P)

    run_ok(body)
    e = quiescent_finding(m.world, "page-leak")
    assert e.details == {"pfn": m.P.pfn, "count": 2, "expected": 1}


def test_page_leak_lost_isolation(m: Machine) -> None:
    """Isolated from the LRU and never put back (the isolation reference dropped instead)."""

    async def body() -> None:
        await isolate_under_ptl(m, [])
        await put_page(m.P)

    run_ok(body)
    e = quiescent_finding(m.world, "page-leak")
    assert "LRU" in e.message


def test_page_leak_swap_slot(m: Machine) -> None:
    m.world.swap_map[2] = 1  # a slot count nobody holds
    e = quiescent_finding(m.world, "page-leak")
    assert e.details["slot"] == 2


# -- cow-violation (I7) ----------------------------------------------------------------------------


def test_cow_violation(m: Machine) -> None:
    child = m.fork()
    assert child.mm is not None
    check_quiescent(m.world)
    pte = m.pte(m.mm, 0)
    m.set_pte(m.mm, 0, PresentPte(pte.pfn, True, pte.dirty, pte.young))  # a stray write bit
    e = quiescent_finding(m.world, "cow-violation")
    assert e.details["pfn"] == m.P.pfn


# -- lost-write (I10) ------------------------------------------------------------------------------


def test_lost_write(m: Machine) -> None:
    assert call(syscalls.user_access, m.p, 0, False) == 7
    m.P.data = 999  # a write that landed elsewhere / content from the wrong page

    async def body() -> None:
        await syscalls.user_access(m.p, 0, False)

    f = finding_of(body, "lost-write")
    assert (f.details["read"], f.details["expected"]) == (999, 7)


# -- lockdep (I8, I9) ------------------------------------------------------------------------------


def test_lock_order_inversion_anon_vma_under_ptl(m: Machine) -> None:
    table = m.mm.pgtables[0]
    av = m.mm.mmap[0].anon_vma
    assert av is not None

    async def body() -> None:
        await table.ptl.lock()
        await av.lock.lock()

    f = finding_of(body, "lock-order-inversion")
    assert f.details["classes"] == ["anon_vma->lock", "pte_lock"]


def test_lock_order_inversion_observed_cycle(m: Machine) -> None:
    """Two locks the mm/rmap.c comment does not order (siblings under the ptl): the first
    order seen is recorded, the reverse one closes a cycle."""
    lru = m.world.zones[0].lru_lock
    swap = m.world.swap_lock

    async def body() -> None:
        await lru.lock()
        await swap.lock()
        swap.unlock()
        lru.unlock()
        await swap.lock()
        await lru.lock()

    f = finding_of(body, "lock-order-inversion")
    assert f.details["classes"] == ["swap_lock", "zone->lru_lock"]


def test_lock_page_under_ptl_is_an_order_violation(m: Machine) -> None:
    """lock_page while holding a ptl breaks I8 twice (order and sleep); lockdep runs first
    and reports the more specific diagnosis, the inversion against PG_locked -> ptl."""
    table = m.mm.pgtables[0]

    async def body() -> None:
        await table.ptl.lock()
        await lock_page(m.P)

    f = finding_of(body, "lock-order-inversion")
    assert "PG_locked" in f.details["classes"]


def test_sleep_in_atomic_wait_under_ptl(m: Machine) -> None:
    """migration_entry_wait must drop the ptl before wait_on_page_locked: sleeping under it
    is the sleep-in-atomic oracle (no lock acquisition, so no lockdep order involved)."""
    table = m.mm.pgtables[0]

    async def body() -> None:
        await table.ptl.lock()
        await wait_on_page_locked(m.P)

    f = finding_of(body, "sleep-in-atomic")
    assert f.details["held"] == [table.ptl.name]


@pytest.mark.parametrize("alloc", ["vma", "page table"])
def test_sleep_in_atomic_slab_and_page_table_allocation_under_ptl(m: Machine,
                                                                   alloc: str) -> None:
    """kmem_cache_alloc(SLAB_KERNEL) and pte_alloc_one may sleep: doing either under a
    spinlock is the sleep-in-atomic oracle, from the model's allocation functions."""
    from target.mm.mmap import vm_area_alloc

    table = m.mm.pgtables[0]
    far = max(m.mm.pgtables) * PTRS_PER_PTE + 4 * PTRS_PER_PTE  # no table there yet

    async def body() -> None:
        await table.ptl.lock()
        if alloc == "vma":
            vm_area_alloc(m.mm, far, far + 1, 0)
        else:
            m.mm.pte_alloc(far)

    f = finding_of(body, "sleep-in-atomic")
    assert f.details["held"] == [table.ptl.name]


def test_sleep_in_atomic_lock_page_in_rcu(m: Machine) -> None:
    async def body() -> None:
        rcu_read_lock()
        await lock_page(m.P)

    f = finding_of(body, "sleep-in-atomic")
    assert "rcu_read_lock" in f.details["held"]


def test_sleep_in_atomic_cond_resched_under_anon_vma_lock(m: Machine) -> None:
    av = m.mm.mmap[0].anon_vma
    assert av is not None

    async def body() -> None:
        await av.lock.lock()
        await cond_resched()

    finding_of(body, "sleep-in-atomic")


# -- deadlock and livelock -------------------------------------------------------------------------


def test_deadlock_waiting_on_own_page_lock(m: Machine) -> None:
    async def body() -> None:
        await lock_page(m.P)
        await wait_on_page_locked(m.P)

    f = finding_of(body, "deadlock")
    assert "PG_locked" in f.message


def test_deadlock_two_tasks_cycle(m: Machine) -> None:
    """Each task holds one page lock and waits for the other's (waits are not lockdep
    acquisitions, so only the deadlock detector sees this). Round-robin gets both to hold
    their lock before either waits."""
    call(syscalls.user_access, m.p, 1, True, 8)
    Q = m.page(m.mm, 1)

    def holder(mine: Page, other: Page) -> Body:
        async def body() -> None:
            await lock_page(mine)
            await wait_on_page_locked(other)
            unlock_page(mine)

        return body

    f = finding_of([("a", holder(m.P, Q)), ("b", holder(Q, m.P))], "deadlock",
                   sched=RoundRobin())
    assert len(f.details["cycle"]) == 2


def test_deadlock_detector_quiet_when_lock_released(m: Machine) -> None:
    """The same two tasks, one of which releases before waiting: no deadlock."""
    call(syscalls.user_access, m.p, 1, True, 8)
    Q = m.page(m.mm, 1)

    async def a() -> None:
        await lock_page(m.P)
        await wait_on_page_locked(Q)
        unlock_page(m.P)

    async def b() -> None:
        await lock_page(Q)
        unlock_page(Q)
        await wait_on_page_locked(m.P)

    out = run([("a", a), ("b", b)], sched=RoundRobin())
    assert out.finding is None, out.finding


def test_livelock_step_bound(m: Machine) -> None:
    async def body() -> None:
        while True:  # a busy-wait that never sees its condition (V2 2/5's yield loop)
            await cond_resched()

    f = finding_of(body, "livelock", max_steps=200)
    assert f.details["max_steps"] == 200 and f.details["unfinished"] == ["t"]


# -- and the other direction: clean runs stay clean ------------------------------------------------


@pytest.mark.parametrize("name", sorted(set(scenarios.CANONICAL)))
def test_quiescent_clean_after_canonical_scenario(name: str) -> None:
    """run_scenario ends with read-back and check_quiescent: the V2 model with the upstream
    fixes of its real flaws passes (V2 as posted is expected to fail the flaws' scenarios:
    tests/test_model_vma.py)."""
    sc = scenarios.canonical(name)
    with inject(lookup(["all"])):
        for seed in range(3):
            out = run_seed(sc, seed)
            assert out.finding is None, (name, seed, out.finding)


def test_quiescent_clean_world_after_sequential_ops() -> None:
    """check_quiescent directly on a world after fork, COW, swap-out, migrate, pin, munmap.

    The two vmas are adjacent, so the second shares the first's anon_vma
    (find_mergeable_anon_vma) and V2's remove_migration_ptes would walk it at -EFAULT for the
    first's pages: that flaw's upstream fix is applied (the test is about the oracles)."""
    sc = Scenario(WorldConfig(pages_per_node=8, swap_slots=4),
                  [ProcessSpec(1, [VmaSpec(0, 4), VmaSpec(4, 6)])],
                  [TaskSpec("unused", [("read", 1, 0)])])
    world, procs = build_world(sc)
    set_world(world)
    try:
        with inject(lookup(["remove-migration-ptes-efault"])):
            p = procs[1]
            for a in range(5):
                call(syscalls.user_access, p, a, True, 100 + a)
            child = call(syscalls.sys_fork, p, 2)
            call(syscalls.user_access, child, 1, True, 7)
            for _ in range(4):
                call(syscalls.kswapd_reclaim, 0)
            call(syscalls.sys_migrate_pages, p, 0, 1, True)
            assert call(syscalls.pin, p, 2)
            call(syscalls.dma_write, p, 2, 50)
            call(syscalls.unpin, p, 2)
            call(syscalls.sys_munmap, child, 4)
            check_quiescent(world)
            for a in (0, 1, 3):
                assert call(syscalls.user_access, p, a, False) == 100 + a
            assert call(syscalls.user_access, child, 1, False) == 7
            check_quiescent(world)
    finally:
        set_world(None)
