"""Every canonical scenario reaches the race its docstring names (issue 13, items 6 and 7).

``fuzz_schedule`` and the default campaign fuzz only canonical scenarios, so a scenario whose
race cannot happen (as ``migrate-vs-fork-exit`` once could not: it migrated the process that
forked, and fork's mmap_sem write excluded the migration's read) hides its race from them.
Each scenario's race is written here as a predicate on the model, observed by wrapping model
functions, and must happen in one of a bounded number of seeded runs (random walk and PCT of
depth 3, the stress portfolio's two schedulers). With every upstream fix applied unless the
race is a flaw's, where the fixed function would take the race away; with the fixes, every
run must also end without a finding.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

import target.mm.memory as memory
import target.mm.migrate as migrate
import target.mm.mremap as mremap
import target.mm.rmap as rmap
import target.mm.syscalls as syscalls
from stress.run import run_scenario
from stress.scenarios import CANONICAL, canonical
from stress.schedulers import DFSScheduler, PCTScheduler, RandomScheduler
from stress.workload import Op, ProcessSpec, Scenario, TaskSpec, VmaSpec, validate
from target.bugs import inject
from target.fixes import lookup, without
from target.kernel import current
from target.mm.pgtable import EFAULT, pte_read
from target.mm.rmap import PageSwapCache
from target.mm.swapops import is_migration_entry, migration_entry_to_page
from target.mm.types import MmStruct, Page, PG_lru, PresentPte, SwapPte, VmArea, list_empty
from target.mm.world import W, WorldConfig

EAGAIN = migrate.EAGAIN
EPERM = migrate.EPERM


def _is_entry(pte: object) -> bool:
    return type(pte) is SwapPte and is_migration_entry(pte)


def wrap(mp: pytest.MonkeyPatch, module: Any, name: str,
         make: Callable[[Any], Any]) -> None:
    """Replace ``module.name`` by ``make(it)`` wherever the model holds it by name (the model
    imports functions, and the fixes replace them the same way: target.bugs._catalog.inject).
    Done inside the fixes' ``inject`` so the wrapper wraps the fixed function."""
    real = getattr(module, name)
    new = make(real)
    for modname, mod in list(sys.modules.items()):
        if mod is None or not modname.startswith(("target.", "stress.")):
            continue
        for attr, value in list(vars(mod).items()):
            if value is real:
                mp.setattr(mod, attr, new)


@dataclass
class Probe:
    """What the wrappers saw, across runs: each ``reached`` key a race that happened."""

    reached: Counter[str] = field(default_factory=Counter)
    sleepers: dict[int, set[tuple[str, int]]] = field(default_factory=dict)  # id(page)
    pinned: dict[int, int] = field(default_factory=dict)  # id(page) -> pins held
    pins_held: set[int] = field(default_factory=set)  # serials of pins not yet unpinned
    serial: int = 0
    walking: Counter[int] = field(default_factory=Counter)  # id(old page) in the rmp walk
    isolated: dict[int, str] = field(default_factory=dict)  # id(page) -> isolating task
    in_wp: Counter[tuple[int, int]] = field(default_factory=Counter)
    backwards: set[str] = field(default_factory=set)  # tasks in a move_ptes to a vma before
    copied: set[tuple[int, int]] = field(default_factory=set)  # (id(mm), addr) fork copied
    in_mew: dict[str, int] = field(default_factory=dict)  # task -> id(mm) it faults in
    walkers: Counter[str] = field(default_factory=Counter)  # tasks in remove_migration_ptes
    in_migrate: dict[str, bool] = field(default_factory=dict)  # task -> in migrate_pages


