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

from target.kernel import KernelFinding
from target.mm.swapops import SWP_TYPE_MIGRATION
from target.mm.types import (
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


def raw_count(page: Page) -> int:
    return page._count


def raw_mapcount(page: Page) -> int:
    return page._mapcount + 1


def raw_swapcache(page: Page) -> bool:
    return bool(page.flags & PG_swapcache)


def raw_anon(page: Page) -> bool:
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


def pagevec_refs(world: World) -> Counter[int]:
    """How many references every CPU's LRU pagevecs hold on each pfn."""
    return Counter(page.pfn for pvecs in (world.lru_add_pvecs, world.lru_add_active_pvecs)
                   for pvec in pvecs.values() for page in pvec)


_Present = dict[int, list[tuple[str, int, bool]]]  # pfn -> (mm, addr, writable) of each pte


def check_quiescent(world: World) -> None:
    """Raise a :class:`KernelFinding` for the first violated invariant, if any (the checks
    run in this order, so a run's first finding is always the same one)."""
    check_mmlist(world)
    present, migration, swap_users = _census(world)
    _check_anon_vma_cachep(world)
    _check_vm_area_cachep(world)
    _check_mm_cachep(world)
    # A pagevec's reference is explained (a CPU's pagevec keeps pages as long as nothing
    # drains it); such a page is off the LRU until __pagevec_lru_add.
    in_pvec = pagevec_refs(world)

    for pfn, n in migration.items():
        _fail("migration-entry-leak",
              f"{n} migration entries for pfn {pfn} left after every task finished",
              pfn=pfn, entries=n)

    for page in world.mem_map:
        maps = len(present.get(page.pfn, ()))
        if page.flags & PG_reserved:
            _check_zero_page(page, maps)
        elif raw_count(page) == 0:
            zone = world.zones[page.nid]
            if page.lru is not zone.free_list or maps or in_pvec[page.pfn]:
                _fail("use-after-free", f"free page pfn {page.pfn} still mapped or listed",
                      pfn=page.pfn, ptes=maps, pagevecs=in_pvec[page.pfn])
        else:
            _check_page_in_use(page, present, in_pvec[page.pfn])

    _check_kmaps(world)
    _check_swap_map(world, swap_users)


def _census(world: World) -> tuple[_Present, dict[int, int], dict[int, int]]:
    """Every live mm's page tables recounted: the present ptes of each pfn, the migration
    entries of each pfn and the swap ptes of each slot; on the way, I5 (rss) per mm, no
    present pte outside a vma, and every vma on the anon_vma it points to (I6/I11)."""
    present: _Present = defaultdict(list)
    migration: dict[int, int] = defaultdict(int)
    swap_users: dict[int, int] = defaultdict(int)
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
    return present, migration, swap_users


def _check_zero_page(page: Page, maps: int) -> None:
    """The ZERO_PAGE: its mapcount is its ptes, its count its own bias plus one per pte."""
    if raw_mapcount(page) != maps:
        _fail("mapcount-mismatch", f"ZERO_PAGE mapcount {raw_mapcount(page)}, {maps} ptes",
              pfn=page.pfn, mapcount=raw_mapcount(page), ptes=maps)
    # Each pte of the ZERO_PAGE holds a reference (page_cache_get in do_anonymous_page)
    # on top of the one it is born with: a leaked or missing one shows only here.
    if raw_count(page) != ZERO_PAGE_BIAS + maps:
        kind = "page-leak" if raw_count(page) > ZERO_PAGE_BIAS + maps else (
            "refcount-underflow")
        _fail(kind, f"ZERO_PAGE count {raw_count(page) - ZERO_PAGE_BIAS} above its own "
              f"reference, but {maps} ptes map it", pfn=page.pfn,
              count=raw_count(page), expected=ZERO_PAGE_BIAS + maps)


def _check_page_in_use(page: Page, present: _Present, in_pvec: int) -> None:
    """I3/I4/I7 for a page in use: mapcount = its present ptes, count = ptes + swap cache +
    pagevecs, unlocked, on exactly one of an LRU list and a pagevec, read-only if shared,
    and its anon_vma alive while it is mapped."""
    maps = len(present.get(page.pfn, ()))
    if raw_mapcount(page) != maps:
        _fail("mapcount-mismatch",
              f"pfn {page.pfn}: mapcount {raw_mapcount(page)} but {maps} present ptes map it",
              pfn=page.pfn, mapcount=raw_mapcount(page), ptes=maps)
    if page.locked.is_set or page.writeback.is_set:
        _fail("lock-misuse", f"pfn {page.pfn} still locked/under writeback at quiescence",
              pfn=page.pfn)
    expected = maps + (1 if raw_swapcache(page) else 0) + in_pvec
    if raw_count(page) != expected:
        kind = "page-leak" if raw_count(page) > expected else "refcount-underflow"
        _fail(kind,
              f"pfn {page.pfn}: count {raw_count(page)}, but only {expected} references are "
              f"explained ({maps} ptes, swapcache {int(raw_swapcache(page))}, pagevecs "
              f"{in_pvec})",
              pfn=page.pfn, count=raw_count(page), expected=expected)
    if in_pvec:
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


def _check_swap_map(world: World, swap_users: dict[int, int]) -> None:
    """Each swap slot's count: its swap ptes, plus one if a page caches it."""
    cached = world.swapper_space.page_tree
    for off in range(1, len(world.swap_map)):
        want = swap_users.get(off, 0) + (1 if off in cached else 0)
        if world.swap_map[off] != want:
            _fail("page-leak",
                  f"swap slot {off}: count {world.swap_map[off]}, {want} users",
                  slot=off, count=world.swap_map[off], users=want)
