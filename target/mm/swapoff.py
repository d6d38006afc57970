"""swapoff: the try_to_unuse half of mm/swapfile.c (2.6.17), and init_mm.mmlist.

It is a module of its own because it sits above rmap and the swap cache in the import graph,
while the swap counts of swapfile.py sit below them.

    sys_swapoff
      clear SWP_WRITEOK (under swap_lock): get_swap_page allocates nothing from the area
      try_to_unuse: for every slot still in use (find_next_to_unuse, wrapping around)
        read_swap_cache_async; lock_page
        walk init_mm.mmlist (mmlist_lock, each mm held by mm_users):
          unuse_mm: mmap_sem read; unuse_vma -> unuse_pte_range (ptl) -> unuse_pte
        delete_from_swap_cache; unlock_page
      drain_mmlist: every mm off init_mm.mmlist

init_mm.mmlist is the *only* way swapoff finds the mms that hold swap entries: an mm that
holds one but is not reachable from it can never give its slot back, and the kernel's
try_to_unuse loops over that slot forever ("swapoff hang"). The model reports that as a
``swapoff-hang`` finding once a whole sweep makes no progress and no other task is left to
make any (ours: the kernel just loops). While other tasks still run, a sweep without
progress sleeps until one of them finishes, as a spinning CPU would let them run.

The op is "swapoff, then swapon of the same area": after a successful swapoff SWP_WRITEOK is
set again, so later reclaim can swap. Simplifications: one swap area; start_mm is always
init_mm (no shmem); the write-out of a still-referenced dirty page completes at once.
"""

from __future__ import annotations

from target.kernel import (
    BUG,
    READ,
    WRITE,
    cond_resched,
    kasan_check,
    other_tasks_alive,
    touch,
    trace,
    wait_for_other_task_exit,
)

from .filemap import lock_page, unlock_page, wait_on_page_locked, wait_on_page_writeback
from .fork import PROCESS_TABLE
from .mmap import mmput
from .page_io import end_swap_io, swap_writepage
from .pgtable import EFAULT, pte_offset_map, pte_read, pte_unmap, set_pte_at
from .rmap import PageSwapCache, page_add_anon_rmap, page_address_in_vma
from .swap import get_page, put_page
from .swap_state import delete_from_swap_cache, read_swap_cache_async
from .swapfile import swap_free
from .swapops import SWAP_TYPE_DEVICE, swp_entry
from .types import (
    PTRS_PER_PTE,
    MmStruct,
    Page,
    PG_dirty,
    PresentPte,
    SwapPte,
    VmArea,
    list_del_init,
    list_members,
)
from .world import W

EINVAL = -22
ENOMEM = -12


def find_next_to_unuse(prev: int) -> int:
    """``find_next_to_unuse``: the next slot after ``prev`` still in use, wrapping around;
    0 when none is left.

    Context: no lock ("We don't take swap_lock, it's ok": a stale count only costs a visit).
    """
    swap_map = W().swap_map
    n = len(swap_map)
    for k in range(1, n):
        i = (prev + k - 1) % (n - 1) + 1
        if swap_map[i]:
            return i
    return 0


async def unuse_pte(vma: VmArea, addr: int, entry: SwapPte, page: Page) -> None:
    """``unuse_pte``: the swap pte at ``addr`` becomes a pte mapping ``page``.

    Context: ptl and the page lock held. anon_rss++, get_page, set_pte_at (old, not
    writable), page_add_anon_rmap, swap_free.
    """
    mm = vma.vm_mm
    table = mm.pte_alloc(addr)
    mm.anon_rss += 1
    trace("rss", mm=mm.name, anon_rss=mm.anon_rss)  # the timeline's I5 rows
    await get_page(page)
    await set_pte_at(mm, addr, table, PresentPte(page.pfn, vma.vm_page_prot_write, False, False))
    await page_add_anon_rmap(page, vma, addr)
    await swap_free(entry)


async def unuse_pte_range(vma: VmArea, start: int, end: int, entry: SwapPte,
                          page: Page) -> bool:
    """``unuse_pte_range`` (one page table): the first pte equal to ``entry`` is unused.

    Context: page locked, mmap_sem read; takes and releases the ptl.
    """
    mm = vma.vm_mm
    table = mm.pte_table(start, alloc=False)
    if table is None:
        return False
    ptep = pte_offset_map(table, start)  # pte_offset_map_lock
    await table.ptl.lock()
    found = False
    for addr in range(start, end):
        if pte_read(table, addr) == entry:
            await unuse_pte(vma, addr, entry, page)
            found = True
            break
    pte_unmap(ptep)
    await table.ptl.unlock()
    return found