def install(mp: pytest.MonkeyPatch, probe: Probe) -> None:
    """Every wrapper every predicate needs (they only observe: each calls the real function
    with the same arguments and returns its result)."""

    def mew(real: Any) -> Any:
        async def migration_entry_wait(mm: MmStruct, table: Any, address: int) -> None:
            me = current().name
            probe.in_mew[me] = id(mm)
            try:
                await real(mm, table, address)
            finally:  # also when a finding tears the run down: no model code here
                del probe.in_mew[me]
        return migration_entry_wait

    def wait_on_page_locked(real: Any) -> Any:
        # migrate's own name: in migration_entry_wait, the sleep on the entry's page (the
        # entry was still there under the ptl, and the fault holds a reference of the page)
        async def wrapped(page: Page) -> None:
            me = current().name
            mm = probe.in_mew.get(me)
            if mm is None:
                await real(page)
                return
            waiting = probe.sleepers.setdefault(id(page), set())
            waiting.add((me, mm))
            probe.reached["a fault sleeps in migration_entry_wait"] += 1
            if len(waiting) >= 2:
                probe.reached["two faults sleep on one migration entry"] += 1
            try:
                await real(page)
            finally:
                waiting.discard((me, mm))
        return wrapped

    def mprr(real: Any) -> Any:
        async def migrate_page_remove_references(newpage: Page, page: Page, nr_refs: int) -> int:
            if nr_refs == 2 and PageSwapCache(page):
                probe.reached["a swap cache page is migrated (nr_refs 2)"] += 1
            rc: int = await real(newpage, page, nr_refs)
            if rc == EAGAIN and probe.pinned.get(id(page)):
                probe.reached["migration backs off because of the pin's reference"] += 1
            if rc == EAGAIN and probe.sleepers.get(id(page)):
                probe.reached["migration backs off because of a sleeper's reference"] += 1
            if rc == EPERM:
                probe.reached["migration fails -EPERM on a VM_LOCKED mapping"] += 1
            return rc
        return migrate_page_remove_references

    def pin(real: Any) -> Any:
        async def wrapped(p: Any, addr: int, thread: str = syscalls.MAIN_THREAD,
                          spec: Any = None) -> bool:
            ok: bool = await real(p, addr, thread, spec)
            if ok:
                page = p.pins[thread, addr][0]
                probe.pinned[id(page)] = probe.pinned.get(id(page), 0) + 1
                probe.serial += 1
                p.__dict__.setdefault("_probe_serials", {})[thread, addr] = probe.serial
                probe.pins_held.add(probe.serial)
            return ok
        return wrapped

    def unpin(real: Any) -> Any:
        async def wrapped(p: Any, addr: int, thread: str = syscalls.MAIN_THREAD) -> bool:
            pinned = p.pins.get((thread, addr))
            if pinned is not None:
                probe.pinned[id(pinned[0])] -= 1
                probe.pins_held.discard(p.__dict__["_probe_serials"].pop((thread, addr)))
            ok: bool = await real(p, addr, thread)
            return ok
        return wrapped

    def sys_fork(real: Any) -> Any:
        async def wrapped(p: Any, child_pid: int, *args: Any, **kw: Any) -> Any:
            held = set(probe.pins_held)
            ret = await real(p, child_pid, *args, **kw)
            if held & probe.pins_held:  # one pin was held from before the fork to after it
                probe.reached["the fork happens while the pin is held"] += 1
            return ret
        return wrapped

    def sys_exit(real: Any) -> Any:
        async def wrapped(p: Any, thread: str | None = None) -> None:
            mm = id(p.mm) if p.mm is not None else None
            if any(t != thread and m == mm for s in probe.sleepers.values() for t, m in s):
                probe.reached["a thread exits while a sibling sleeps in migration_entry_wait"] += 1
            await real(p, thread)
        return wrapped

    def copy_one_pte(real: Any) -> Any:
        async def wrapped(dst_mm: MmStruct, src_mm: MmStruct, dst: Any, src: Any,
                          vma: VmArea, addr: int, rss: list[int]) -> None:
            if _is_entry(pte_read(src, addr)):
                probe.reached["copy_one_pte copies a migration entry"] += 1
                probe.copied.add((id(dst_mm), addr))
                if list_empty(src_mm.mmlist):
                    probe.reached["... from an mm on no mmlist"] += 1
            await real(dst_mm, src_mm, dst, src, vma, addr, rss)
        return wrapped

    def rmp_walk(real: Any) -> Any:
        async def remove_migration_ptes(old: Page, new: Page) -> None:
            me = current().name
            probe.walking[id(old)] += 1
            probe.walkers[me] += 1
            try:
                await real(old, new)
            finally:
                probe.walking[id(old)] -= 1
                probe.walkers[me] -= 1
        return remove_migration_ptes

    def restore(real: Any) -> Any:
        async def remove_migration_pte(vma: VmArea, addr: int, old: Page, new: Page) -> None:
            table = vma.vm_mm.pte_table(addr, alloc=False) if addr != EFAULT else None
            if table is not None and _is_entry(pte_read(table, addr)):
                if W().config.config_highpte:
                    probe.reached["remove_migration_pte restores an entry (HIGHPTE)"] += 1
                if (id(vma.vm_mm), addr) in probe.copied:
                    probe.reached["the walk restores an entry fork copied"] += 1
            await real(vma, addr, old, new)
        return remove_migration_pte

    def page_address_in_vma(real: Any) -> Any:
        def wrapped(page: Page, vma: VmArea) -> int:
            addr: int = real(page, vma)
            if addr == EFAULT and probe.walkers[current().name]:
                probe.reached["the walk meets a vma that does not cover the page"] += 1
            return addr
        return wrapped

    def clears(seen: Callable[[Any], None]) -> Callable[[Any], Any]:
        """A module's ptep_clear_flush that shows ``seen`` every pte it clears."""
        def make(real: Any) -> Any:
            async def ptep_clear_flush(mm: MmStruct, addr: int, table: Any) -> Any:
                pte = await real(mm, addr, table)
                seen(pte)
                return pte
            return ptep_clear_flush
        return make

    def zapped(pte: Any) -> None:  # memory's ptep_clear_flush: zap_pte_range's
        if _is_entry(pte):
            probe.reached["zap_pte_range zaps a migration entry"] += 1

    def move_ptes(real: Any) -> Any:
        async def wrapped(vma: VmArea, old_addr: int, old_end: int, new_vma: VmArea,
                          new_addr: int) -> None:
            head = vma.anon_vma.head if vma.anon_vma is not None else []
            me = current().name
            if (vma in head and new_vma in head
                    and head.index(new_vma) < head.index(vma)):
                probe.backwards.add(me)
            try:
                await real(vma, old_addr, old_end, new_vma, new_addr)
            finally:
                probe.backwards.discard(me)
        return wrapped

    def moved(pte: Any) -> None:  # mremap's ptep_clear_flush: move_ptes's
        if _is_entry(pte):
            probe.reached["move_ptes moves a migration entry"] += 1
            if probe.walking[id(migration_entry_to_page(pte))]:
                probe.reached["... while remove_migration_ptes walks for its page"] += 1
            if current().name in probe.backwards:
                probe.reached["... into a vma before its source in the anon_vma"] += 1
        elif type(pte) is PresentPte and current().name in probe.backwards:
            page = W().mem_map[pte.pfn]
            if not page.flags & PG_lru and probe.isolated.get(id(page)) not in (
                    None, current().name):
                probe.reached["move_ptes moves a page the migrator holds into a vma "
                              "before its source"] += 1

    def isolate(real: Any) -> Any:
        async def isolate_lru_page(page: Page, pagelist: list[Page], **kw: Any) -> int:
            rc: int = await real(page, pagelist, **kw)
            if rc == 0:
                probe.isolated[id(page)] = current().name
            elif any(page in pvec for pvecs in (W().lru_add_pvecs, W().lru_add_active_pvecs)
                     for pvec in pvecs.values()):
                probe.reached["isolation skips a page a fault parked in a pagevec after the "
                              "drain"] += 1
            return rc
        return isolate_lru_page

    def remove_rmap(real: Any) -> Any:
        async def page_remove_rmap(page: Page) -> None:
            await real(page)
            owner = probe.isolated.get(id(page))
            # still isolated by another task (off the LRU, on its pagelist, its reference)
            if (page.mapcount == 0 and owner is not None and owner != current().name
                    and not page.flags & PG_lru and page.lru is not None and page.count > 0):
                probe.reached["a page loses its last user while the migrator holds it"] += 1
        return page_remove_rmap

    def wp(real: Any) -> Any:
        async def do_wp_page(mm: MmStruct, vma: VmArea, address: int, table: Any,
                             orig_pte: Any) -> int:
            key = (id(mm), address)
            probe.in_wp[key] += 1
            if probe.in_wp[key] >= 2:
                probe.reached["two do_wp_page on one pte"] += 1
            try:
                ret: int = await real(mm, vma, address, table, orig_pte)
            finally:
                probe.in_wp[key] -= 1
            return ret
        return do_wp_page

    def lookup(real: Any) -> Any:
        async def lookup_swap_cache(entry: SwapPte) -> Page | None:
            page: Page | None = await real(entry)
            if page is not None and page.locked.is_set:  # not the fault's lock: reclaim's
                probe.reached["a swap-in finds its page in the cache while reclaim holds it "
                              "locked"] += 1
            return page
        return lookup_swap_cache

    wrap(mp, migrate, "migration_entry_wait", mew)
    wrap(mp, memory, "lookup_swap_cache", lookup)
    mp.setattr(migrate, "wait_on_page_locked", wait_on_page_locked(migrate.wait_on_page_locked))
    wrap(mp, migrate, "migrate_page_remove_references", mprr)
    wrap(mp, syscalls, "pin", pin)
    wrap(mp, syscalls, "unpin", unpin)
    wrap(mp, syscalls, "sys_fork", sys_fork)
    wrap(mp, syscalls, "sys_exit", sys_exit)
    wrap(mp, memory, "copy_one_pte", copy_one_pte)
    wrap(mp, migrate, "remove_migration_ptes", rmp_walk)
    wrap(mp, migrate, "remove_migration_pte", restore)
    wrap(mp, rmap, "page_address_in_vma", page_address_in_vma)
    mp.setattr(memory, "ptep_clear_flush", clears(zapped)(memory.ptep_clear_flush))
    wrap(mp, mremap, "move_ptes", move_ptes)
    mp.setattr(mremap, "ptep_clear_flush", clears(moved)(mremap.ptep_clear_flush))
    wrap(mp, migrate, "isolate_lru_page", isolate)
    wrap(mp, rmap, "page_remove_rmap", remove_rmap)
    wrap(mp, memory, "do_wp_page", wp)

    def plav(real: Any) -> Any:
        async def page_lock_anon_vma(page: Page) -> Any:
            anon_vma = await real(page)
            if anon_vma is not None and anon_vma.freed:
                probe.reached["page_lock_anon_vma locks an anon_vma freed under it"] += 1
            return anon_vma
        return page_lock_anon_vma

    def writeback_wait(real: Any) -> Any:
        async def wait_on_page_writeback(page: Page) -> None:
            if page.writeback.is_set and probe.in_migrate.get(current().name):
                probe.reached["migration waits for a mapped page's write"] += 1
            await real(page)
        return wait_on_page_writeback

    def migrating(real: Any) -> Any:
        async def migrate_pages(*args: Any) -> int:
            me = current().name
            probe.in_migrate[me] = True
            try:
                rc: int = await real(*args)
            finally:
                probe.in_migrate[me] = False
            return rc
        return migrate_pages

    wrap(mp, rmap, "page_lock_anon_vma", plav)
    wrap(mp, migrate, "wait_on_page_writeback", writeback_wait)
    wrap(mp, migrate, "migrate_pages", migrating)


