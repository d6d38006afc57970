"""The migration caller: sys_migrate_pages in mm/mempolicy.c (2.6.17, V2 era).

    sys_migrate_pages(pid, old_nodes, new_nodes)
      get_task_mm(task)                      mm_users++: the mm cannot reach exit_mmap
      do_migrate_pages(mm, from, to, flags)
        migrate_prep()                       lru_add_drain_all: pagevecs onto the LRU
        down_read(&mm->mmap_sem)             keeps this mm's vmas, hence the anon_vmas, alive
        migrate_to_node(mm, source, dest, flags)
          check_range -> check_pte_range     isolate pages under the ptl of their pte
          migrate_pages_to(&pagelist, NULL, dest)
          putback_lru_pages(&pagelist)
        up_read(&mm->mmap_sem)
      mmput(mm)                              may run exit_mmap if the task exited meanwhile

Simplification: ``do_migrate_pages`` moves one (source, dest) node pair, the whole of the
node_remap loop for the two-node machines the model builds.
"""

from __future__ import annotations

from target.kernel import kasan_check

from .migrate import isolate_lru_page, migrate_pages_to, migrate_prep, putback_lru_pages
from .pgtable import pte_read
from .types import PTRS_PER_PTE, VM_LOCKED, MmStruct, Page, PG_reserved, PresentPte, VmArea
from .world import W

MPOL_MF_STRICT = 1 << 0
MPOL_MF_MOVE = 1 << 1
MPOL_MF_MOVE_ALL = 1 << 2
MPOL_MF_INVERT = 1 << 3
MPOL_MF_DISCONTIG_OK = 1 << 4


def vma_migratable(vma: VmArea) -> bool:
    """``vma_migratable``: no VM_LOCKED (nor VM_IO/HUGETLB/PFNMAP/RESERVED, absent here)."""
    return not (vma.vm_flags & VM_LOCKED)


async def migrate_page_add(page: Page, pagelist: list[Page], flags: int) -> None:
    """``migrate_page_add``: "Avoid migrating a page that is shared with others" unless
    MPOL_MF_MOVE_ALL. Context: ptl held (so the page cannot be freed while we isolate it)."""
    if (flags & MPOL_MF_MOVE_ALL) or page.mapcount == 1:
        await isolate_lru_page(page, pagelist)


async def check_pte_range(
    vma: VmArea, start: int, end: int, nodes: set[int], flags: int, pagelist: list[Page]
) -> None:
    """``check_pte_range``: isolate the pages of [start, end) whose node is in ``nodes``.

    Context: mmap_sem read; takes and releases the ptl around the scan.
    """
    mm = vma.vm_mm
    table = mm.pte_table(start, alloc=False)
    if table is None:
        return
    await table.ptl.lock()
    for addr in range(start, end):
        pte = pte_read(table, addr)
        if type(pte) is not PresentPte:
            continue
        page = W().mem_map[pte.pfn]
        if page.flags & PG_reserved:
            continue
        if (page.nid in nodes) == bool(flags & MPOL_MF_INVERT):
            continue
        if flags & (MPOL_MF_MOVE | MPOL_MF_MOVE_ALL):
            await migrate_page_add(page, pagelist, flags)
        else:
            break
    await table.ptl.unlock()


async def check_range(
    mm: MmStruct, nodes: set[int], flags: int, pagelist: list[Page]
) -> None:
    """``check_range`` over every vma of ``mm``: isolation of what migrate_prep's drain put
    on the LRU (a page added since sits in a pagevec and is skipped: -EBUSY)."""
    for vma in list(mm.mmap):
        kasan_check(vma, "check_range")
        if not ((flags & MPOL_MF_STRICT) or (
            flags & (MPOL_MF_MOVE | MPOL_MF_MOVE_ALL) and vma_migratable(vma)
        )):
            continue
        addr = vma.vm_start
        while addr < vma.vm_end:
            end = min((addr // PTRS_PER_PTE + 1) * PTRS_PER_PTE, vma.vm_end)
            await check_pte_range(vma, addr, end, nodes, flags, pagelist)
            addr = end


async def migrate_to_node(mm: MmStruct, source: int, dest: int, flags: int) -> int:
    """``migrate_to_node``: isolate pages on ``source`` and migrate them to ``dest``."""
    pagelist: list[Page] = []
    await check_range(mm, {source}, flags | MPOL_MF_DISCONTIG_OK, pagelist)
    err = 0
    if pagelist:
        err = await migrate_pages_to(pagelist, dest)
        if err > 0 or pagelist:
            await putback_lru_pages(pagelist)
    return err


async def do_migrate_pages(mm: MmStruct, source: int, dest: int, flags: int) -> int:
    """``do_migrate_pages`` for one node pair: ``migrate_prep`` (every CPU's pagevecs onto
    the LRU), then the migration. Context: takes mmap_sem for read around the migration."""
    err = await migrate_prep()
    if err:
        return err
    await mm.mmap_sem.down_read()
    err = await migrate_to_node(mm, source, dest, flags)
    await mm.mmap_sem.up_read()
    return err
