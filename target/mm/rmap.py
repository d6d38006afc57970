"""Reverse mapping for anonymous pages: mm/rmap.c (2.6.17 with Swapless V2 1/5 and 3/5).

The lock order this file's kernel counterpart documents is in target.mm.locking.

``page->mapping`` of an anonymous page points at its anon_vma and is *not* cleared when the
mapcount drops to 0 (page_remove_rmap leaves it; free and migrate_page_copy reset it): that
stale pointer is why page_lock_anon_vma must check ``page_mapped`` and why migration must keep
the anon_vma alive by holding mmap_sem (reference A.9).
"""

from __future__ import annotations

from target.kernel import (
    BUG,
    BUG_ON,
    READ,
    WRITE,
    kasan_check,
    kfree,
    kreuse,
    lockdep_assert_held,
    might_sleep,
    preempt,
    rcu_read_lock,
    rcu_read_unlock,
    trace,
)

from .pgtable import (
    EFAULT,
    pte_peek,
    pte_read,
    ptep_clear_flush,
    ptep_clear_flush_young,
    set_pte_at,
)
from .swap import put_page
from .swapfile import swap_duplicate
from .swapops import make_migration_entry
from .types import (
    VM_LOCKED,
    VM_READ,
    VM_WRITE,
    AnonVma,
    Page,
    PageTablePage,
    PG_dirty,
    PG_referenced,
    PG_swapcache,
    PresentPte,
    SwapPte,
    VmArea,
    list_add,
    list_empty,
)
from .world import W, World

SWAP_SUCCESS = 0
SWAP_AGAIN = 1
SWAP_FAIL = 2


def PageAnon(page: Page) -> bool:
    """``PageAnon``: ``page->mapping & PAGE_MAPPING_ANON`` (the tag is the type here)."""
    return isinstance(page.mapping, AnonVma)


def PageSwapCache(page: Page) -> bool:
    return bool(page.flags & PG_swapcache)


def page_mapped(page: Page) -> bool:
    return page._mapcount >= 0


def page_mapping(page: Page) -> object | None:
    """``page_mapping``: NULL for anon not in swap cache, &swapper_space if it is."""
    if PageSwapCache(page):
        return W().swapper_space
    if PageAnon(page):
        return None
    return page.mapping


# -- anon_vma lifetime --------------------------------------------------------------------------


def anon_vma_alloc() -> AnonVma:
    """``anon_vma_alloc`` (include/linux/rmap.h): ``kmem_cache_alloc(anon_vma_cachep)``.

    Context: may sleep (SLAB_KERNEL: slab's ``might_sleep_if(flags & __GFP_WAIT)``); no
    spinlock held (anon_vma_prepare allocates before page_table_lock). The object is counted
    live in the world's ``anon_vma_cachep`` until :func:`anon_vma_free`.
    It may be a just-freed anon_vma handed out again (SLAB_DESTROY_BY_RCU allows it at once):
    a stale ``page->mapping`` that points at it then reads this new, live anon_vma.
    """
    might_sleep("kmem_cache_alloc(anon_vma_cachep, SLAB_KERNEL)")
    w = W()
    anon_vma = _anon_vma_cachep_reuse(w)
    if anon_vma is None:
        anon_vma = AnonVma()
    w.anon_vma_cachep[anon_vma.id] = anon_vma
    return anon_vma


def _anon_vma_cachep_reuse(w: World) -> AnonVma | None:
    """The freed anon_vma the slab hands out again, or None for fresh memory: the choice
    ``WorldConfig.anon_vma_reuse`` asks for (never; the most recently freed; seeded)."""
    free = w.anon_vma_free_objs
    policy = w.config.anon_vma_reuse
    if not free or policy == "never":
        return None
    i = len(free) - 1
    if policy == "seeded":
        i = w.slab_rng.randrange(len(free) + 1)
        if i == len(free):
            return None  # a fresh object (another slab's, or a new slab page)
    anon_vma = free.pop(i)
    kreuse(anon_vma)  # no ctor: the lock and the (empty) list are what the last user left
    anon_vma.reused += 1
    trace("slab_reuse", obj=repr(anon_vma))
    return anon_vma