# scenario -> (the races its docstring names, True: every upstream fix applied, or the name
# of the one flaw left in: the race is that flaw's and its fix would take it away)
RACES: dict[str, tuple[tuple[str, ...], bool | str]] = {
    "migrate-vs-fault": (("a fault sleeps in migration_entry_wait",
                          "migration backs off because of a sleeper's reference"), True),
    "migrate-vs-fork-exit": (("copy_one_pte copies a migration entry",
                              "the walk restores an entry fork copied"), True),
    "migrate-vs-swap-pin": (("migration backs off because of the pin's reference",
                             "a swap cache page is migrated (nr_refs 2)"), True),
    "migrate-vs-munmap": (("zap_pte_range zaps a migration entry",), True),
    "migrate-vs-mlock": (("migration fails -EPERM on a VM_LOCKED mapping",), True),
    "migrate-vs-cow-exit": (("a page loses its last user while the migrator holds it",), True),
    "migrate-split-vma": (("the walk meets a vma that does not cover the page",), True),
    "migrate-highpte": (("remove_migration_pte restores an entry (HIGHPTE)",
                         "a fault sleeps in migration_entry_wait"), True),
    "migrate-fork-swapoff": (("... from an mm on no mmlist",), True),
    "migrate-vs-mremap": (("... while remove_migration_ptes walks for its page",), True),
    # copy-vma-rmap-order moves the destination to the tail: the race is the flaw's
    "migrate-vs-mremap-back": (("... into a vma before its source in the anon_vma",),
                               "copy-vma-rmap-order"),
    "threads-vs-migrate": (("two faults sleep on one migration entry",), True),
    "gup-vs-fork": (("the fork happens while the pin is held",), True),
    "threads-cow-break": (("two do_wp_page on one pte",), True),
    "thread-exit-vs-entry-wait": (
        ("a thread exits while a sibling sleeps in migration_entry_wait",), True),
    "migrate-vs-child-mremap": (("move_ptes moves a migration entry",
                                 "... while remove_migration_ptes walks for its page"), True),
    "swapin-vs-reclaim": (
        ("a swap-in finds its page in the cache while reclaim holds it locked",), True),
    "reclaim-vs-exit": (("page_lock_anon_vma locks an anon_vma freed under it",), True),
    "migrate-vs-writeback": (("migration waits for a mapped page's write",), True),
    "migrate-vs-pagevec": (
        ("isolation skips a page a fault parked in a pagevec after the drain",), True),
    "tiny-migrate-fault": (("a fault sleeps in migration_entry_wait",), True),
    "tiny-migrate-pin": (("migration backs off because of the pin's reference",), True),
}
SEEDS = 150  # per scheduler; every race below is met well within it (the first seed is asserted)


