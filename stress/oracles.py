"""Invariant checks at quiescence (reference A.21), raised as typed findings.

The checks that must run *at the moment* something goes wrong live in the model, where the
kernel has them: ``BUG_ON(!PageLocked)`` in migration_entry_to_page (I1), the migration-entry
check in unlock_page (I2), free_pages_check and the refcount checks in put_page (I3), lockdep
(I8, I9), KASAN (I6), the lost-write check on reads (I10), check_mm at exit (I5). What needs a
view of the whole machine is checked here, once every task has finished:

* I3/I4: every page in use is explained: ``mapcount`` equals the present ptes that map it,
  ``count`` equals mapcount + the swap cache's reference, it is on an LRU list, unlocked, and
  no migration entry points at it; every free page has count 0.
* I5: each live mm's anon_rss / file_rss equal its present anon / ZERO_PAGE ptes.
* I7: a page mapped by more than one pte is mapped read-only by all of them.
* swap: each slot's count equals the swap ptes naming it plus one if a page caches it.
* I6/I11: every live anon_vma lists only live vmas, and every vma with an anon_vma is on it.
* swapoff: every mm holding a swap entry is reachable from init_mm.mmlist (ours).
* CONFIG_HIGHPTE: no kmap_atomic slot is left mapped (the next kmap_atomic would BUG).

:func:`check_quiescent` is deliberately independent of the model's own bookkeeping where it
can be: it recounts ptes from the page tables instead of trusting ghost counters.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine
from typing import Any

from target.kernel import KernelFinding
from target.mm import syscalls
from target.mm.swap import lru_add_drain_all
from target.mm.swapops import SWP_TYPE_MIGRATION
from target.mm.types import (
    PTRS_PER_PTE,
    VM_LOCKED,
    AnonVma,
    MmStruct,
    Page,
    PG_lru,
    PG_reserved,
    PG_swapcache,
    PresentPte,
    SwapPte,
    list_empty,
    list_members,
)
from target.mm.world import World

# The oracle reads raw fields through these, never the model's helpers (PageAnon, page_count,
# page_mapcount ...): a mutant of a helper must not also change what the oracle sees.


def _count(page: Page) -> int:
    return page._count


def _mapcount(page: Page) -> int:
    return page._mapcount + 1


def _swapcache(page: Page) -> bool:
    return bool(page.flags & PG_swapcache)


def _anon(page: Page) -> bool:
    return isinstance(page.mapping, AnonVma)


ZERO_PAGE_BIAS = 1 << 20
"""The reference World.create gives the ZERO_PAGE, so that it is never freed."""


def _fail(kind: str, message: str, function: str = "quiescence", **details: object) -> None:
    raise KernelFinding(kind, message, details, function=function)


def live_mms(world: World) -> list[MmStruct]:
    mms = []
    for p in world.processes.values():
        mm = getattr(p, "mm", None)
        if mm is not None and not mm.freed:
            mms.append(mm)
    return mms


def _check_swapoff_reach(world: World) -> None:
    """Every live mm that holds a swap entry is reachable from init_mm.mmlist: the only list
    swapoff walks (ours: the kernel finds out at swapoff, by looping forever). The list is
    followed link by link from the head, as swapoff would."""
    reachable = {id(mm) for mm in list_members(world.mmlist)}
    for mm in live_mms(world):
        if id(mm) in reachable:
            continue
        if not list_empty(mm.mmlist):
            # "List of maybe swapped mm's. These are globally strung together off
            # init_mm.mmlist": linked, but into some other circle. Whatever it swaps from now
            # on is out of swapoff's reach, and it will never be added again.
            others = [getattr(o, "name", "?") for o in list_members(mm.mmlist)]
            _fail("swapoff-hang",
                  f"{mm.name} is on an mmlist that is not init_mm.mmlist (with "
                  f"{', '.join(others)}): swapoff would never find its swap entries",
                  function="try_to_unuse", mm=mm.name, circle=others,
                  check="migfuzz (the kernel finds out when swapoff hangs)")
        for table in mm.pgtables.values():
            for i, pte in enumerate(table.ptes):
                if type(pte) is SwapPte and pte.type != SWP_TYPE_MIGRATION:
                    _fail("swapoff-hang",
                          f"{mm.name} holds swap entry S({pte.type}:{pte.offset}) at "
                          f"{table.base + i} but is not on init_mm.mmlist: swapoff would "
                          "never find it",
                          function="try_to_unuse", mm=mm.name, addr=table.base + i,
                          slot=pte.offset, mmlist_empty=list_empty(mm.mmlist),
                          check="migfuzz (the kernel finds out when swapoff hangs)")


def _check_kmaps(world: World) -> None:
    """CONFIG_HIGHPTE: no kmap_atomic slot is left mapped when every task has finished; the
    CPU's next kmap_atomic would BUG (CONFIG_DEBUG_HIGHMEM). Named after the mapper."""
    for (cpu, km), (ptr, who) in sorted(world.kmap_slots.items()):
        _fail("kmap-misuse",
              f"kmap_atomic slot KM_PTE{km} of cpu {cpu} still maps {ptr.table!r} at "
              f"{ptr.addr}, mapped by {who} and never kunmapped: the next kmap_atomic on "
              "that cpu BUGs (CONFIG_DEBUG_HIGHMEM)",
              function=who, cpu=cpu, km=km, mapped_by=who)


