"""fork-no-wrprotect: copy_one_pte leaves the parent's pte of a COW page writable.

A mutation of the code's history: ``copy_one_pte`` write-protects the *parent's* pte of a
private writable page (``if (is_cow_mapping(vm_flags)) { ptep_set_wrprotect(src_mm, addr,
src_pte); pte = *src_pte; }``, reference A.7; ``is_cow_mapping`` is Linus's 2005 fix for COW
detection with VM_MAYWRITE). Only the child's copy is made read-only here, so the parent keeps
writing into the page the child now shares: the child sees the parent's later stores.

Breaks I7 (a shared anon page is never mapped writable). Detected as cow-violation (or as a
lost write when the child reads).
"""

from __future__ import annotations

from target.kernel import BUG as BUG_
from target.mm.ghost import ghost_copy
from target.mm.memory import is_cow_mapping, vm_normal_page
from target.mm.pgtable import pte_read, set_pte_at
from target.mm.rmap import PageAnon, page_dup_rmap
from target.mm.swap import get_page
from target.mm.swapfile import swap_duplicate
from target.mm.types import (
    VM_SHARED,
    MmStruct,
    PageTablePage,
    PresentPte,
    SwapPte,
    VmArea,
    list_add,
    list_empty,
)
from target.mm.world import W

from ._catalog import HistoricalBug


async def copy_one_pte(
    dst_mm: MmStruct,
    src_mm: MmStruct,
    dst: PageTablePage,
    src: PageTablePage,
    vma: VmArea,
    addr: int,
    rss: list[int],
) -> None:
    pte = pte_read(src, addr)
    if type(pte) is SwapPte:
        await swap_duplicate(pte)
        if list_empty(dst_mm.mmlist):
            w = W()
            await w.mmlist_lock.lock()
            if list_empty(dst_mm.mmlist):
                list_add(dst_mm.mmlist, src_mm.mmlist)
            await w.mmlist_lock.unlock()
        ghost_copy(src_mm, dst_mm, addr)
        await set_pte_at(dst_mm, addr, dst, pte)
        return
    if type(pte) is not PresentPte:  # copy_pte_range skips pte_none; no file ptes here
        BUG_("bug", f"copy_one_pte: unexpected pte {pte} at {addr}", addr=addr)
    if is_cow_mapping(vma.vm_flags) and pte.write:
        # BUG: no ptep_set_wrprotect of the parent's pte: it stays writable
        pte = PresentPte(pte.pfn, False, pte.dirty, pte.young)
    ghost_copy(src_mm, dst_mm, addr)
    if vma.vm_flags & VM_SHARED:
        pte = PresentPte(pte.pfn, pte.write, False, pte.young)
    pte = PresentPte(pte.pfn, pte.write, pte.dirty, False)
    page = vm_normal_page(vma, addr, pte)
    await get_page(page)
    await page_dup_rmap(page)
    rss[1 if PageAnon(page) else 0] += 1
    await set_pte_at(dst_mm, addr, dst, pte)


BUG = HistoricalBug(
    name="fork-no-wrprotect",
    year=2005,
    history="mutation",
    reference="mutation of copy_one_pte's ptep_set_wrprotect of the parent (mm/memory.c); "
    "is_cow_mapping: Linus Torvalds, 2005-11 (COW detection with VM_MAYWRITE)",
    breaks="I7: a shared anon page is never mapped writable",
    summary="fork write-protects the child's copy of a COW pte but not the parent's",
    expected_kinds=("cow-violation", "lost-write"),
    scenario="migrate-vs-fork-exit",
    strategy="random",
    overrides={"target.mm.memory:copy_one_pte": copy_one_pte},
    depth=0,
)