async def unuse_vma(vma: VmArea, entry: SwapPte, page: Page) -> bool:
    """``unuse_vma``: where ``entry`` may be mapped in ``vma``: the page's one address if
    it has a mapping (page_address_in_vma), else the whole vma.

    Context: page locked, mmap_sem read (unuse_mm).
    """
    if page.mapping is not None:
        addr = page_address_in_vma(page, vma)
        if addr == EFAULT:
            return False
        start, end = addr, addr + 1
    else:
        start, end = vma.vm_start, vma.vm_end
    while start < end:
        nxt = min((start // PTRS_PER_PTE + 1) * PTRS_PER_PTE, end)
        if await unuse_pte_range(vma, start, nxt, entry, page):
            return True
        start = nxt
    return False


async def unuse_mm(mm: MmStruct, entry: SwapPte, page: Page) -> None:
    """``unuse_mm``: find and unuse ``entry`` in one mm.

    Context: page locked; takes mmap_sem for read. "Activate page so shrink_cache is
    unlikely to unmap its ptes while lock is dropped": if the trylock fails, the page lock
    is dropped around the sleeping down_read (mmap_sem ranks above the page lock).
    """
    kasan_check(mm, "unuse_mm")
    if not await mm.mmap_sem.down_read_trylock():
        await unlock_page(page)
        await mm.mmap_sem.down_read()
        await lock_page(page)
    for vma in list(mm.mmap):
        if vma.anon_vma is not None and await unuse_vma(vma, entry, page):
            break
    await mm.mmap_sem.up_read()


async def unuse_mmlist(slot: int, entry: SwapPte, page: Page) -> None:
    """try_to_unuse's walk of init_mm.mmlist while ``slot`` has users besides the cache.

    Context: page locked. Each mm is held by an ``mm_users`` reference across the walk
    step, so its list entry stays linked while mmlist_lock is dropped; an mm whose users
    already reached 0 is being torn down and is skipped.
    """
    w = W()
    prev_mm: MmStruct | None = None
    node = w.mmlist
    await w.mmlist_lock.lock()
    while w.swap_map[slot] > 1:
        nxt = node.next
        if nxt is None or nxt is w.mmlist:
            break
        node = nxt
        mm = node.owner
        assert isinstance(mm, MmStruct)  # harness: our mmlist holds only mms
        touch(mm, WRITE, "mm_users")
        if mm.mm_users == 0:  # atomic_inc_return(&mm->mm_users) == 1: exiting
            continue
        mm.mm_users += 1
        await w.mmlist_lock.unlock()
        if prev_mm is not None:
            await mmput(prev_mm)
        prev_mm = mm
        await cond_resched()
        if w.swap_map[slot] > 1:
            await unuse_mm(mm, entry, page)
        await w.mmlist_lock.lock()
    await w.mmlist_lock.unlock()
    if prev_mm is not None:
        await mmput(prev_mm)


def _holders(entry: SwapPte) -> list[str]:
    """Evidence for a hang report: which live mms hold ``entry`` and whether swapoff can
    reach them."""
    w = W()
    reachable = set(map(id, list_members(w.mmlist)))
    out = []
    for p in w.processes.values():
        mm = getattr(p, "mm", None)
        if mm is None or mm.freed:
            continue
        for table in mm.pgtables.values():
            for i, pte in enumerate(table.ptes):
                if pte == entry:
                    where = "on" if id(mm) in reachable else "NOT on"
                    out.append(f"{mm.name} at {table.base + i} ({where} init_mm.mmlist)")
    return out


async def try_to_unuse() -> int:
    """``try_to_unuse``: bring every page of the area back into memory and its ptes back to
    present ptes, until no slot is in use. Context: SWP_WRITEOK already cleared."""
    w = W()
    i = 0
    idle = 0  # slots visited in a row without any swap count going down
    while True:
        i = find_next_to_unuse(i)
        if i == 0:
            return 0
        before = w.swap_map[i]
        entry = swp_entry(SWAP_TYPE_DEVICE, i)
        page = await read_swap_cache_async(entry, 0)
        if page is None:
            if w.swap_map[i] == 0:
                continue  # freed meanwhile
            return ENOMEM
        await wait_on_page_locked(page)
        await wait_on_page_writeback(page)
        await lock_page(page)
        await wait_on_page_writeback(page)
        if w.swap_map[i] > 1:
            await unuse_mmlist(i, entry, page)
        if w.swap_map[i] > 1 and page.flags & PG_dirty and PageSwapCache(page):
            # "delete from cache even if there's another reference, after ensuring that the
            # data has been saved to disk"
            page.flags &= ~PG_dirty
            await swap_writepage(page)
            end_swap_io()
            await lock_page(page)
            await wait_on_page_writeback(page)  # the write may still be in flight
        if PageSwapCache(page):
            await delete_from_swap_cache(page)
        page.flags |= PG_dirty
        await unlock_page(page)
        await put_page(page)
        idle = 0 if w.swap_map[i] < before else idle + 1
        if idle > sum(1 for c in w.swap_map if c):
            if not other_tasks_alive():
                BUG("swapoff-hang",
                    f"try_to_unuse: slot {i} keeps {w.swap_map[i]} users that no mm on "
                    "init_mm.mmlist holds; swapoff would loop forever",
                    slot=i, users=w.swap_map[i], holders=_holders(entry),
                    check="migfuzz (the kernel loops in try_to_unuse)")
            await wait_for_other_task_exit()
            idle = 0
        await cond_resched()


async def drain_mmlist() -> None:
    """``drain_mmlist``: with no swap in use, take every mm off init_mm.mmlist.

    Context: takes and releases mmlist_lock.
    """
    w = W()
    if any(w.swap_map):
        return
    await w.mmlist_lock.lock()
    for mm in list_members(w.mmlist):
        assert isinstance(mm, MmStruct)  # harness: our mmlist holds only mms
        list_del_init(mm.mmlist)
    await w.mmlist_lock.unlock()


async def check_swapoff_done() -> None:
    """After a successful try_to_unuse: no swap pte is left in any live mm (ours; a pte naming
    a slot whose count reached 0 is a swap-count underflow).

    Read the way a kernel checker would have to: each mm held by ``mm_users`` and its
    mmap_sem (so its page tables stay), each table under its ptl. A zap that has already
    dropped the slot's count clears the pte before it releases the ptl, so it is not seen
    half-done.
    """
    w = W()
    touch(PROCESS_TABLE, READ)
    for p in list(w.processes.values()):
        mm = getattr(p, "mm", None)
        if mm is None:
            continue
        touch(mm, WRITE, "mm_users")
        if mm.freed or mm.mm_users == 0:
            continue
        mm.mm_users += 1
        await mm.mmap_sem.down_read()
        for table in list(mm.pgtables.values()):
            await table.ptl.lock()
            for i, pte in enumerate(table.ptes):
                if type(pte) is SwapPte and pte.type == SWAP_TYPE_DEVICE:
                    BUG("refcount-underflow",
                        f"swapoff: {mm.name} still maps swap slot {pte.offset} at "
                        f"{table.base + i}, whose count is {w.swap_map[pte.offset]}",
                        mm=mm.name, addr=table.base + i, slot=pte.offset)
            await table.ptl.unlock()
        await mm.mmap_sem.up_read()
        await mmput(mm)


async def sys_swapoff() -> int:
    """``sys_swapoff`` of the one swap area, then swapon again. Returns 0 or -errno.

    Context: process context, no locks; takes swap_lock to clear SWP_WRITEOK.
    """
    w = W()
    if not w.swap_map:
        return EINVAL
    await w.swap_lock.lock()
    if not w.swap_writeok:  # another swapoff is emptying it: not found with SWP_WRITEOK
        await w.swap_lock.unlock()
        return EINVAL
    w.swap_writeok = False
    await w.swap_lock.unlock()
    err = await try_to_unuse()
    if err == 0:
        await drain_mmlist()
        await check_swapoff_done()
    await w.swap_lock.lock()
    w.swap_writeok = True  # reinsert_swap_info on failure, swapon after success
    await w.swap_lock.unlock()
    return err