def anon_vma_free(anon_vma: AnonVma) -> None:
    """``anon_vma_free`` (include/linux/rmap.h): ``kmem_cache_free(anon_vma_cachep)``.

    Context: any. KASAN poisons the object; SLAB_DESTROY_BY_RCU keeps it type-stable for
    readers that were already inside rcu_read_lock (target.kernel._kasan), and the object may
    be handed out again by the next :func:`anon_vma_alloc`.
    """
    w = W()
    w.anon_vma_cachep.pop(anon_vma.id, None)
    kfree(anon_vma)
    w.anon_vma_free_objs.append(anon_vma)


def find_mergeable_anon_vma(vma: VmArea) -> AnonVma | None:
    """``find_mergeable_anon_vma`` (mm/mmap.c; here because mmap.py imports this module): the
    anon_vma of a neighbour ``vma`` could later merge with, so that both share one.

    Context: mmap_sem held (read is enough: from faults), so the vma list is stable; a
    neighbour's ``anon_vma`` is read unlocked (another thread may be setting it: the caller
    rechecks ``vma->anon_vma`` under page_table_lock, never the neighbour's). Only mprotect
    remerges vmas, so the flags it may change (read, write) do not obstruct; the neighbour
    must be adjacent with contiguous pgoff (can_vma_merge_before/after; no file, no policy).
    """
    vmas = vma.vm_mm.mmap
    i = vmas.index(vma)  # the kernel's BUG_ON(find_vma_prev(...) != vma)
    near = vmas[i + 1] if i + 1 < len(vmas) else None
    if near is not None:
        vm_flags = (vma.vm_flags & ~(VM_READ | VM_WRITE)) | (near.vm_flags & (VM_READ | VM_WRITE))
        if (near.anon_vma is not None and vma.vm_end == near.vm_start
                and near.vm_flags == vm_flags
                and near.vm_pgoff == vma.vm_pgoff + (vma.vm_end - vma.vm_start)):
            return near.anon_vma
    prev = vmas[i - 1] if i > 0 else None
    if prev is not None:
        vm_flags = (vma.vm_flags & ~(VM_READ | VM_WRITE)) | (prev.vm_flags & (VM_READ | VM_WRITE))
        if (prev.anon_vma is not None and prev.vm_end == vma.vm_start
                and prev.vm_flags == vm_flags
                and prev.vm_pgoff + (prev.vm_end - prev.vm_start) == vma.vm_pgoff):
            return prev.anon_vma
    return None


async def anon_vma_prepare(vma: VmArea) -> None:
    """``anon_vma_prepare``: give ``vma`` an anon_vma before its first anonymous page.

    Context: mmap_sem held (read is enough: called from faults). Takes a mergeable
    neighbour's anon_vma->lock (find_mergeable_anon_vma), or allocates a new anon_vma that is
    *not* locked while it is published (B15 in the reference is about that); then
    mm->page_table_lock inside it.
    """
    kasan_check(vma, "anon_vma_prepare")
    if vma.anon_vma is not None:
        return
    anon_vma = find_mergeable_anon_vma(vma)
    allocated: AnonVma | None = None
    locked: AnonVma | None = None
    if anon_vma is not None:
        locked = anon_vma
        await locked.lock.lock()
    else:
        anon_vma = allocated = anon_vma_alloc()
    mm = vma.vm_mm
    await mm.page_table_lock.lock()
    # Another thread of the mm may have set it meanwhile: the race this recheck is for
    # (mypy narrows vma.anon_vma across the awaits, hence the ignore below).
    if vma.anon_vma is None:
        vma.anon_vma = anon_vma
        anon_vma.head.append(vma)
        allocated = None
    await mm.page_table_lock.unlock()
    if locked is not None:
        await locked.lock.unlock()
    if allocated is not None:
        anon_vma_free(allocated)  # type: ignore[unreachable]  # lost the race with a thread