def check_mmlist(world: World) -> None:
    """init_mm.mmlist holds only live mms, and every mm that holds (or may later hold) swap
    entries is reachable from it (:func:`_check_swapoff_reach`). Run right after the
    concurrent phase too, since the quiescent reclaim adds swapped mms to the list."""
    mms = live_mms(world)
    for mm in list_members(world.mmlist):
        if mm not in mms:
            _fail("use-after-free", f"{getattr(mm, 'name', mm)} is on init_mm.mmlist but has "
                  "been freed", mm=getattr(mm, "name", repr(mm)))
    _check_swapoff_reach(world)


def _check_anon_vma_cachep(world: World) -> None:
    """Every live anon_vma is reachable from a vma of a live mm (ours: kmemleak, 2.6.31).

    An anon_vma that no vma points to is never freed: anon_vma_unlink frees only through a
    vma. The 2006 kernel had no leak detector; a leak showed as a growing anon_vma line in
    /proc/slabinfo. Read from raw fields: the cache's objects and each vma's ``anon_vma``.
    """
    reachable = {id(vma.anon_vma) for mm in live_mms(world) for vma in mm.mmap
                 if vma.anon_vma is not None}
    for av_id, av in sorted(world.anon_vma_cachep.items()):
        if av.freed or id(av) not in reachable:
            _fail("object-leak",
                  f"anon_vma {av_id} is live in anon_vma_cachep but no vma points to it"
                  + (" (and it was freed without anon_vma_free)" if av.freed else ""),
                  anon_vma=av_id, allocated_by=list(av._allocated), listed=len(av.head))


def _check_vm_area_cachep(world: World) -> None:
    """Every live vma is on the list of a live mm (ours, like the anon_vma check): a vma
    that left every list without kmem_cache_free is never freed."""
    live = {id(mm) for mm in live_mms(world)}
    for vma in world.vm_area_cachep.values():
        mm = vma.vm_mm
        if id(mm) not in live or all(v is not vma for v in mm.mmap):
            _fail("object-leak",
                  f"{vma!r} is live in vm_area_cachep but on no live mm's vma list",
                  vma=repr(vma), mm=mm.name, allocated_by=list(vma._allocated))


def _check_mm_cachep(world: World) -> None:
    """Every live mm is the mm of a live process and holds exactly one ``mm_users`` per live
    thread of it (ours, like the object checks above; the kernel of the time had none). A
    reference that was taken and never dropped (a missing mmput) keeps an mm, its vmas and
    pages forever after its last thread exits; a reference dropped twice tears it down under
    a thread still running on it."""
    owners = {id(p.mm): p for p in world.processes.values() if getattr(p, "mm", None)}
    for mm in world.mm_cachep.values():
        p = owners.get(id(mm))
        # A Process that is not a UserProcess (fork's, before the syscall wraps it) is one task.
        threads = len(getattr(p, "threads", (None,))) if p is not None else 0
        if p is None or mm.mm_users != threads:
            kind = "object-leak" if mm.mm_users > threads else "refcount-underflow"
            _fail(kind, f"{mm.name}: mm_users {mm.mm_users}, but "
                  + (f"process {p.pid} has {threads} live threads" if p is not None
                     else "no live process has it (never torn down)"),
                  mm=mm.name, mm_users=mm.mm_users, threads=threads)


