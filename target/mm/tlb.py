"""The mmu_gather: include/asm-generic/tlb.h (2.6.17) and free_pages_and_swap_cache.

    unmap_region / exit_mmap / zap_page_range
      lru_add_drain()
      tlb = tlb_gather_mmu(mm, fullmm)
      unmap_vmas(&tlb, ...)        zap_pte_range under the ptl: pte cleared, anon_rss--,
                                   page_remove_rmap (mapcount--), tlb_remove_page(tlb, page)
      free_pgtables(&tlb, ...)     anon_vma_unlink: the anon_vma may be freed here
      tlb_finish_mmu(tlb)          TLB flushed, then the gathered pages' references dropped

Between the zap and ``tlb_finish_mmu`` a gathered page has mapcount 0 (if no one else maps
it), still holds the zapped pte's reference, and nobody holds the ptl that cleared it: the
page's ``mapping`` may point at an anon_vma that free_pgtables has freed meanwhile. Later
kernels' anon_vma use-after-free bugs lived in this window (issue 14). The kernel flushes a
full gather (``FREE_PTE_NR`` pages) in the middle of a zap, under the ptl; the batch is the
world's ``tlb_batch``. With ``tlb_batch`` 0 or 1 the gather is in ``tlb_fast_mode`` (the
uniprocessor case): each page's reference is dropped at once, in zap_pte_range's step, as
every earlier reproducer was recorded.

Simplification: ``tlb_gather_mmu`` is ``get_cpu_var(mmu_gathers)`` and keeps preemption off
until ``tlb_finish_mmu``; the model does not count that section as atomic (the model's
``unmap_vmas`` has its cond_resched between vmas, where the kernel ends the gather and starts
a new one when a reschedule is due).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from target.kernel import trace

from .filemap import TestSetPageLocked, unlock_page
from .rmap import PageSwapCache
from .swap import lru_add_drain, put_page, release_pages
from .swapfile import remove_exclusive_swap_page
from .types import MmStruct, Page
from .world import W

FREE_PAGES_CHUNK = 16
"""free_pages_and_swap_cache releases the gathered pages 16 at a time."""


@dataclass
class MmuGather:
    """``struct mmu_gather``: the pages whose ptes this CPU cleared, not yet released."""

    mm: MmStruct
    fullmm: bool
    pages: list[Page] = field(default_factory=list)


def tlb_gather_mmu(mm: MmStruct, full_mm_flush: bool) -> MmuGather:
    """``tlb_gather_mmu``: start gathering for ``mm`` (exit_mmap: the whole mm)."""
    return MmuGather(mm, full_mm_flush)


def tlb_fast_mode() -> bool:
    """``tlb_fast_mode``: no batching (one CPU in the kernel; a prompt world here)."""
    return W().config.tlb_batch <= 1


async def tlb_remove_page(tlb: MmuGather, page: Page) -> None:
    """``tlb_remove_page``: queue the zapped pte's reference; a full gather is flushed at
    once. Context: the zapping ptl held (a flush takes lru_lock under it: rmap.c order)."""
    if tlb_fast_mode():
        await free_page_and_swap_cache(page)
        return
    tlb.pages.append(page)
    trace("tlb_remove_page", pfn=page.pfn, nr=len(tlb.pages))
    if len(tlb.pages) >= W().config.tlb_batch:
        await tlb_flush_mmu(tlb)


async def tlb_flush_mmu(tlb: MmuGather) -> None:
    """``tlb_flush_mmu``: flush the TLB (nothing to model: no TLB), then release the pages."""
    pages, tlb.pages = tlb.pages, []
    if pages:
        await free_pages_and_swap_cache(pages)


async def tlb_finish_mmu(tlb: MmuGather) -> None:
    """``tlb_finish_mmu``: the end of the gather. Context: no ptl held (after free_pgtables)."""
    await tlb_flush_mmu(tlb)


async def free_swap_cache(page: Page) -> None:
    """``free_swap_cache`` (mm/swap_state.c): "If we are the only user, then try to free up
    the swap cache": a zapped page in the swap cache leaves it when the zap's reference and
    the cache's are its last and no swap pte uses its slot (remove_exclusive_swap_page).

    Context: may hold the ptl (a fast-mode zap, or a full gather flushed mid-zap), so the
    page lock is only tried; PageSwapCache is tested unlocked, remove_exclusive_swap_page
    rechecks it under the lock.
    """
    if PageSwapCache(page) and not await TestSetPageLocked(page):
        await remove_exclusive_swap_page(page)
        await unlock_page(page)


async def free_page_and_swap_cache(page: Page) -> None:
    """``free_page_and_swap_cache``: free_swap_cache, then drop the reference (tlb fast mode:
    "Can not do a lock_page, as we are holding the page_table_lock spinlock")."""
    await free_swap_cache(page)
    await put_page(page)


async def free_pages_and_swap_cache(pages: list[Page]) -> None:
    """``free_pages_and_swap_cache`` (mm/swap_state.c): ``lru_add_drain``, then 16 at a time
    ``free_swap_cache`` of each and ``release_pages``, so that pages this CPU's pagevec still
    holds reach the LRU first and can leave it when their count reaches 0."""
    await lru_add_drain()
    for i in range(0, len(pages), FREE_PAGES_CHUNK):
        for page in pages[i:i + FREE_PAGES_CHUNK]:
            await free_swap_cache(page)
        await release_pages(pages[i:i + FREE_PAGES_CHUNK])
