"""remove-migration-pte-ptep: V2 unmaps the pte *value* with ``pte_unmap_unlock(pte, ptl)``.

V2 5/5 ends remove_migration_pte with ``pte_unmap_unlock(pte, ptl)``, where ``pte`` is the
``pte_t`` value read under the lock, not the ``ptep`` that ``pte_offset_map`` returned. The
unlock half is right. Without CONFIG_HIGHPTE ``pte_unmap`` is an empty macro and the slip is
invisible; with it, ``kunmap_atomic`` gets a pte value (a physical address with flag bits,
below FIXADDR_START) and returns without unmapping: the CPU's KM_PTE0 slot stays mapped and
CONFIG_DEBUG_HIGHMEM's ``kmap_atomic`` BUGs at the next pte mapping on that CPU.

    migrator (CONFIG_HIGHPTE)
    remove_migration_pte: ptep = pte_offset_map()    KM_PTE0 := the pte page
                          pte_unmap_unlock(pte, ptl) kunmap_atomic(0x00123067): no-op
    next walk on this CPU: pte_offset_map()          KM_PTE0 busy -> BUG()

The 2006-05-08 "page migration: Fix up remove_migration_ptes()" posting already shows
``pte_unmap_unlock(ptep, ptl)``; the reference (Part D) could not find the individual -mm
change between 2006-04-29 and 2006-05-08 that made it.
"""

from __future__ import annotations

from target.kernel import kasan_check, trace
from target.mm.pgtable import (
    pte_offset_map,
    pte_peek,
    pte_read,
    pte_unmap,
    set_pte_at,
    walk_pte_table,
)
from target.mm.rmap import page_add_anon_rmap
from target.mm.swap import get_page
from target.mm.swapops import is_migration_entry, migration_entry_to_page
from target.mm.types import Page, PresentPte, SwapPte, VmArea

from ._fix import UpstreamFix


async def remove_migration_pte(vma: VmArea, addr: int, old: Page, new: Page) -> None:
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
                                                     False))
        await page_add_anon_rmap(new, vma, addr)
    pte_unmap(ptep)  # FIX: pte_unmap_unlock(ptep, ptl)
    await ptl.unlock()


FIX = UpstreamFix(
    name="remove-migration-pte-ptep",
    title="pte_unmap_unlock(ptep, ptl) in remove_migration_pte "
          "(in \"page migration: Fix up remove_migration_ptes()\")",
    commit="-mm between 2006-04-29 and 2006-05-08 (reference Part D; in 2.6.18)",
    date="2006-05",
    breaks="every kmap_atomic is undone by kunmap_atomic of the same address "
           "(CONFIG_DEBUG_HIGHMEM)",
    summary="remove_migration_pte passes the pte value, not ptep, to pte_unmap_unlock",
    finding_kinds=("kmap-misuse",),
    scenario="migrate-highpte",
    needs="CONFIG_HIGHPTE (world option config_highpte) and any migration that reaches "
          "the locked part of remove_migration_pte",
    overrides={"target.mm.migrate:remove_migration_pte": remove_migration_pte},
)
