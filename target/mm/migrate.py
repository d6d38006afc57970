"""Page migration as Swapless V2 patch 5/5 left it: mm/migrate.c on 2.6.17-rc1-mm2.

The seed patch (../shared/seed) is the source; reference A.10-A.15 (V2 blocks) give every
function in order. In short, for an anonymous page not in the swap cache:

    migrate_pages                         (page isolated: count = mapcount + 1)
      TestSetPageLocked(page) / lock_page(page) from pass 3
      lock_page(newpage)
      migrate_page
        migrate_page_remove_references(nr_refs = page_mapping(page) ? 2 : 1)
          mapcount + nr_refs != count -> -EAGAIN          (a pin, a waiter's reference)
          try_to_unmap(page, 1)       ptes -> migration entries, count/mapcount/anon_rss down
          count != nr_refs -> -EAGAIN                     (a reference taken meanwhile)
          newpage->index/mapping = page's
        on failure: remove_migration_ptes(page, page)     (put the old page back)
        migrate_page_copy(newpage, page)                  (old page's mapping := NULL)
        remove_migration_ptes(page, newpage)              (entries -> ptes of the new page)
      unlock_page(newpage); unlock_page(page)             (wakes migration_entry_wait)

A fault that meets a migration entry sleeps in ``migration_entry_wait`` on the *old* page's
PG_locked, holding a reference so that the page cannot be freed under it: that reference is
exactly what makes the migrator's refcount check fail and retry (reference A.19).
"""

from __future__ import annotations

from target.kernel import (
    BUG,
    BUG_ON,
    READ,
    cond_resched,
    current,
    kasan_check,
    preempt,
    trace,
)

from .filemap import (
    PageWriteback,
    TestSetPageLocked,
    lock_page,
    unlock_page,
    wait_on_page_locked,
    wait_on_page_writeback,
)
from .locking import PTL
from .mm_inline import del_page_from_lru_list
from .page_alloc import alloc_pages_node
from .pgtable import pte_offset_map, pte_peek, pte_read, pte_unmap, set_pte_at, walk_pte_table
from .rmap import (
    SWAP_FAIL,
    PageSwapCache,
    page_add_anon_rmap,
    page_address_in_vma,
    page_mapping,
    try_to_unmap,
)
from .swap import (
    __put_page,
    get_page,
    get_page_locked,
    lru_add_drain_all,
    lru_cache_add,
    put_page,
)
from .swapops import is_migration_entry, migration_entry_to_page
from .types import (
    AnonVma,
    MmStruct,
    Page,
    PageTablePage,
    PG_active,
    PG_dirty,
    PG_lru,
    PG_private,
    PG_referenced,
    PG_swapcache,
    PG_uptodate,
    PresentPte,
    SwapPte,
    VmArea,
)
from .world import W

EAGAIN = -11
EPERM = -1
ENOMEM = -12
EBUSY = -16

MIGRATE_CHUNK_SIZE = 256


# -- isolation and put-back ------------------------------------------------------------------------


def assert_page_pinned_by_ptl(page: Page) -> None:
    """The ``Context:`` of isolate_lru_page, checked like ``lockdep_assert_held``: the caller
    holds the ptl of a present pte that maps ``page``, so the page cannot be freed while it is
    isolated ("mm: migration page refcounting fix", 2006-01). Without it the race needs one
    exact scheduling point to show; the precondition shows on every call."""
    task = current()
    for held in task.held:
        table = getattr(held.lock, "obj", None)
        if held.lock.lock_class is PTL and isinstance(table, PageTablePage):
            if any(type(p) is PresentPte and p.pfn == page.pfn for p in table.ptes):
                return
    BUG("lock-not-held",
        f"isolate_lru_page of pfn {page.pfn} without the ptl of a pte mapping it: the page "
        "may be freed meanwhile", pfn=page.pfn, held=[h.describe() for h in task.held],
        classes=[PTL.name])


