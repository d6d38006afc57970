"""remove-migration-ptes-efault: V2 walks the page tables at ``-EFAULT``.

V2 5/5 calls ``remove_migration_pte(vma, page_address_in_vma(new, vma), old, new)`` for every
vma of the anon_vma without checking for ``-EFAULT``. Once a vma of the anon_vma does not
cover the page (the other half of a split by munmap, mprotect or mlock; an mremap source),
remove_migration_pte walks ``pgd_offset(mm, 0xfffffff2)``: a kernel address, read as if it
were the process's page table.

    migrator                                  user
                                              mprotect(2, 2, PROT_READ): [0,4) splits into
                                              [0,2) and [2,4), one anon_vma, both listed
    migrate page at 0: entries installed
    remove_migration_ptes: vma [0,2): addr 0
                           vma [2,4): addr -EFAULT -> page-table walk at 0xfffffff2

"page migration: Fix up remove_migration_ptes()" (Christoph Lameter, 2006-05-08, merged
for 2.6.18) moved the ``page_address_in_vma`` call into remove_migration_pte with
``if (addr == -EFAULT) return;``. The override below puts the same check in the caller,
which is equivalent and leaves remove_migration_pte to the fixes of its own lines.
"""

from __future__ import annotations

from target.mm import migrate
from target.mm.pgtable import EFAULT
from target.mm.rmap import page_address_in_vma
from target.mm.types import AnonVma, Page

from ._fix import UpstreamFix


async def remove_migration_ptes(old: Page, new: Page) -> None:
    anon_vma = new.mapping
    if not isinstance(anon_vma, AnonVma):
        return
    await anon_vma.lock.lock()
    for vma in list(anon_vma.head):
        addr = page_address_in_vma(new, vma)
        if addr == EFAULT:  # FIX: "if (addr == -EFAULT) return;"
            continue
        await migrate.remove_migration_pte(vma, addr, old, new)
    await anon_vma.lock.unlock()


FIX = UpstreamFix(
    name="remove-migration-ptes-efault",
    title="page migration: Fix up remove_migration_ptes()",
    commit="[PATCH 4/5] Christoph Lameter, linux-mm 2006-05-08 (in 2.6.18)",
    date="2006-05",
    breaks="a page-table walk stays inside the vma it was made for (ours: wild-access)",
    summary="remove_migration_ptes walks the page tables at the -EFAULT that "
            "page_address_in_vma returns for a vma not covering the page",
    finding_kinds=("wild-access",),
    scenario="migrate-split-vma",
    needs="a vma of the page's anon_vma that does not cover the page: a split "
          "(partial munmap, mprotect, mlock) or an mremap; then any migration of the page",
    overrides={"target.mm.migrate:remove_migration_ptes": remove_migration_ptes},
)