async def anon_vma_link(vma: VmArea) -> None:
    """``anon_vma_link`` (fork): add the child's vma at the *tail* of the list (I11).

    Context: takes and releases anon_vma->lock. The tail position is what lets
    remove_migration_ptes, walking parent before child, restore a migration entry that fork
    copied while migration was in flight (reference A.7).
    """
    anon_vma = vma.anon_vma
    if anon_vma is not None:
        await anon_vma.lock.lock()
        anon_vma.head.append(vma)
        await anon_vma.lock.unlock()


def anon_vma_list_del(anon_vma: AnonVma, vma: VmArea) -> None:
    """``list_del(&vma->anon_vma_node)`` with CONFIG_DEBUG_LIST's check: deleting a vma that
    is not on the list corrupts it (the kernel's list_del would follow stale pointers)."""
    if vma not in anon_vma.head:
        BUG("bug", f"list_del corruption: {vma!r} is not on {anon_vma!r}'s list",
            vma=repr(vma), anon_vma=repr(anon_vma))
    anon_vma.head.remove(vma)


def __anon_vma_link(vma: VmArea) -> None:
    """``__anon_vma_link`` (vma_link, vma_adjust's insert): ``list_add_tail``.

    Context: the caller holds anon_vma->lock. A vma split off another, or created by
    mremap's copy_vma, goes to the tail: after its source in rmap walk order.
    """
    anon_vma = vma.anon_vma
    if anon_vma is not None:
        lockdep_assert_held(anon_vma.lock)
        anon_vma.head.append(vma)


def __anon_vma_merge(vma: VmArea, next_: VmArea) -> None:
    """``__anon_vma_merge``: ``next`` was merged into ``vma``; drop it from the list.

    Context: vma_adjust holds anon_vma->lock.
    """
    anon_vma = next_.anon_vma
    if anon_vma is not None:
        lockdep_assert_held(anon_vma.lock)
        anon_vma_list_del(anon_vma, next_)


async def anon_vma_unlink(vma: VmArea) -> None:
    """``anon_vma_unlink``: remove ``vma``; free the anon_vma when its list empties.

    Context: from free_pgtables (munmap/exit). Takes and releases anon_vma->lock; the free is
    immediate (SLAB_DESTROY_BY_RCU: the memory may be reused at once).
    """
    anon_vma = vma.anon_vma
    if anon_vma is None:
        return
    await anon_vma.lock.lock()
    anon_vma_list_del(anon_vma, vma)
    empty = not anon_vma.head
    await anon_vma.lock.unlock()
    if empty:
        anon_vma_free(anon_vma)


# -- mapcount -------------------------------------------------------------------------------------


async def page_add_anon_rmap(page: Page, vma: VmArea, address: int) -> None:
    """``page_add_anon_rmap``. Context: ptl held.

    On the 0 -> 1 transition the page (re)gets mapping and index; otherwise they are not
    checked ("racy"), as in the kernel.
    """
    await preempt(page, WRITE, "mapcount")
    page._mapcount += 1
    if page._mapcount == 0:
        BUG_ON(vma.anon_vma is None, "bug", "page_add_anon_rmap: vma without anon_vma")
        page.mapping = vma.anon_vma
        page.index = linear_page_index(vma, address)
    trace("mapcount", pfn=page.pfn, mapcount=page.mapcount)


def page_add_new_anon_rmap(page: Page, vma: VmArea, address: int) -> None:
    """``page_add_new_anon_rmap``: a brand-new page nobody else can see; mapcount := 1."""
    page._mapcount = 0
    page.mapping = vma.anon_vma
    page.index = linear_page_index(vma, address)
    trace("mapcount", pfn=page.pfn, mapcount=1)


async def page_add_file_rmap(page: Page) -> None:
    """``page_add_file_rmap`` (the ZERO_PAGE is the only non-anon page the model maps)."""
    await preempt(page, WRITE, "mapcount")
    page._mapcount += 1
    trace("mapcount", pfn=page.pfn, mapcount=page.mapcount)


async def page_dup_rmap(page: Page) -> None:
    """``page_dup_rmap`` (fork): mapcount++, no mapping/index update. Context: ptls held."""
    await preempt(page, WRITE, "mapcount")
    page._mapcount += 1
    trace("mapcount", pfn=page.pfn, mapcount=page.mapcount)