async def isolate_lru_page(page: Page, pagelist: list[Page], *, ref_held: bool = False) -> int:
    """``isolate_lru_page``: take ``page`` off the LRU onto ``pagelist`` with a reference.

    Context: takes zone->lru_lock. The first PageLRU test is an unlocked peek. Callers must
    make sure the page cannot be freed meanwhile: check_pte_range calls this under the ptl
    of a pte mapping the page (the 2006-01 "migration page refcounting fix"); 2.6.18's
    do_move_pages holds a reference of its own from ``follow_page(FOLL_GET)`` instead
    (``ref_held``: then the count must exceed what the ptes explain).
    """
    if not ref_held:
        assert_page_pinned_by_ptl(page)
    elif page.count <= page.mapcount:
        BUG("lock-not-held",
            f"isolate_lru_page of pfn {page.pfn}: the caller claims a reference but count "
            f"{page.count} <= mapcount {page.mapcount}", pfn=page.pfn)
    ret = EBUSY
    await preempt(page, READ, "flags")
    if page.flags & PG_lru:
        zone = W().zones[page.nid]
        await zone.lru_lock.lock()
        if page.flags & PG_lru:
            ret = 0
            get_page_locked(page)
            page.flags &= ~PG_lru
            del_page_from_lru_list(zone, page)
            page.lru = pagelist
            pagelist.append(page)
        await zone.lru_lock.unlock()
    return ret


async def migrate_prep() -> int:
    """``migrate_prep`` (V2 4/5 removed 2.6.17's ``nr_swap_pages <= 0`` -ENODEV test):
    "Clear the LRU lists so pages can be isolated. Note that pages may be moved off the LRU
    after we have drained them. Those pages will fail to migrate like other pages that may
    be busy." Context: may sleep; no locks held (callers run it before or just after
    taking mmap_sem for read)."""
    await lru_add_drain_all()
    return 0


async def move_to_lru(page: Page) -> None:
    """``move_to_lru``: back on the LRU (active if it was), then drop the caller's reference.

    For an old page after a successful migration that reference is the last one, and the page
    is freed here (after the pagevec drain in the kernel).
    """
    if page.lru is not None:
        page.lru.remove(page)
        page.lru = None
    if page.flags & PG_active:
        page.flags &= ~PG_active
        await lru_cache_add(page, active=True)
    else:
        await lru_cache_add(page)
    await put_page(page)


async def putback_lru_pages(pagelist: list[Page]) -> int:
    """``putback_lru_pages``: move_to_lru every page on the list; returns how many."""
    count = 0
    for page in list(pagelist):
        await move_to_lru(page)
        count += 1
    return count


# -- migration entries -----------------------------------------------------------------------------


async def remove_migration_pte(vma: VmArea, addr: int, old: Page, new: Page) -> None:
    """``remove_migration_pte`` as posted in V2 5/5 (reference A.15, V2 block): restore a
    migration entry for ``old`` in ``vma`` as a pte mapping ``new``.

    Context: anon_vma->lock held by remove_migration_ptes; takes and releases the ptl. Both
    slips of the posting are kept (real flaws of the 2006 code, fixed by target.fixes):

    * ``addr`` is ``page_address_in_vma(new, vma)`` and may be ``-EFAULT`` (a vma of the
      anon_vma that does not cover the page: the other half of a split, an mremap source);
      V2 walks the page tables there anyway (``wild-access``).
    * ``pte_unmap_unlock(pte, ptl)`` passes the pte *value*: with CONFIG_HIGHPTE the kmap
      of the pte page is never undone (``kmap-misuse`` at the CPU's next kmap_atomic).

    The first ``is_swap_pte`` test is an unlocked peek, repeated under the ptl (kept until
    2011: "mm: fix race between mremap and removing migration entry"). rss: V2 increments
    anon_rss here, balancing try_to_unmap_one.
    """
    kasan_check(vma, "remove_migration_pte")
    mm = vma.vm_mm
    kasan_check(mm, "remove_migration_pte")
    table = walk_pte_table(mm, addr, "remove_migration_pte")
    if table is None:
        return
    ptep = pte_offset_map(table, addr)
    if type(await pte_peek(table, addr)) is not SwapPte:
        pte_unmap(ptep)
        return
    ptl = table.ptl
    await ptl.lock()
    pte = pte_read(table, addr)
    if type(pte) is SwapPte and is_migration_entry(pte) and migration_entry_to_page(pte) is old:
        mm.anon_rss += 1
        trace("rss", mm=mm.name, anon_rss=mm.anon_rss)  # the timeline's I5 rows
        await get_page(new)
        await set_pte_at(mm, addr, table, PresentPte(new.pfn, vma.vm_page_prot_write, False,
                                                     False))  # pte_mkold(mk_pte(new, prot))
        await page_add_anon_rmap(new, vma, addr)
    pte_unmap(pte)  # pte_unmap_unlock(pte, ptl): the value, not ptep (V2's slip)
    await ptl.unlock()