def first_reaching(sc: Any, races: tuple[str, ...], fixes: bool | str,
                   seeds: int = SEEDS) -> tuple[int | None, Counter[str]]:
    """The first seed whose runs (random walk, then PCT depth 3) have made every race of
    ``races`` happen, counting from seed 0; None if ``seeds`` seeds do not. Without a fix,
    its flaw's findings end some runs; with every fix, no run may have a finding."""
    applied = lookup(["all"] if fixes is True else without(fixes) if fixes else [])
    with inject(applied), pytest.MonkeyPatch.context() as mp:
        probe = Probe()
        install(mp, probe)  # inside inject: the wrappers wrap the fixed functions
        for seed in range(seeds):
            for sched in (RandomScheduler(seed), PCTScheduler(seed, depth=3)):
                sched.new_execution()
                out = run_scenario(sc, sched)
                if fixes is True:
                    assert out.finding is None, (seed, out.finding)
            if all(probe.reached[r] for r in races):
                return seed, probe.reached
    return None, probe.reached


def test_every_canonical_scenario_has_its_race_written_down() -> None:
    assert set(RACES) == set(CANONICAL)


# Scenarios whose race the sampling strategies do not reach, and the preemption bound at which
# DFS does (the gate's exhaustive part explores them: they are in TINY). migrate-vs-writeback:
# the interrupt must stay off for the ~40 steps of a fault and a migration; a random walk runs
# it within a few, and PCT's change points, spread over the few decisions of its random-walk
# probe, always lower the user task inside the window.
DFS_REACHED = {"migrate-vs-writeback": 0}


