"""copy-vma-rmap-order: mremap merges the destination into a vma walked before the source.

move_ptes takes no anon_vma lock; an rmap walk stays correct because it visits the source
vma before the destination (I11). copy_vma keeps that order when it links a new vma (at the
tail), but not when ``vma_merge`` extends a neighbour: the neighbour keeps its earlier place.
Moving pages back where they came from does exactly that:

    mremap [2,4) -> [40,42): new vma Y at the tail     anon_vma->head: X [0,2), Y
    mremap [40,42) -> [2,4): vma_merge extends X       dst X is walked before src Y

    migrator: remove_migration_ptes               mremap: move_ptes Y -> X
    X at 2: none (not moved yet) -> nothing
                                                  M(P) moved from Y:40 to X:2
    Y at 40: none -> nothing
    unlock_page(P): M(P) left at X:2 -> migration-entry-leak (I2)

"mremap: enforce rmap src/dst vma ordering in case of vma_merge() succeeding in copy_vma()"
(Andrea Arcangeli, merged for 3.2) moves the merged destination to the tail of the list
(``anon_vma_moveto_tail``). 3.7 replaced it by taking the anon_vma lock in move_ptes
("mm anon rmap: remove anon_vma_moveto_tail"), which would also close the window of
remove-migration-pte-locked; the 2011 fix is modelled so that each flaw has its own.
"""

from __future__ import annotations

from target.kernel import kasan_check
from target.mm.mmap import find_vma_prev, vm_area_alloc, vma_link, vma_merge
from target.mm.rmap import anon_vma_list_del
from target.mm.types import VmArea

from ._fix import UpstreamFix


async def anon_vma_moveto_tail(dst: VmArea) -> None:
    """``anon_vma_moveto_tail``: put ``dst`` last in its anon_vma's walk order.

    Context: mmap_sem held for write; takes and releases anon_vma->lock.
    """
    anon_vma = dst.anon_vma
    if anon_vma is None:
        return
    await anon_vma.lock.lock()
    anon_vma_list_del(anon_vma, dst)
    anon_vma.head.append(dst)
    await anon_vma.lock.unlock()


async def copy_vma(vma: VmArea, addr: int, length: int, pgoff: int) -> tuple[VmArea, VmArea]:
    kasan_check(vma, "copy_vma")
    mm = vma.vm_mm
    vma_start = vma.vm_start
    if vma.anon_vma is None:
        pgoff = addr
    _, prev = find_vma_prev(mm, addr)
    new_vma = await vma_merge(mm, prev, addr, addr + length, vma.vm_flags, vma.anon_vma, pgoff)
    if new_vma is not None:
        if new_vma.vm_start <= vma_start < new_vma.vm_end:
            vma = new_vma
        else:
            await anon_vma_moveto_tail(new_vma)  # FIX: dst after src in rmap walk order
        return new_vma, vma
    new_vma = vm_area_alloc(mm, addr, addr + length, vma.vm_flags)
    new_vma.vm_pgoff = pgoff
    new_vma.vm_page_prot_write = vma.vm_page_prot_write
    new_vma.anon_vma = vma.anon_vma
    await vma_link(mm, new_vma)
    return new_vma, vma


FIX = UpstreamFix(
    name="copy-vma-rmap-order",
    title="mremap: enforce rmap src/dst vma ordering in case of vma_merge() succeeding in "
          "copy_vma()",
    commit="948f017b093a (Andrea Arcangeli; the reference's mirror shows 952635949d87)",
    date="2011-12",
    breaks="I11: a vma receiving ptes without the anon_vma lock is after its source",
    summary="copy_vma's vma_merge leaves the mremap destination before its source in the "
            "anon_vma list",
    finding_kinds=("migration-entry-leak", "migration-entry-on-unlocked-page"),
    scenario="migrate-vs-mremap-back",
    needs="an mremap whose destination merges into a vma earlier in the anon_vma list, "
          "while another mm's migration of the moved page is in flight",
    overrides={"target.mm.mmap:copy_vma": copy_vma},
)