def _pagevec_refs(world: World) -> Counter[int]:
    """How many references every CPU's LRU pagevecs hold on each pfn."""
    return Counter(page.pfn for pvecs in (world.lru_add_pvecs, world.lru_add_active_pvecs)
                   for pvec in pvecs.values() for page in pvec)


def check_quiescent(world: World) -> None:
    """Raise a :class:`KernelFinding` for the first violated invariant, if any."""
    present: dict[int, list[tuple[str, int, bool]]] = defaultdict(list)
    migration: dict[int, int] = defaultdict(int)
    swap_users: dict[int, int] = defaultdict(int)
    check_mmlist(world)
    for mm in live_mms(world):
        anon = file = 0
        for table in mm.pgtables.values():
            for i, pte in enumerate(table.ptes):
                addr = table.base + i
                if type(pte) is PresentPte:
                    present[pte.pfn].append((mm.name, addr, pte.write))
                    if world.mem_map[pte.pfn].flags & PG_reserved:
                        file += 1
                    else:
                        anon += 1
                    if mm.find_vma(addr) is None:
                        _fail("page-leak", f"{mm.name}: present pte at {addr} outside any vma",
                              mm=mm.name, addr=addr)
                elif type(pte) is SwapPte:
                    if pte.type == SWP_TYPE_MIGRATION:
                        migration[pte.offset] += 1
                    else:
                        swap_users[pte.offset] += 1
        if (mm.anon_rss, mm.file_rss) != (anon, file):
            _fail("rss-mismatch",
                  f"{mm.name}: anon_rss {mm.anon_rss} file_rss {mm.file_rss}, but {anon} anon "
                  f"and {file} zero-page ptes are present",
                  mm=mm.name, anon_rss=mm.anon_rss, file_rss=mm.file_rss, anon=anon, file=file)
        for vma in mm.mmap:
            av = vma.anon_vma
            if av is not None and (av.freed or vma not in av.head):
                _fail("use-after-free", f"{vma!r} points to {av!r}, which does not list it",
                      vma=repr(vma), anon_vma=repr(av))

    _check_anon_vma_cachep(world)
    _check_vm_area_cachep(world)
    _check_mm_cachep(world)
    # A pagevec's reference is explained (a CPU's pagevec keeps pages as long as nothing
    # drains it); such a page is off the LRU until __pagevec_lru_add.
    in_pvec = _pagevec_refs(world)

    for pfn, n in migration.items():
        _fail("migration-entry-leak",
              f"{n} migration entries for pfn {pfn} left after every task finished",
              pfn=pfn, entries=n)

    for page in world.mem_map:
        if page.flags & PG_reserved:
            maps = len(present.get(page.pfn, ()))
            if _mapcount(page) != maps:
                _fail("mapcount-mismatch", f"ZERO_PAGE mapcount {_mapcount(page)}, {maps} ptes",
                      pfn=page.pfn, mapcount=_mapcount(page), ptes=maps)
            # Each pte of the ZERO_PAGE holds a reference (page_cache_get in do_anonymous_page)
            # on top of the one it is born with: a leaked or missing one shows only here.
            if _count(page) != ZERO_PAGE_BIAS + maps:
                kind = "page-leak" if _count(page) > ZERO_PAGE_BIAS + maps else (
                    "refcount-underflow")
                _fail(kind, f"ZERO_PAGE count {_count(page) - ZERO_PAGE_BIAS} above its own "
                      f"reference, but {maps} ptes map it", pfn=page.pfn,
                      count=_count(page), expected=ZERO_PAGE_BIAS + maps)
            continue
        maps = len(present.get(page.pfn, ()))
        if _count(page) == 0:
            zone = world.zones[page.nid]
            if page.lru is not zone.free_list or maps or in_pvec[page.pfn]:
                _fail("use-after-free", f"free page pfn {page.pfn} still mapped or listed",
                      pfn=page.pfn, ptes=maps, pagevecs=in_pvec[page.pfn])
            continue
        if _mapcount(page) != maps:
            _fail("mapcount-mismatch",
                  f"pfn {page.pfn}: mapcount {_mapcount(page)} but {maps} present ptes map it",
                  pfn=page.pfn, mapcount=_mapcount(page), ptes=maps)
        if page.locked.is_set or page.writeback.is_set:
            _fail("lock-misuse", f"pfn {page.pfn} still locked/under writeback at quiescence",
                  pfn=page.pfn)
        expected = maps + (1 if _swapcache(page) else 0) + in_pvec[page.pfn]
        if _count(page) != expected:
            kind = "page-leak" if _count(page) > expected else "refcount-underflow"
            _fail(kind,
                  f"pfn {page.pfn}: count {_count(page)}, but only {expected} references are "
                  f"explained ({maps} ptes, swapcache {int(_swapcache(page))}, pagevecs "
                  f"{in_pvec[page.pfn]})",
                  pfn=page.pfn, count=_count(page), expected=expected)
        if in_pvec[page.pfn]:
            if page.flags & PG_lru:
                _fail("bad-page-state", f"pfn {page.pfn} on the LRU and in a pagevec",
                      pfn=page.pfn)
        elif not page.flags & PG_lru:
            _fail("page-leak", f"pfn {page.pfn} in use but on no LRU list (lost isolation)",
                  pfn=page.pfn)
        if maps > 1 and any(w for _, _, w in present[page.pfn]):
            _fail("cow-violation",
                  f"pfn {page.pfn} mapped by {maps} ptes, writable in at least one",
                  pfn=page.pfn, ptes=present[page.pfn])
        if maps and isinstance(page.mapping, AnonVma) and page.mapping.freed:
            _fail("use-after-free", f"pfn {page.pfn} is mapped but its anon_vma was freed",
                  pfn=page.pfn)

    _check_kmaps(world)

    cached = world.swapper_space.page_tree
    for off in range(1, len(world.swap_map)):
        want = swap_users.get(off, 0) + (1 if off in cached else 0)
        if world.swap_map[off] != want:
            _fail("page-leak",
                  f"swap slot {off}: count {world.swap_map[off]}, {want} users",
                  slot=off, count=world.swap_map[off], users=want)


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
    return {"pfn": page.pfn, "nid": page.nid, "count": _count(page),
            "mapcount": _mapcount(page), "ptes": len(mappers),
            "swapcache": _swapcache(page), "locked": page.locked.is_set,
            "writeback": page.writeback.is_set, "on_lru": bool(page.flags & PG_lru)}