def first_reaching_dfs(sc: Scenario, races: tuple[str, ...], bound: int) -> Counter[str]:
    """What exhaustive DFS of ``sc`` at preemption bound ``bound`` reaches, with every fix,
    stopping once every race of ``races`` has happened; no run may have a finding."""
    with inject(lookup(["all"])), pytest.MonkeyPatch.context() as mp:
        probe = Probe()
        install(mp, probe)
        sched = DFSScheduler(bound)
        while sched.new_execution():
            out = run_scenario(sc, sched)
            assert out.finding is None, out.finding
            if all(probe.reached[r] for r in races):
                break
    return probe.reached


@pytest.mark.parametrize("name", sorted(CANONICAL))
def test_the_canonical_scenario_reaches_its_race(name: str) -> None:
    races, fixes = RACES[name]
    if name in DFS_REACHED:
        reached = first_reaching_dfs(canonical(name), races, DFS_REACHED[name])
        assert all(reached[r] for r in races), f"{name} never reached {races}: {dict(reached)}"
        return
    seed, reached = first_reaching(canonical(name), races, fixes)
    assert seed is not None, f"{name} never reached {races}: {dict(reached)}"


def _broken_fork_exit() -> Scenario:
    """migrate-vs-fork-exit as it was before issue 13: the migrator migrates the process
    that forks, so fork's mmap_sem write and the migration's read exclude each other."""
    return Scenario(
        WorldConfig(pages_per_node=8, swap_slots=4),
        [ProcessSpec(1, [VmaSpec(0, 2)], [(0, 10), (1, 11)])],
        [TaskSpec("parent", [("fork", 1, 2), ("write", 1, 0, 200), ("read", 1, 1)]),
         TaskSpec("child", [("write", 2, 1, 300), ("read", 2, 0), ("exit", 2)]),
         TaskSpec("migrator", [("migrate", 1, 0, 1, 1)])],
        name="broken-migrate-vs-fork-exit")


