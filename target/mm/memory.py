"""Faults, fork's page-table copy, zap and get_user_pages: mm/memory.c (2.6.17 + V2).

Fault entry is ``handle_mm_fault`` with mmap_sem held for read, as from the arch fault
handler. A fault on a migration entry goes to ``migration_entry_wait`` in its page-table-lock
form (the design the V2 review settled on), not V2 2/5's ``yield()`` busy-wait: see
target.mm.migrate.

Return values are the 2.6.17 ``VM_FAULT_*`` codes; ``VM_FAULT_WRITE`` is or'ed in when a write
fault broke COW, which get_user_pages uses to stop asking for a writable pte.
"""

from __future__ import annotations

from target.kernel import (
    BUG,
    BUG_ON,
    READ,
    cond_resched,
    kasan_check,
    lockdep_assert_held,
    preempt,
    trace,
)

from .filemap import TestSetPageLocked, lock_page, unlock_page
from .ghost import ghost_copy, ghost_forget
from .locking import SINGLE_DEPTH_NESTING
from .migrate import migration_entry_wait
from .page_alloc import alloc_page_vma
from .pgtable import (
    KM_PTE1,
    pte_offset_map,
    pte_peek,
    pte_read,
    pte_unmap,
    ptep_clear_flush,
    ptep_set_wrprotect,
    set_pte_at,
)
from .rmap import (
    PageAnon,
    PageSwapCache,
    anon_vma_prepare,
    page_add_anon_rmap,
    page_add_file_rmap,
    page_add_new_anon_rmap,
    page_dup_rmap,
    page_remove_rmap,
)
from .swap import get_page, lru_add_drain, lru_cache_add_active, put_page
from .swap_state import lookup_swap_cache, read_swap_cache_async
from .swapfile import (
    free_swap_and_cache,
    page_swapcount,
    remove_exclusive_swap_page,
    swap_duplicate,
    swap_free,
    valid_swaphandles,
    vm_swap_full,
)
from .swapops import is_migration_entry
from .tlb import MmuGather, tlb_remove_page
from .types import (
    PTRS_PER_PTE,
    VM_MAYWRITE,
    VM_SHARED,
    VM_WRITE,
    MmStruct,
    Page,
    PageTablePage,
    PG_dirty,
    PG_reserved,
    PG_uptodate,
    PresentPte,
    SwapPte,
    VmArea,
    list_add,
    list_empty,
)
from .world import W

VM_FAULT_OOM = 0
VM_FAULT_SIGBUS = 1
VM_FAULT_MINOR = 2
VM_FAULT_MAJOR = 3
VM_FAULT_WRITE = 0x10

FOLL_WRITE = 0x01
FOLL_TOUCH = 0x02
FOLL_GET = 0x04


def vm_normal_page(vma: VmArea, address: int, pte: PresentPte) -> Page:
    """``vm_normal_page``: the struct page a present pte maps (the ZERO_PAGE included)."""
    return W().mem_map[pte.pfn]


def maybe_mkwrite(pte: PresentPte, vma: VmArea) -> PresentPte:
    if vma.vm_flags & VM_WRITE:
        return PresentPte(pte.pfn, True, pte.dirty, pte.young)
    return pte


def mk_pte(page: Page, vma: VmArea) -> PresentPte:
    """``mk_pte(page, vma->vm_page_prot)``: writable only for shared writable mappings."""
    return PresentPte(page.pfn, vma.vm_page_prot_write, False, True)


