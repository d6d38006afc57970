"""fork-early-cow-pinned: fork shares a page that a sibling thread has pinned for DMA.

``get_user_pages`` pins a page by its count alone, and copy_one_pte shares every anonymous
page of a COW mapping with the child, pinned or not: both ptes read-only, one page. Whatever
the device writes afterwards lands in that one page, which the child now maps, and the
parent's next store COWs the parent *away* from its own DMA buffer:

    thread A of P                       thread B of P (fork)          device
    pin(addr): GUP, count 2
                                        copy_one_pte: P's pte RO,
                                        C maps the same page
                                                                      DMA burst -> page
    C reads addr: sees the burst, stored after the fork
    P stores addr: do_wp_page, count 3 > 1: COW, P maps a copy
                                                                      DMA burst -> old page:
                                                                      P never sees it

Every kernel from 2.6.17 to 5.8 has it (the "GUP vs fork" problem; user space was told to
use MADV_DONTFORK). Fixed by "mm: Do early cow for pinned pages during fork() for ptes"
(Peter Xu, 70e806e4e645, v5.9, 2020-09): copy_present_page gives the child its own copy at
once when the page may be pinned, so the pinned page stays the parent's; the copy needs a
page allocated outside the ptls (``page_copy_prealloc``), so copy_pte_range drops its locks,
allocates and retries the pte (-EAGAIN), and a failed allocation fails the fork (-ENOMEM).

``page_maybe_dma_pinned`` needs FOLL_PIN's count bias, which 2.6.17 does not have; the model
uses what the count can say: a reference that no pte and no swap cache explains. Transient
references (an isolation, a waiter) also count, which costs a copy and never correctness. The
upstream ``mm->has_pinned`` shortcut is left out for the same reason.
"""

from __future__ import annotations

from target.kernel import cond_resched, trace
from target.mm.ghost import ghost_copy
from target.mm.locking import SINGLE_DEPTH_NESTING
from target.mm.memory import copy_one_pte, fault_node, is_cow_mapping, maybe_mkwrite
from target.mm.page_alloc import alloc_page_vma
from target.mm.pgtable import KM_PTE1, pte_offset_map, pte_read, pte_unmap, set_pte_at
from target.mm.rmap import PageAnon, PageSwapCache, page_add_new_anon_rmap
from target.mm.swap import lru_cache_add_active, put_page
from target.mm.types import MmStruct, Page, PageTablePage, PresentPte, VmArea
from target.mm.world import W

from ._fix import UpstreamFix

EAGAIN = -11
ENOMEM = -12


def page_maybe_dma_pinned(page: Page) -> bool:
    """A reference beyond what the ptes and the swap cache explain (see the module text)."""
    return page.count > page.mapcount + (1 if PageSwapCache(page) else 0)


async def copy_present_page(dst_mm: MmStruct, src_mm: MmStruct, dst: PageTablePage,
                            src: PageTablePage, vma: VmArea, addr: int, rss: list[int],
                            prealloc: list[Page]) -> int:
    """``copy_present_page`` (5.9): 1 to share as before, 0 if the child got its own copy,
    -EAGAIN if a copy is needed and no page is preallocated.

    Context: both ptls held. The parent's pte stays as it is (writable): the pinned page is
    the parent's alone from here on.
    """
    pte = pte_read(src, addr)
    if type(pte) is not PresentPte or not is_cow_mapping(vma.vm_flags):
        return 1
    page = W().mem_map[pte.pfn]
    if not PageAnon(page) or not page_maybe_dma_pinned(page):
        return 1
    if not prealloc:
        return EAGAIN
    new_page = prealloc.pop()
    new_page.data = page.data  # copy_user_highpage
    ghost_copy(src_mm, dst_mm, addr)  # the same step: the child's snapshot of this address
    # page_add_new_anon_rmap(new_page, dst_vma, addr): the child's vma shares the parent's
    # anon_vma, start and pgoff, so the parent's vma gives the same mapping and index.
    page_add_new_anon_rmap(new_page, vma, addr)
    await lru_cache_add_active(new_page)  # lru_cache_add_inactive_or_unevictable
    rss[1] += 1
    await set_pte_at(dst_mm, addr, dst,
                     maybe_mkwrite(PresentPte(new_page.pfn, False, True, True), vma))
    return 0


async def copy_pte_range(
    dst_mm: MmStruct, src_mm: MmStruct, vma: VmArea, start: int, end: int
) -> int:
    prealloc: list[Page] = []
    addr = start
    while True:
        dst = dst_mm.pte_table(start)
        src = src_mm.pte_table(start, alloc=False)
        assert dst is not None  # harness: pte_table(alloc=True) never fails in the model
        if src is None:
            break
        rss = [0, 0]
        ret = 0
        dst_ptep = pte_offset_map(dst, start)
        await dst.ptl.lock()
        src_ptep = pte_offset_map(src, start, KM_PTE1)
        await src.ptl.lock(SINGLE_DEPTH_NESTING)
        while addr < end:
            if pte_read(src, addr) is not None:
                # FIX: copy_present_page before sharing (5.9's copy_present_pte)
                ret = await copy_present_page(dst_mm, src_mm, dst, src, vma, addr, rss,
                                              prealloc)
                if ret == EAGAIN:
                    break
                if ret == 1:
                    await copy_one_pte(dst_mm, src_mm, dst, src, vma, addr, rss)
            addr += 1
        await src.ptl.unlock()
        pte_unmap(src_ptep, KM_PTE1)
        dst_mm.file_rss += rss[0]
        dst_mm.anon_rss += rss[1]
        trace("rss", mm=dst_mm.name, anon_rss=dst_mm.anon_rss)  # the timeline's I5 rows
        pte_unmap(dst_ptep)
        await dst.ptl.unlock()
        await cond_resched()
        if ret != EAGAIN:
            break
        page = await alloc_page_vma(fault_node(vma))  # page_copy_prealloc, no lock held
        if page is None:
            return ENOMEM  # fails the fork
        prealloc.append(page)
    for page in prealloc:  # allocated for a pte that no longer needed a copy
        await put_page(page)
    return 0


FIX = UpstreamFix(
    name="fork-early-cow-pinned",
    title="mm: Do early cow for pinned pages during fork() for ptes",
    commit="70e806e4e645 (Peter Xu)",
    date="2020-09",
    breaks="I10: a process reads what it (or its device, through a pin) stored last",
    summary="fork shares a page a sibling thread pinned for DMA; later DMA lands in the "
            "child's copy and the parent COWs away from its own buffer",
    finding_kinds=("lost-write",),
    scenario="gup-vs-fork",
    needs="a process with two threads: one pins a page and DMAs into it while the other "
          "forks",
    overrides={"target.mm.memory:copy_pte_range": copy_pte_range},
)