async def remove_migration_ptes(old: Page, new: Page) -> None:
    """``remove_migration_ptes``: replace every migration entry for ``old`` by ``new``.

    Context: both pages locked. "Must hold mmap_sem lock on at least one of the vmas
    containing the page so that the anon_vma cannot vanish" — the anon_vma comes from
    ``new->mapping`` without page_lock_anon_vma; takes and releases anon_vma->lock. Walks
    ``anon_vma->head`` in list order: a pte moved from one vma to another without this lock
    (fork, mremap) is found only if the destination comes after the source (I11).
    """
    anon_vma = new.mapping
    if not isinstance(anon_vma, AnonVma):  # !mapping || !(mapping & PAGE_MAPPING_ANON)
        return
    await anon_vma.lock.lock()
    for vma in list(anon_vma.head):
        await remove_migration_pte(vma, page_address_in_vma(new, vma), old, new)
    await anon_vma.lock.unlock()


async def migration_entry_wait(mm: MmStruct, table: PageTablePage, address: int) -> None:
    """``migration_entry_wait`` in the page-table-lock form the V2 review settled on.

    Context: mmap_sem read; takes the ptl, takes a reference on the old page *under* it (the
    entry exists, so the migrator still holds its isolation reference: the page cannot be
    free), drops the ptl, sleeps on PG_locked, drops the reference. The fault is retried.

        migrator                           faulting task
        lock_page(old)
        try_to_unmap: pte := M(old)
                                           spin_lock(ptl); sees M(old); get_page(old)
                                           spin_unlock(ptl)
        count != nr_refs -> -EAGAIN        wait_on_page_locked(old)   ... sleeps
        remove_migration_ptes(old, old)
        unlock_page(old)               ->  wakes; put_page(old); retries the fault
    """
    await table.ptl.lock()
    pte = pte_read(table, address)
    if type(pte) is not SwapPte or not is_migration_entry(pte):
        await table.ptl.unlock()
        return
    page = migration_entry_to_page(pte)
    get_page_locked(page)
    await table.ptl.unlock()
    await wait_on_page_locked(page)
    await put_page(page)


# -- moving one page -----------------------------------------------------------------------------


async def migrate_page_remove_references(newpage: Page, page: Page, nr_refs: int) -> int:
    """``migrate_page_remove_references`` after V2 5/5 (reference A.12, V2 block).

    Context: page and newpage locked. Replaces every pte of ``page`` by a migration entry (or
    a swap entry if it is in the swap cache), then checks that only ``nr_refs`` references
    remain; for a swap cache page, switches the radix tree slot to ``newpage`` under tree_lock.
    """
    BUG_ON(not page.locked.is_set, "bug", "migrate_page_remove_references: page not locked")
    BUG_ON(not newpage.locked.is_set, "bug", "migrate_page_remove_references: new unlocked")
    mapping = page_mapping(page)
    await preempt(page, READ, "count")
    # "indicates that the page is in use or truncate has removed the page"
    if page.mapping is None or page.mapcount + nr_refs != page.count:
        return EAGAIN
    if await try_to_unmap(page, True) == SWAP_FAIL:
        return EPERM  # "A vma has VM_LOCKED set -> permanent failure"
    await preempt(page, READ, "mapcount")
    if page.mapcount:
        return EAGAIN  # "Retry if we were unable to remove all mappings."
    if mapping is None:
        # "Anonymous page without swap mapping. User space cannot access the page anymore
        # since we removed the ptes. Now check if the kernel still has pending references."
        if page.count != nr_refs:
            return EAGAIN
        newpage.index = page.index
        newpage.mapping = page.mapping  # "We are holding the only remaining reference"
        return 0
    space = W().swapper_space
    await space.tree_lock.lock()
    slot = space.page_tree.get(page.private)
    if page_mapping(page) is None or page.count != nr_refs or slot is not page:
        await space.tree_lock.unlock()
        return EAGAIN
    get_page_locked(newpage)  # the radix tree's reference
    newpage.index = page.index
    newpage.mapping = page.mapping
    if W().config.config_swap and PageSwapCache(page):
        newpage.flags |= PG_swapcache
        newpage.private = page.private
    space.page_tree[page.private] = newpage
    __put_page(page)
    await space.tree_lock.unlock()
    return 0