def is_cow_mapping(flags: int) -> bool:
    return (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE


def fault_node(vma: VmArea) -> int:
    """Where the fault allocates: the node of the mm's first page table, i.e. node 0.

    The model's vmas carry no NUMA policy; faults allocate on node 0 and migration moves
    pages elsewhere, which keeps "which node is this page on" easy to read in traces.
    """
    return 0


# -- faults ---------------------------------------------------------------------------------------


async def handle_mm_fault(mm: MmStruct, vma: VmArea, address: int, write_access: bool) -> int:
    """``__handle_mm_fault``: allocate the page table, then ``handle_pte_fault``.

    Context: mmap_sem held for read.
    """
    lockdep_assert_held(mm.mmap_sem)
    kasan_check(vma, "handle_mm_fault")
    table = mm.pte_table(address)
    assert table is not None  # harness: pte_table(alloc=True) never fails in the model
    return await handle_pte_fault(mm, vma, address, table, write_access)


async def handle_pte_fault(
    mm: MmStruct, vma: VmArea, address: int, table: PageTablePage, write_access: bool
) -> int:
    """``handle_pte_fault``. Context: mmap_sem read; the first pte read is unlocked."""
    entry = await pte_peek(table, address)
    if entry is None:
        return await do_anonymous_page(mm, vma, address, table, write_access)
    if isinstance(entry, SwapPte):
        return await do_swap_page(mm, vma, address, table, write_access, entry)
    ptl = table.ptl
    await ptl.lock()
    if pte_read(table, address) != entry:
        await ptl.unlock()
        return VM_FAULT_MINOR
    if write_access:
        if not entry.write:
            return await do_wp_page(mm, vma, address, table, entry)
        # ptep_set_access_flags(..., dirty=1). i386 writes the pte only for a write fault:
        # on a read fault another CPU's MMU may be setting the dirty bit of this very pte,
        # and a plain store of the value read above would drop it. Here the pte is writable
        # and the new value has both A and D set, so no hardware update can be lost.
        entry = PresentPte(entry.pfn, entry.write, True, True)
        if entry != pte_read(table, address):
            await set_pte_at(mm, address, table, entry)
    await ptl.unlock()
    return VM_FAULT_MINOR


async def do_anonymous_page(
    mm: MmStruct, vma: VmArea, address: int, table: PageTablePage, write_access: bool
) -> int:
    """``do_anonymous_page``: a zeroed anon page for a write, the ZERO_PAGE for a read.

    Context: mmap_sem read; takes the ptl after allocating (and rechecks ``pte_none``).
    """
    w = W()
    if write_access:
        await anon_vma_prepare(vma)
        page = await alloc_page_vma(fault_node(vma))
        if page is None:
            return VM_FAULT_OOM
        entry = maybe_mkwrite(PresentPte(page.pfn, False, True, True), vma)
        await table.ptl.lock()
        if pte_read(table, address) is not None:
            await table.ptl.unlock()
            await put_page(page)
            return VM_FAULT_MINOR
        mm.anon_rss += 1
        trace("rss", mm=mm.name, anon_rss=mm.anon_rss)  # the timeline's I5 rows
        await lru_cache_add_active(page)
        page_add_new_anon_rmap(page, vma, address)
    else:
        page = w.zero_page
        assert page is not None  # harness: World.create always makes the ZERO_PAGE
        await get_page(page)  # page_cache_get(ZERO_PAGE)
        entry = PresentPte(page.pfn, False, False, True)
        await table.ptl.lock()
        if pte_read(table, address) is not None:
            await table.ptl.unlock()
            await put_page(page)
            return VM_FAULT_MINOR
        mm.file_rss += 1
        await page_add_file_rmap(page)
    await set_pte_at(mm, address, table, entry)
    await table.ptl.unlock()
    return VM_FAULT_MINOR


async def can_share_swap_page(page: Page) -> bool:
    """``can_share_swap_page`` (2.6.17): exclusive if mapcount (+ swap users) is 1.

    Context: page lock held.
    """
    BUG_ON(not page.locked.is_set, "bug", "can_share_swap_page: page not locked")
    count = page.mapcount
    if count <= 1 and PageSwapCache(page):
        count += await page_swapcount(page)
    return count == 1


async def do_wp_page(
    mm: MmStruct, vma: VmArea, address: int, table: PageTablePage, orig_pte: PresentPte
) -> int:
    """``do_wp_page``: write to a present read-only pte; reuse the page or copy it (COW).

    Context: entered with the ptl held, returns with it released. The page lock is only
    tried (TestSetPageLocked) because the ptl is held.
    """
    lockdep_assert_held(table.ptl)
    old_page = vm_normal_page(vma, address, orig_pte)
    if PageAnon(old_page) and not await TestSetPageLocked(old_page):
        reuse = await can_share_swap_page(old_page)
        await unlock_page(old_page)
        if reuse:
            entry = maybe_mkwrite(PresentPte(orig_pte.pfn, orig_pte.write, True, True), vma)
            await set_pte_at(mm, address, table, entry)  # ptep_set_access_flags
            await table.ptl.unlock()
            return VM_FAULT_MINOR | VM_FAULT_WRITE
    await get_page(old_page)  # page_cache_get(old_page)
    await table.ptl.unlock()

    await anon_vma_prepare(vma)
    new_page = await alloc_page_vma(fault_node(vma))
    if new_page is None:
        await put_page(old_page)
        return VM_FAULT_OOM
    # cow_user_page: copy the data; the copy is a new page as far as identity goes
    await preempt(old_page, READ, "data")
    new_page.data = old_page.data if not (old_page.flags & PG_reserved) else 0

    ret = VM_FAULT_MINOR
    await table.ptl.lock()
    if pte_read(table, address) == orig_pte:
        await page_remove_rmap(old_page)
        if not PageAnon(old_page):
            mm.file_rss -= 1
            mm.anon_rss += 1
            trace("rss", mm=mm.name, anon_rss=mm.anon_rss)  # the timeline's I5 rows
        entry = maybe_mkwrite(PresentPte(new_page.pfn, False, True, True), vma)
        await set_pte_at(mm, address, table, entry)  # ptep_establish
        await lru_cache_add_active(new_page)
        page_add_new_anon_rmap(new_page, vma, address)
        new_page = old_page  # "Free the old page.."
        ret |= VM_FAULT_WRITE
    await put_page(new_page)
    await put_page(old_page)
    await table.ptl.unlock()
    return ret


async def swapin_readahead(entry: SwapPte, vma: VmArea) -> None:
    """``swapin_readahead`` (2.6.17 mm/memory.c): start reading every used slot of
    ``entry``'s aligned cluster of ``1 << page_cluster`` (``valid_swaphandles``; the faulting
    slot among them) into the swap cache, keeping none of the pages: each stays in the cache
    and on the LRU, locked and not uptodate until its read completes, mapped by no pte until
    a fault on its own slot finds it there. Stops at the first slot it cannot read (freed
    meanwhile, or no memory).

    Context: mmap_sem read, no other lock (read_swap_cache_async may sleep). Simplification:
    every page is allocated on the fault's node (the kernel walks the vmas after ``vma`` for
    each address's NUMA policy; the model's vmas have none).
    """
    offset, num = await valid_swaphandles(entry, W().config.page_cluster)
    if num:
        trace("swapin_readahead", slot=entry.offset, first=offset, nr=num)
    for i in range(num):
        # "Ok, do the async read-ahead now"
        page = await read_swap_cache_async(SwapPte(entry.type, offset + i), fault_node(vma))
        if page is None:
            break
        await put_page(page)  # page_cache_release
    await lru_add_drain()  # "Push any new pages onto the LRU now"


async def do_swap_page(
    mm: MmStruct,
    vma: VmArea,
    address: int,
    table: PageTablePage,
    write_access: bool,
    orig_pte: SwapPte,
) -> int:
    """``do_swap_page`` (2.6.17 with V2 2/5, migration_entry_wait form).

    Context: mmap_sem read; no other lock on entry. A migration entry sends the fault to
    ``migration_entry_wait`` and it is retried; a swap entry is read through the swap cache
    (after ``swapin_readahead`` of its cluster on a miss) under the page lock, then the pte
    is rechecked under the ptl; with swap more than half full (``vm_swap_full``) the page
    leaves the swap cache if this pte was its slot's last user (``remove_exclusive_swap_page``,
    under the ptl and the page lock).
    """
    if is_migration_entry(orig_pte):
        await migration_entry_wait(mm, table, address)
        return VM_FAULT_MINOR
    ret = VM_FAULT_MINOR
    page = await lookup_swap_cache(orig_pte)
    if page is None:
        await swapin_readahead(orig_pte, vma)
        page = await read_swap_cache_async(orig_pte, fault_node(vma))
        if page is None:
            # The entry was freed under us (the pte changed) or OOM.
            await table.ptl.lock()
            if pte_read(table, address) == orig_pte:
                ret = VM_FAULT_OOM
            await table.ptl.unlock()
            return ret
        ret = VM_FAULT_MAJOR
    await lock_page(page)
    await table.ptl.lock()
    if pte_read(table, address) != orig_pte or not (page.flags & PG_uptodate):
        await table.ptl.unlock()
        await unlock_page(page)
        await put_page(page)
        return ret
    mm.anon_rss += 1
    trace("rss", mm=mm.name, anon_rss=mm.anon_rss)  # the timeline's I5 rows
    pte = mk_pte(page, vma)
    if write_access and await can_share_swap_page(page):
        pte = maybe_mkwrite(PresentPte(pte.pfn, pte.write, True, pte.young), vma)
        write_access = False
    await set_pte_at(mm, address, table, pte)
    await page_add_anon_rmap(page, vma, address)
    await swap_free(orig_pte)
    if vm_swap_full():
        await remove_exclusive_swap_page(page)
    await unlock_page(page)
    if write_access:
        # do_wp_page with the ptl still held
        ret2 = await do_wp_page(mm, vma, address, table, pte)
        if ret2 == VM_FAULT_OOM:
            return VM_FAULT_OOM
        return ret | (ret2 & VM_FAULT_WRITE)
    await table.ptl.unlock()
    return ret


# -- fork -----------------------------------------------------------------------------------------


async def copy_one_pte(
    dst_mm: MmStruct,
    src_mm: MmStruct,
    dst: PageTablePage,
    src: PageTablePage,
    vma: VmArea,
    addr: int,
    rss: list[int],
) -> None:
    """``copy_one_pte`` as V2 left it (reference A.7, V2 block; 2.6.17 mm/memory.c).

    Context: both ptls held (dst, then src nested); takes swap_lock (swap_duplicate) and
    mmlist_lock. A swap or migration entry is copied verbatim: no get_page, no
    page_dup_rmap, no rss++; swap_duplicate is a no-op for a migration entry.

    The mmlist add is 2.6.17's, made for real swap entries, whose holder ``src_mm`` is on
    init_mm.mmlist: ``list_add(&dst_mm->mmlist, &src_mm->mmlist)``. V2 sends migration
    entries through it too, and ``src_mm`` may be on no list at all: the two mms then form
    a private circle that swapoff never walks, and neither is ever added to init_mm.mmlist
    again (``list_empty`` is false for both). Fixed in 2014 ("mm: fix swapoff hang after
    page migration and fork", target.fixes). A present COW pte is write-protected in the
    parent and copied with a reference and a mapcount.
    """
    pte = pte_read(src, addr)
    if type(pte) is SwapPte:
        await swap_duplicate(pte)
        if list_empty(dst_mm.mmlist):
            w = W()
            await w.mmlist_lock.lock()
            if list_empty(dst_mm.mmlist):
                list_add(dst_mm.mmlist, src_mm.mmlist)
            await w.mmlist_lock.unlock()
        ghost_copy(src_mm, dst_mm, addr)  # a swap/migration entry: no store can land meanwhile
        await set_pte_at(dst_mm, addr, dst, pte)
        return
    if type(pte) is not PresentPte:  # copy_pte_range skips pte_none; no file ptes here
        BUG("bug", f"copy_one_pte: unexpected pte {pte} at {addr}", addr=addr)
    if is_cow_mapping(vma.vm_flags) and pte.write:
        pte = await ptep_set_wrprotect(src_mm, addr, src)  # and "pte = *src_pte"
    # The child's user program sees what the parent's sees now: from this step on the parent
    # cannot store to the shared page without a COW fault (target.mm.ghost).
    ghost_copy(src_mm, dst_mm, addr)
    if vma.vm_flags & VM_SHARED:
        pte = PresentPte(pte.pfn, pte.write, False, pte.young)
    pte = PresentPte(pte.pfn, pte.write, pte.dirty, False)
    page = vm_normal_page(vma, addr, pte)
    await get_page(page)
    await page_dup_rmap(page)
    rss[1 if PageAnon(page) else 0] += 1
    await set_pte_at(dst_mm, addr, dst, pte)


async def copy_pte_range(
    dst_mm: MmStruct, src_mm: MmStruct, vma: VmArea, start: int, end: int
) -> int:
    """``copy_pte_range`` for one page-table page: dst ptl, then src ptl (nested).

    The child's rss is added under the dst ptl at the end, as in the kernel. Returns 0, or
    -ENOMEM when the child's page table cannot be allocated (never, in the model: its tables
    are not charged to any node; the path is 2.6.17's, and the fork-early-cow fix uses it).
    """
    dst = dst_mm.pte_table(start)
    src = src_mm.pte_table(start, alloc=False)
    assert dst is not None  # harness: pte_table(alloc=True) never fails in the model
    if src is None:
        return 0
    rss = [0, 0]
    dst_ptep = pte_offset_map(dst, start)  # pte_alloc_map_lock
    await dst.ptl.lock()
    src_ptep = pte_offset_map(src, start, KM_PTE1)  # pte_offset_map_nested
    await src.ptl.lock(SINGLE_DEPTH_NESTING)
    for addr in range(start, end):
        if pte_read(src, addr) is None:
            continue
        await copy_one_pte(dst_mm, src_mm, dst, src, vma, addr, rss)
    await src.ptl.unlock()
    pte_unmap(src_ptep, KM_PTE1)
    dst_mm.file_rss += rss[0]
    dst_mm.anon_rss += rss[1]
    trace("rss", mm=dst_mm.name, anon_rss=dst_mm.anon_rss)  # the timeline's I5 rows
    pte_unmap(dst_ptep)
    await dst.ptl.unlock()
    await cond_resched()
    return 0


async def copy_page_range(dst_mm: MmStruct, src_mm: MmStruct, vma: VmArea) -> int:
    """``copy_page_range``: nothing to copy for a vma without an anon_vma (never faulted).
    Returns 0 or the first error of copy_pte_range (-ENOMEM), which fails the fork."""
    if vma.anon_vma is None:
        return 0
    addr = vma.vm_start
    while addr < vma.vm_end:
        next_table = (addr // PTRS_PER_PTE + 1) * PTRS_PER_PTE
        end = min(next_table, vma.vm_end)
        err = await copy_pte_range(dst_mm, src_mm, vma, addr, end)
        if err:
            return err
        addr = end
    return 0


# -- zap ------------------------------------------------------------------------------------------


async def zap_pte_range(tlb: MmuGather, vma: VmArea, start: int, end: int) -> None:
    """``zap_pte_range``: clear ptes; drop mapcount, and hand the pte's reference of a
    present page to the mmu_gather (``tlb_remove_page``), which drops it after the TLB
    flush: at once in a prompt world, in ``tlb_finish_mmu`` (after the ptl, and in
    unmap_region after free_pgtables) in a batching one.

    Context: takes and releases the ptl. A migration entry just vanishes (it holds no
    reference, mapcount or swap count); a swap entry goes to free_swap_and_cache, which only
    trylocks the page.
    """
    mm = tlb.mm
    table = mm.pte_table(start, alloc=False)
    if table is None:
        return
    ptep = pte_offset_map(table, start)  # pte_offset_map_lock
    await table.ptl.lock()
    for addr in range(start, end):
        ptent = pte_read(table, addr)
        if ptent is None:
            continue
        if type(ptent) is PresentPte:
            page = vm_normal_page(vma, addr, ptent)
            # ptep_get_and_clear_full: the value cleared, with any dirty bit a sibling
            # thread's store set after the read above (the pfn cannot change under the ptl).
            ptent = await ptep_clear_flush(mm, addr, table)
            if type(ptent) is not PresentPte:  # only the MMU writes it unlocked, A/D bits
                BUG("bug", f"zap_pte_range: pte at {addr} changed under the ptl", addr=addr)
            ghost_forget(mm, addr)
            if PageAnon(page):
                mm.anon_rss -= 1
                trace("rss", mm=mm.name, anon_rss=mm.anon_rss)  # the timeline's I5 rows
            else:
                mm.file_rss -= 1
            if ptent.dirty:
                page.flags |= PG_dirty
            await page_remove_rmap(page)
            await tlb_remove_page(tlb, page)
            continue
        if isinstance(ptent, SwapPte):
            await free_swap_and_cache(ptent)
        await ptep_clear_flush(mm, addr, table)
        ghost_forget(mm, addr)
    pte_unmap(ptep)
    await table.ptl.unlock()


async def unmap_vmas(tlb: MmuGather, vmas: list[VmArea]) -> None:
    """``unmap_vmas``: zap each vma, one page-table page at a time, into ``tlb``."""
    for vma in vmas:
        addr = vma.vm_start
        while addr < vma.vm_end:
            end = min((addr // PTRS_PER_PTE + 1) * PTRS_PER_PTE, vma.vm_end)
            await zap_pte_range(tlb, vma, addr, end)
            addr = end
        await cond_resched()


# -- get_user_pages -------------------------------------------------------------------------------


async def follow_page(vma: VmArea, address: int, flags: int) -> Page | None:
    """``follow_page``: the page mapped at ``address`` if the pte allows the access.

    Context: takes and releases the ptl; with FOLL_GET the reference is taken under it, so
    the page cannot be freed in between. A migration entry is "no page": the caller faults.
    """
    mm = vma.vm_mm
    table = mm.pte_table(address, alloc=False)
    if table is None:
        return None
    ptep = pte_offset_map(table, address)  # pte_offset_map_lock
    await table.ptl.lock()
    pte = pte_read(table, address)
    page: Page | None = None
    if type(pte) is PresentPte and (pte.write or not (flags & FOLL_WRITE)):
        page = vm_normal_page(vma, address, pte)
        if flags & FOLL_GET:
            await get_page(page)
        if flags & FOLL_TOUCH and flags & FOLL_WRITE:
            page.flags |= PG_dirty
    pte_unmap(ptep)
    await table.ptl.unlock()
    return page


async def get_user_pages(
    mm: MmStruct, vma: VmArea, address: int, write: bool, *, get: bool = True
) -> Page | None:
    """``get_user_pages`` for one page: follow, fault until it can be followed, pin.

    Context: mmap_sem held by the caller (read, or write from mlock). After a write fault
    that broke COW (VM_FAULT_WRITE) FOLL_WRITE is dropped, as in the kernel, so a racing fork
    cannot make it loop forever. With ``get`` false (make_pages_present) no reference is
    taken and the returned page must not be used.
    """
    lockdep_assert_held(mm.mmap_sem)
    foll_flags = (FOLL_GET if get else 0) | FOLL_TOUCH | (FOLL_WRITE if write else 0)
    while True:
        page = await follow_page(vma, address, foll_flags)
        if page is not None:
            return page
        ret = await handle_mm_fault(mm, vma, address, bool(foll_flags & FOLL_WRITE))
        if ret in (VM_FAULT_OOM, VM_FAULT_SIGBUS):
            return None
        if ret & VM_FAULT_WRITE:
            foll_flags &= ~FOLL_WRITE
        await cond_resched()
