"""Progress at quiescence (issue 18): after the concurrent phase, with nothing else running,
a migration moves every eligible page, a reclaim frees every page it can, and a page that can
never move is retried exactly as often as the kernel says. The raw-field readers are the
quiescence oracle's (:mod:`stress.oracles`), so a mutant of a model helper changes neither."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Coroutine
from typing import Any

from target.kernel import KernelFinding
from target.mm import syscalls
from target.mm.swap import lru_add_drain_all
from target.mm.swapops import SWP_TYPE_MIGRATION
from target.mm.types import (
    PTRS_PER_PTE,
    VM_LOCKED,
    MmStruct,
    Page,
    PG_lru,
    PG_reserved,
    PresentPte,
    SwapPte,
)
from target.mm.world import World

from .oracles import (
    check_mmlist,
    live_mms,
    pagevec_refs,
    raw_anon,
    raw_count,
    raw_mapcount,
    raw_swapcache,
)

# -- progress at quiescence (issue 18 item 1) --------------------------------------------------
#
# Safety oracles cannot tell "migrates" from "never migrates": a migrate_page that always
# returns -EAGAIN keeps every invariant. So, after the concurrent phase, with nothing else
# running, the model must do what it is for: a migration of a process's eligible pages moves
# every one of them, a reclaim frees every page it can, and a page that can never be migrated
# is retried exactly as often as the kernel says. What is eligible, and whether it moved, is
# read from raw fields here; only the operations themselves are the model's.

MIGRATE_PASSES = 11
"""migrate_pages (2.6.17): ``if (retry && pass++ < 10) goto redo;``: passes 0..10."""

_PROGRESS = "progress"


def _no_progress(message: str, **details: object) -> None:
    raise KernelFinding("no-progress", message, details, function=_PROGRESS)


def _mappers(world: World) -> dict[int, list[tuple[MmStruct, int, bool]]]:
    """pfn -> (mm, addr, vma VM_LOCKED) of every present pte, from the page tables."""
    out: dict[int, list[tuple[MmStruct, int, bool]]] = defaultdict(list)
    for mm in live_mms(world):
        for table in mm.pgtables.values():
            for i, pte in enumerate(table.ptes):
                if type(pte) is PresentPte:
                    addr = table.base + i
                    vma = mm.find_vma(addr)
                    locked = vma is None or bool(vma.vm_flags & VM_LOCKED)
                    out[pte.pfn].append((mm, addr, locked))
    return out


def _why_stuck(page: Page, mappers: list[tuple[MmStruct, int, bool]]) -> dict[str, object]:
    return {"pfn": page.pfn, "nid": page.nid, "count": raw_count(page),
            "mapcount": raw_mapcount(page), "ptes": len(mappers),
            "swapcache": raw_swapcache(page), "locked": page.locked.is_set,
            "writeback": page.writeback.is_set, "on_lru": bool(page.flags & PG_lru)}


def _movable(world: World, page: Page, mappers: list[tuple[MmStruct, int, bool]]) -> bool:
    """Nothing but its ptes, the swap cache and pagevecs holds it (migrate_prep drains every
    CPU's pagevecs onto the LRU), and no mapper has it VM_LOCKED."""
    in_pvec = pagevec_refs(world)[page.pfn]
    return (not page.flags & PG_reserved and bool(page.flags & PG_lru or in_pvec)
            and raw_count(page) == len(mappers) + int(raw_swapcache(page)) + in_pvec
            and not any(locked for _, _, locked in mappers))


async def _migration_progress(world: World) -> None:
    for pid in sorted(world.processes):
        p = world.processes[pid]
        mm = getattr(p, "mm", None)
        if mm is None or mm.freed or not isinstance(p, syscalls.UserProcess):
            continue
        for source in range(len(world.zones)):
            dest = (source + 1) % len(world.zones)
            if dest == source:
                continue
            mappers = _mappers(world)
            mine = {pfn: [m for m in ms if m[0] is mm] for pfn, ms in mappers.items()}
            isolated = [pfn for pfn, ms in mine.items() if ms and not ms[0][2]
                        and world.mem_map[pfn].nid == source
                        and not world.mem_map[pfn].flags & PG_reserved]
            if not isolated or len(world.zones[dest].free_list) < len(isolated):
                continue  # nothing to move, or -ENOMEM is the right answer
            want = {addr: pfn for pfn in isolated
                    if _movable(world, world.mem_map[pfn], mappers[pfn])
                    for _, addr, _ in mine[pfn]}
            await syscalls.sys_migrate_pages(p, source, dest, True)
            for addr, pfn in sorted(want.items()):
                table = mm.pgtables.get(addr // PTRS_PER_PTE)
                pte = None if table is None else table.ptes[addr - table.base]
                now = world.mem_map[pte.pfn] if type(pte) is PresentPte else None
                if type(pte) is SwapPte and pte.type != SWP_TYPE_MIGRATION:
                    # V2 unmaps a swap cache page to swap entries, which stay: the page they
                    # name now is the swap cache's, and that is what must have moved.
                    now = world.swapper_space.page_tree.get(pte.offset)
                if now is None or now.nid != dest:
                    _no_progress(
                        f"quiescent migration of pid {pid} from node {source} to {dest} left "
                        f"address {addr} on pfn {pfn} (node {world.mem_map[pfn].nid}), which "
                        "only its ptes and the swap cache held",
                        pid=pid, addr=addr, source=source, dest=dest, pte=str(pte),
                        page=_why_stuck(world.mem_map[pfn], mappers[pfn]))


def _reclaimable(world: World, page: Page, mappers: list[tuple[MmStruct, int, bool]]) -> bool:
    return (_movable(world, page, mappers) and (raw_anon(page) or raw_swapcache(page))
            and not page.writeback.is_set)


async def _reclaim_progress(world: World) -> None:
    if not world.config.config_swap:
        return
    await lru_add_drain_all()  # what migration or the swap cycle's faults just added
    for nid, zone in enumerate(world.zones):
        mappers = _mappers(world)
        cands = [pg for pg in zone.inactive_list + zone.active_list
                 if _reclaimable(world, pg, mappers.get(pg.pfn, []))]
        cached = [pg for pg in cands if raw_swapcache(pg)]
        slots = sum(1 for off in range(1, len(world.swap_map))
                    if world.swap_map[off] == 0 and off not in world.swapper_space.page_tree)
        # An anon page that cannot go (mlocked, held) still gets a slot before try_to_unmap
        # refuses it: those slots are not there for the others.
        grabbers = sum(1 for pg in zone.inactive_list + zone.active_list
                       if pg not in cands and raw_anon(pg) and not raw_swapcache(pg))
        need = len(cached) + min(max(0, slots - grabbers), len(cands) - len(cached))
        lru = len(zone.inactive_list) + len(zone.active_list)
        # A page leaves memory in three calls (young bits, unmap + write, free); a page that
        # cannot go is rotated, so four calls per LRU page are enough to reach every one.
        for _ in range(4 * lru + 4):
            if sum(1 for pg in cands if raw_count(pg) == 0) >= need and not any(
                    raw_count(pg) for pg in cached):
                break
            await syscalls.kswapd_reclaim(nid)
        freed = [pg for pg in cands if raw_count(pg) == 0]
        stuck = [pg for pg in cached if raw_count(pg) != 0]
        if len(freed) < need or stuck:
            left = stuck or [pg for pg in cands if raw_count(pg) != 0]
            _no_progress(
                f"quiescent reclaim of node {nid} freed {len(freed)} of {need} pages it can "
                f"free ({len(cands)} reclaimable, {len(cached)} already in the swap cache, "
                f"{slots} free swap slots); pfn {left[0].pfn} stayed",
                nid=nid, freed=len(freed), need=need, slots=slots,
                page=_why_stuck(left[0], mappers.get(left[0].pfn, [])))


def progress_program(world: World) -> Callable[[], Coroutine[Any, Any, None]]:
    """The quiescent migration and reclaim, run alone after the concurrent phase."""

    async def body() -> None:
        check_mmlist(world)  # before the oracle's own reclaim puts every swapped mm on it
        # No drain before the migrations: a page parked in a pagevec is movable, since
        # migrate_prep must drain it (that is what it is for); the reclaim drains first.
        await _migration_progress(world)
        await _reclaim_progress(world)
        await _swap_cycle(world)

    return body


SWAP_CYCLE_DELTA = 1_000_000
"""Added to every expected value by the swap cycle's stores: distinct from any workload value."""


async def _swap_cycle(world: World) -> None:
    """Store a new value at every address each live process expects, then reclaim again.

    A page swapped out by the quiescent reclaim comes back through the swap cache with a
    clean PG_dirty; the store dirties only its pte. Reclaiming it again must carry that
    dirty bit to the page (try_to_unmap_one) and write it, or the read-back that follows
    sees the old value: a path the first swap-out (add_to_swap dirties the page) never takes.
    """
    if not world.config.config_swap:
        return
    for pid in sorted(world.processes):
        p = world.processes[pid]
        if not isinstance(p, syscalls.UserProcess) or p.mm is None or p.mm.freed:
            continue
        for addr in sorted(p.expected):
            await syscalls.user_access(p, addr, True, p.expected[addr] + SWAP_CYCLE_DELTA)
    await _reclaim_progress(world)


def retry_limit_program(world: World) -> tuple[Callable[[], Coroutine[Any, Any, None]],
                                                Callable[[list[Any]], None]]:
    """Migrating a page that someone else holds is retried exactly MIGRATE_PASSES times.

    The oracle itself takes the extra reference (a raw ``raw_count`` increment: a driver's pin),
    so migrate_page_remove_references sees ``mapcount + nr_refs != count`` on every pass.
    Returns the program (run traced) and the check of its trace: one page-lock acquisition of
    that page per pass.
    """
    box: dict[str, Any] = {}

    async def body() -> None:
        mappers = _mappers(world)
        for pfn in sorted(mappers):
            page = world.mem_map[pfn]
            if not _movable(world, page, mappers[pfn]):
                continue
            mm, _, _ = mappers[pfn][0]
            p = next((q for q in world.processes.values() if getattr(q, "mm", None) is mm),
                     None)
            dest = (page.nid + 1) % len(world.zones)
            if (not isinstance(p, syscalls.UserProcess) or dest == page.nid
                    or not world.zones[dest].free_list):
                continue
            box["page"] = page
            page._count += 1
            try:
                await syscalls.sys_migrate_pages(p, page.nid, dest, True)
            finally:
                page._count -= 1
            return

    def check(events: list[Any]) -> None:
        page = box.get("page")
        if page is None:
            return
        passes = sum(1 for _, _, ev, d in events if ev == "lock" and d.get("lock") ==
                     page.locked.name)
        if passes != MIGRATE_PASSES:
            _no_progress(
                f"migrate_pages tried pfn {page.pfn}, held by another reference, {passes} "
                f"times; the kernel retries -EAGAIN for {MIGRATE_PASSES} passes",
                pfn=page.pfn, passes=passes, expected=MIGRATE_PASSES)

    return body, check