def _movable(world: World, page: Page, mappers: list[tuple[MmStruct, int, bool]]) -> bool:
    """Nothing but its ptes, the swap cache and pagevecs holds it (migrate_prep drains every
    CPU's pagevecs onto the LRU), and no mapper has it VM_LOCKED."""
    in_pvec = _pagevec_refs(world)[page.pfn]
    return (not page.flags & PG_reserved and bool(page.flags & PG_lru or in_pvec)
            and _count(page) == len(mappers) + int(_swapcache(page)) + in_pvec
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
    return (_movable(world, page, mappers) and (_anon(page) or _swapcache(page))
            and not page.writeback.is_set)


async def _reclaim_progress(world: World) -> None:
    if not world.config.config_swap:
        return
    await lru_add_drain_all()  # what migration or the swap cycle's faults just added
    for nid, zone in enumerate(world.zones):
        mappers = _mappers(world)
        cands = [pg for pg in zone.inactive_list + zone.active_list
                 if _reclaimable(world, pg, mappers.get(pg.pfn, []))]
        cached = [pg for pg in cands if _swapcache(pg)]
        slots = sum(1 for off in range(1, len(world.swap_map))
                    if world.swap_map[off] == 0 and off not in world.swapper_space.page_tree)
        # An anon page that cannot go (mlocked, held) still gets a slot before try_to_unmap
        # refuses it: those slots are not there for the others.
        grabbers = sum(1 for pg in zone.inactive_list + zone.active_list
                       if pg not in cands and _anon(pg) and not _swapcache(pg))
        need = len(cached) + min(max(0, slots - grabbers), len(cands) - len(cached))
        lru = len(zone.inactive_list) + len(zone.active_list)
        # A page leaves memory in three calls (young bits, unmap + write, free); a page that
        # cannot go is rotated, so four calls per LRU page are enough to reach every one.
        for _ in range(4 * lru + 4):
            if sum(1 for pg in cands if _count(pg) == 0) >= need and not any(
                    _count(pg) for pg in cached):
                break
            await syscalls.kswapd_reclaim(nid)
        freed = [pg for pg in cands if _count(pg) == 0]
        stuck = [pg for pg in cached if _count(pg) != 0]
        if len(freed) < need or stuck:
            left = stuck or [pg for pg in cands if _count(pg) != 0]
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

    The oracle itself takes the extra reference (a raw ``_count`` increment: a driver's pin),
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