async def page_remove_rmap(page: Page) -> None:
    """``page_remove_rmap``. Context: ptl held. mapping is deliberately left set."""
    await preempt(page, WRITE, "mapcount")
    page._mapcount -= 1
    trace("mapcount", pfn=page.pfn, mapcount=page.mapcount)
    if page._mapcount < 0:
        if page._mapcount < -1:
            BUG("mapcount-mismatch", f"page_remove_rmap: mapcount of pfn {page.pfn} below 0",
                pfn=page.pfn, mapcount=page.mapcount)
        # mapcount 1 -> 0: page_test_and_clear_dirty is s390-only; nothing else to do.


def linear_page_index(vma: VmArea, address: int) -> int:
    return (address - vma.vm_start) + vma.vm_pgoff


def vma_address(page: Page, vma: VmArea) -> int | None:
    """``vma_address``: where ``page`` would be mapped in ``vma``; None for -EFAULT."""
    address = vma.vm_start + (page.index - vma.vm_pgoff)
    if address < vma.vm_start or address >= vma.vm_end:
        return None
    return address


def page_address_in_vma(page: Page, vma: VmArea) -> int:
    """``page_address_in_vma``: where ``page`` is in ``vma``, or ``-EFAULT`` when ``vma`` is
    not of the page's anon_vma or does not cover the page's index (a split-off half, an
    mremap source). Callers must check: V2's remove_migration_ptes does not."""
    if PageAnon(page):
        if vma.anon_vma is not page.mapping:
            return EFAULT
    else:
        return EFAULT  # no file mappings in the model
    address = vma_address(page, vma)
    return EFAULT if address is None else address


# -- rmap walks -----------------------------------------------------------------------------------


async def page_lock_anon_vma(page: Page) -> AnonVma | None:
    """``page_lock_anon_vma``: the page's anon_vma, returned *locked*, or None.

    Context: takes rcu_read_lock around the unlocked read of page->mapping; returns with
    anon_vma->lock held. ``page_mapped`` is the only guard against a freed anon_vma: a page
    that is mapped keeps a vma, hence its anon_vma, alive (reference A.5). It is checked
    before the lock, not again under it (2.6.18): the page may be unmapped and the anon_vma
    freed, and even handed out again as another vma's, before the spin_lock succeeds. RCU
    keeps the memory an anon_vma, so the caller locks *an* anon_vma, maybe not the page's,
    and its walk then finds no pte of the page.
    """
    rcu_read_lock()
    await preempt(page, READ, "mapping")
    anon_mapping = page.mapping
    anon_vma: AnonVma | None = None
    if isinstance(anon_mapping, AnonVma) and page_mapped(page):
        anon_vma = anon_mapping
        await anon_vma.lock.lock()
    await rcu_read_unlock()
    return anon_vma


async def page_check_address(
    page: Page, vma: VmArea, address: int
) -> PageTablePage | None:
    """``page_check_address``: the table whose pte at ``address`` maps ``page``, ptl LOCKED.

    Context: takes the ptl and returns with it held on success. The first ``pte_present``
    test is an unlocked peek; the check is repeated under the lock.
    """
    mm = vma.vm_mm
    kasan_check(mm, "page_check_address")
    table = mm.pte_table(address, alloc=False)
    if table is None:
        return None
    pte = await pte_peek(table, address)
    if type(pte) is not PresentPte:
        return None
    await table.ptl.lock()
    pte = pte_read(table, address)
    if type(pte) is PresentPte and pte.pfn == page.pfn:
        return table
    await table.ptl.unlock()
    return None


async def page_referenced_one(page: Page, vma: VmArea) -> int:
    address = vma_address(page, vma)
    if address is None:
        return 0
    table = await page_check_address(page, vma, address)
    if table is None:
        return 0
    referenced = int(await ptep_clear_flush_young(vma.vm_mm, address, table))
    await table.ptl.unlock()
    return referenced


