"""copy-one-pte-mmlist: fork adds the child to the mmlist next to a parent that is on none.

copy_one_pte's swap-entry branch (2.6.17) was written for real swap entries: "make sure
dst_mm is on swapoff's mmlist" with ``list_add(&dst_mm->mmlist, &src_mm->mmlist)``, correct
because a parent holding a swap entry is on init_mm.mmlist. V2 sends migration entries down
the same branch, and the parent of a migration entry may never have swapped: its ``mmlist``
is an empty list, and the child is linked into a private circle with it. Both now look
listed (``list_empty`` is false), so neither is added to init_mm.mmlist when it later
swaps, and swapoff can never find their swap entries:

    migrator (MOVE_ALL via a sibling)         B (never swapped)        kswapd
    try_to_unmap: B's pte := M(P)
                                              fork C: copy_one_pte sees
                                              M(P): list_add(C, B.mmlist)
                                              -> circle {B, C}, off init_mm.mmlist
    remove_migration_ptes: B, C restored
                                                                       swap out C's page:
                                                                       list_empty(C) false:
                                                                       not added
    swapoff: walks init_mm.mmlist, never reaches C: loops forever ("swapoff hang")

"mm: fix swapoff hang after page migration and fork" (Hugh Dickins, 2014-01, Cc stable
2.6.18+) moves the mmlist add under ``if (likely(!non_swap_entry(entry)))``.
"""

from __future__ import annotations

from target.kernel import BUG
from target.mm.ghost import ghost_copy
from target.mm.memory import is_cow_mapping, vm_normal_page
from target.mm.pgtable import pte_read, ptep_set_wrprotect, set_pte_at
from target.mm.rmap import PageAnon, page_dup_rmap
from target.mm.swap import get_page
from target.mm.swapfile import swap_duplicate
from target.mm.swapops import is_migration_entry
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

from ._fix import UpstreamFix


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
        if not is_migration_entry(pte):  # FIX: if (likely(!non_swap_entry(entry)))
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
    if type(pte) is not PresentPte:
        BUG("bug", f"copy_one_pte: unexpected pte {pte} at {addr}", addr=addr)
    if is_cow_mapping(vma.vm_flags) and pte.write:
        pte = await ptep_set_wrprotect(src_mm, addr, src)
    ghost_copy(src_mm, dst_mm, addr)
    if vma.vm_flags & VM_SHARED:
        pte = PresentPte(pte.pfn, pte.write, False, pte.young)
    pte = PresentPte(pte.pfn, pte.write, pte.dirty, False)
    page = vm_normal_page(vma, addr, pte)
    await get_page(page)
    await page_dup_rmap(page)
    rss[1 if PageAnon(page) else 0] += 1
    await set_pte_at(dst_mm, addr, dst, pte)


FIX = UpstreamFix(
    name="copy-one-pte-mmlist",
    title="mm: fix swapoff hang after page migration and fork",
    commit="2022b4d18a49 (Hugh Dickins, Cc stable 2.6.18+)",
    date="2014-01",
    breaks="every mm holding a swap entry is reachable from init_mm.mmlist",
    summary="copy_one_pte list_adds the child next to a parent that is on no mmlist when it "
            "copies a migration entry",
    finding_kinds=("swapoff-hang",),
    scenario="migrate-fork-swapoff",
    needs="fork of an mm that never swapped while one of its ptes is a migration entry "
          "(migration through a sibling), then swap-out from it or its child",
    overrides={"target.mm.memory:copy_one_pte": copy_one_pte},
)