def migrate_page_copy(newpage: Page, page: Page) -> None:
    """``migrate_page_copy``: data and flags to ``newpage``; ``page`` becomes anonymous nothing.

    Context: both pages locked, ``page`` unmapped. Clears ``page->mapping``: from here
    ``PageAnon(old)`` is false, and the new page carries the anon_vma.
    """
    newpage.data = page.data  # copy_highpage
    for flag in (PG_referenced, PG_uptodate, PG_active):
        if page.flags & flag:
            newpage.flags |= flag
    if page.flags & PG_dirty:
        page.flags &= ~PG_dirty  # clear_page_dirty_for_io
        newpage.flags |= PG_dirty  # set_page_dirty
    if W().config.config_swap:
        page.flags &= ~PG_swapcache
    page.flags &= ~(PG_active | PG_private)
    page.private = 0
    page.mapping = None


async def migrate_page(newpage: Page, page: Page) -> int:
    """``migrate_page`` after V2 5/5: the common migration function for anon and swap cache.

    Context: page and newpage locked (src and dst locked; src unmapped on success). On
    failure the old page is put back into every migration entry already installed: the
    early-exit paths of try_to_unmap_anon may have converted some ptes.
    """
    BUG_ON(PageWriteback(page), "bug", "migrate_page: writeback must be complete")
    rc = await migrate_page_remove_references(
        newpage, page, 2 if page_mapping(page) is not None else 1
    )
    if rc:
        await remove_migration_ptes(page, page)
        return rc
    migrate_page_copy(newpage, page)
    await remove_migration_ptes(page, newpage)
    return 0


async def migrate_pages(
    from_: list[Page], to: list[Page], moved: list[Page], failed: list[Page]
) -> int:
    """``migrate_pages`` (V2, reference A.11): up to 11 passes over ``from_``.

    Context: the caller holds mmap_sem (read for sys_migrate_pages). Passes 0-2 only trylock
    the page and skip pages under writeback; from pass 3 it sleeps for both. Pages that make
    it go to ``moved`` (with count 1), permanent failures to ``failed``; -EAGAIN pages stay.
    Returns the number of pages not migrated.
    """
    nr_failed = 0
    pass_ = 0
    while True:
        retry = 0
        for page in list(from_):
            newpage: Page | None = None
            await cond_resched()
            rc = 0
            await preempt(page, READ, "count")
            if page.count == 1:
                pass  # page was freed from under us: only our isolation reference is left
            else:
                if to == []:
                    break
                rc = EAGAIN
                locked = False
                if pass_ > 2:
                    await lock_page(page)
                    locked = True
                elif not await TestSetPageLocked(page):
                    locked = True
                if locked:
                    writeback_ok = True
                    if pass_ > 0:
                        await wait_on_page_writeback(page)
                    elif PageWriteback(page):
                        writeback_ok = False
                    if writeback_ok:
                        newpage = to[0]
                        await lock_page(newpage, 1)  # never contended: private to us
                        # Both branches call migrate_page: swapper_space's a_ops->migratepage
                        # is migrate_page, and the model has no other mapping.
                        rc = await migrate_page(newpage, page)
                        await unlock_page(newpage)
                    await unlock_page(page)
            if rc == EAGAIN:
                retry += 1
            elif rc:
                from_.remove(page)
                failed.append(page)
                page.lru = failed
                nr_failed += 1
            else:
                if newpage is not None:
                    to.remove(newpage)
                    newpage.lru = None
                    await move_to_lru(newpage)
                from_.remove(page)
                moved.append(page)
                page.lru = moved
        if retry and pass_ < 10:
            pass_ += 1
            continue
        break
    return nr_failed + retry


async def migrate_pages_to(pagelist: list[Page], dest: int) -> int:
    """``migrate_pages_to`` (2.6.17): allocate new pages on ``dest`` and migrate in chunks.

    Returns the number of pages left on ``pagelist`` or a negative errno; the caller puts
    back whatever is left.
    """
    newlist: list[Page] = []
    moved: list[Page] = []
    failed: list[Page] = []
    err = 0
    while True:
        nr_pages = 0
        oom = False
        for _ in list(pagelist):
            page = await alloc_pages_node(dest)
            if page is None:
                err = ENOMEM
                oom = True
                break
            page.lru = newlist
            newlist.append(page)
            nr_pages += 1
            if nr_pages > MIGRATE_CHUNK_SIZE:
                break
        if oom:
            break
        err = await migrate_pages(pagelist, newlist, moved, failed)
        await putback_lru_pages(moved)
        moved.clear()
        if err >= 0 and not newlist and pagelist:
            continue
        break
    for page in list(newlist):  # return leftover allocated pages: __free_page
        newlist.remove(page)
        page.lru = None
        await put_page(page)
    for page in failed:
        page.lru = pagelist
    pagelist.extend(failed)
    if err < 0:
        return err
    return len(pagelist)