async def page_referenced(page: Page) -> int:
    """``page_referenced(page, is_locked=1)``: count and clear accessed bits via rmap.

    Context: page lock held (reclaim); takes anon_vma->lock and each ptl.
    """
    referenced = 0
    if page.flags & PG_referenced:
        page.flags &= ~PG_referenced
        referenced += 1
    if page_mapped(page) and PageAnon(page):
        anon_vma = await page_lock_anon_vma(page)
        if anon_vma is None:
            return referenced
        for vma in list(anon_vma.head):
            referenced += await page_referenced_one(page, vma)
            if not page_mapped(page):
                break
        await anon_vma.lock.unlock()
    return referenced


async def try_to_unmap_one(page: Page, vma: VmArea, migration: bool) -> int:
    """``try_to_unmap_one`` as V2 left it (reference A.5, V2 column).

    Context: anon_vma->lock held (try_to_unmap_anon), page lock held; takes and releases the
    ptl of the pte. Per converted pte: mapcount--, count--, anon_rss-- (V2), pte := swap
    entry (page in swap cache) or migration entry.
    """
    if vma.anon_vma is not None:
        lockdep_assert_held(vma.anon_vma.lock)
    kasan_check(vma, "try_to_unmap_one")
    mm = vma.vm_mm
    ret = SWAP_AGAIN
    address = vma_address(page, vma)
    if address is None:
        return ret
    table = await page_check_address(page, vma, address)
    if table is None:
        return ret
    # V2: VM_LOCKED still blocks migration, and the young bit is cleared as a side effect
    # even when migrating (2.6.18 skips both for migration).
    if (vma.vm_flags & VM_LOCKED) or (
        await ptep_clear_flush_young(mm, address, table) and not migration
    ):
        ret = SWAP_FAIL
    else:
        pteval = await ptep_clear_flush(mm, address, table)
        if type(pteval) is not PresentPte:  # page_check_address found it present under the ptl
            BUG("bug", f"try_to_unmap_one: pte at {address} of {mm.name} is {pteval!r}, not "
                f"present, under the ptl", pfn=page.pfn, mm=mm.name, addr=address)
        if pteval.dirty:
            page.flags |= PG_dirty  # set_page_dirty
        if PageAnon(page):
            if PageSwapCache(page):
                entry = SwapPte(0, page.private)
                await swap_duplicate(entry)
                if list_empty(mm.mmlist):
                    w = W()
                    await w.mmlist_lock.lock()
                    if list_empty(mm.mmlist):
                        list_add(mm.mmlist, w.mmlist)  # on init_mm.mmlist for swapoff
                    await w.mmlist_lock.unlock()
            else:
                BUG_ON(not migration, "bug",
                       f"try_to_unmap_one: anon page pfn {page.pfn} not in swap cache")
                entry = make_migration_entry(page)
            await set_pte_at(mm, address, table, entry)
            mm.anon_rss -= 1  # V2: for swap AND migration entries
            trace("rss", mm=mm.name, anon_rss=mm.anon_rss)  # the timeline's I5 rows
        else:
            mm.file_rss -= 1
        await page_remove_rmap(page)
        await put_page(page)  # page_cache_release: the pte's reference
    await table.ptl.unlock()
    return ret


async def try_to_unmap_anon(page: Page, migration: bool) -> int:
    """``try_to_unmap_anon``: walk the anon_vma list in order, stop early on SWAP_FAIL.

    Context: page lock held; takes and releases anon_vma->lock. An early stop leaves the
    migration entries already installed in earlier vmas: the caller must restore them.
    """
    ret = SWAP_AGAIN
    anon_vma = await page_lock_anon_vma(page)
    if anon_vma is None:
        return ret
    for vma in list(anon_vma.head):
        ret = await try_to_unmap_one(page, vma, migration)
        if ret == SWAP_FAIL or not page_mapped(page):
            break
    await anon_vma.lock.unlock()
    return ret


async def try_to_unmap(page: Page, migration: bool) -> int:
    """``try_to_unmap``: SWAP_SUCCESS when no pte maps the page any more.

    Context: page lock held (``BUG_ON(!PageLocked(page))``).
    """
    BUG_ON(not page.locked.is_set, "bug", f"try_to_unmap on unlocked page pfn {page.pfn}")
    ret = SWAP_AGAIN
    if PageAnon(page):
        ret = await try_to_unmap_anon(page, migration)
    if not page_mapped(page):
        ret = SWAP_SUCCESS
    return ret