def _changed(name: str, tasks: dict[str, list[Op] | None]) -> Callable[[], Scenario]:
    """The canonical scenario ``name`` with the ops of some tasks replaced (None: dropped)."""
    def make() -> Scenario:
        sc = canonical(name)
        kept = [TaskSpec(t.name, tasks.get(t.name, t.ops) or []) for t in sc.tasks
                if t.name not in tasks or tasks[t.name] is not None]
        return replace(sc, tasks=kept)
    return make


# a scenario broken so that its race cannot happen -> the canonical scenario it breaks
BROKEN: dict[str, tuple[Callable[[], Scenario], str]] = {
    "fork of the migrated process": (_broken_fork_exit, "migrate-vs-fork-exit"),
    "no fork before the two stores": (
        _changed("threads-cow-break", {"T1": [("write", 1, 0, 31)], "child": None,
                                       "migrator": None}), "threads-cow-break"),
    "no migrator": (_changed("thread-exit-vs-entry-wait", {"migrator": None}),
                    "thread-exit-vs-entry-wait"),
    "the pin before the fork, in the forking thread": (
        _changed("gup-vs-fork", {"A": None, "B": [("pin", 1, 0, 500), ("fork", 1, 2),
                                                  ("write", 1, 0, 600)]}), "gup-vs-fork"),
    "one thread": (_changed("threads-vs-migrate", {"T2": None}), "threads-vs-migrate"),
}


@pytest.mark.parametrize("how", sorted(BROKEN))
def test_a_scenario_broken_again_fails_its_reach_test(how: str) -> None:
    """The predicates are not vacuous: a scenario that cannot reach its race (the way
    migrate-vs-fork-exit could not) never makes its predicate true in the same budget."""
    make, name = BROKEN[how]
    sc = make()
    validate(sc)
    races, fixes = RACES[name]
    seed, reached = first_reaching(sc, races, fixes)
    assert seed is None, (how, dict(reached))
