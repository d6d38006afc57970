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

from collections import defaultdict

from target.kernel import KernelFinding
from target.mm.rmap import PageAnon, PageSwapCache
from target.mm.swapops import SWP_TYPE_MIGRATION
from target.mm.types import (
    AnonVma,
    MmStruct,
    PG_lru,
    PG_reserved,
    PresentPte,
    SwapPte,
    list_empty,
    list_members,
)
from target.mm.world import World


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


def check_quiescent(world: World) -> None:
    """Raise a :class:`KernelFinding` for the first violated invariant, if any."""
    present: dict[int, list[tuple[str, int, bool]]] = defaultdict(list)
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

    for pfn, n in migration.items():
        _fail("migration-entry-leak",
              f"{n} migration entries for pfn {pfn} left after every task finished",
              pfn=pfn, entries=n)

    for page in world.mem_map:
        if page.flags & PG_reserved:
            maps = len(present.get(page.pfn, ()))
            if page.mapcount != maps:
                _fail("mapcount-mismatch", f"ZERO_PAGE mapcount {page.mapcount}, {maps} ptes",
                      pfn=page.pfn, mapcount=page.mapcount, ptes=maps)
            continue
        maps = len(present.get(page.pfn, ()))
        if page.count == 0:
            zone = world.zones[page.nid]
            if page.lru is not zone.free_list or maps:
                _fail("use-after-free", f"free page pfn {page.pfn} still mapped or listed",
                      pfn=page.pfn, ptes=maps)
            continue
        if page.mapcount != maps:
            _fail("mapcount-mismatch",
                  f"pfn {page.pfn}: mapcount {page.mapcount} but {maps} present ptes map it",
                  pfn=page.pfn, mapcount=page.mapcount, ptes=maps)
        if page.locked.is_set or page.writeback.is_set:
            _fail("lock-misuse", f"pfn {page.pfn} still locked/under writeback at quiescence",
                  pfn=page.pfn)
        expected = page.mapcount + (1 if PageSwapCache(page) else 0)
        if page.count != expected:
            kind = "page-leak" if page.count > expected else "refcount-underflow"
            _fail(kind,
                  f"pfn {page.pfn}: count {page.count}, but only {expected} references are "
                  f"explained (mapcount {page.mapcount}, swapcache {int(PageSwapCache(page))})",
                  pfn=page.pfn, count=page.count, expected=expected)
        if not page.flags & PG_lru:
            _fail("page-leak", f"pfn {page.pfn} in use but on no LRU list (lost isolation)",
                  pfn=page.pfn)
        if maps > 1 and any(w for _, _, w in present[page.pfn]):
            _fail("cow-violation",
                  f"pfn {page.pfn} mapped by {maps} ptes, writable in at least one",
                  pfn=page.pfn, ptes=present[page.pfn])
        if PageAnon(page) and maps and isinstance(page.mapping, AnonVma) and page.mapping.freed:
            _fail("use-after-free", f"pfn {page.pfn} is mapped but its anon_vma was freed",
                  pfn=page.pfn)

    _check_swapoff_reach(world)
    _check_kmaps(world)

    cached = world.swapper_space.page_tree
    for off in range(1, len(world.swap_map)):
        want = swap_users.get(off, 0) + (1 if off in cached else 0)
        if world.swap_map[off] != want:
            _fail("page-leak",
                  f"swap slot {off}: count {world.swap_map[off]}, {want} users",
                  slot=off, count=world.swap_map[off], users=want)
