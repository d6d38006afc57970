"""sys_move_pages: the page-by-page caller of migration, mm/migrate.c of 2.6.18 (reference
A.16). A module of its own because it sits above memory.c's follow_page in the import graph.

    sys_move_pages(pid, nr_pages, pages, nodes, status, flags)
      get_task_mm(task)
      do_move_pages(mm, pm, MPOL_MF_MOVE_ALL?)
        down_read(&mm->mmap_sem); migrate_prep()            lru_add_drain_all
        for each page: find_vma; follow_page(FOLL_GET)       count++ under the ptl
                       reserved (ZERO_PAGE) -> -ENOENT; already on the node -> the node;
                       mapcount > 1 without MOVE_ALL -> -EACCES
                       isolate_lru_page (-EBUSY if not on the LRU); put_page
        migrate_pages(&pagelist, new_page_node, pm)          status := node or -errno
        up_read(&mm->mmap_sem)
      mmput(mm)

move_pages arrived in 2.6.18, after V2; V2's migrate_pages has no ``get_new_page`` callback
but takes a list of target pages, so the model migrates the isolated pages in one group per
target node, each group with its own target pages (migrate_pages_to's body). A page that is
not migrated gets -EAGAIN, or -EPERM for V2's VM_LOCKED permanent failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from target.kernel import trace

from .memory import FOLL_GET, follow_page
from .migrate import (
    EAGAIN,
    EPERM,
    isolate_lru_page,
    migrate_pages,
    migrate_prep,
    putback_lru_pages,
)
from .mmap import find_vma
from .page_alloc import alloc_pages_node
from .swap import put_page
from .types import MmStruct, Page, PG_reserved

ENOENT = -2
EFAULT = -14
EACCES = -13
ENOMEM = -12


@dataclass
class PageToNode:
    """``struct page_to_node``: one entry of the user's arrays."""

    addr: int
    node: int
    page: Page | None = None
    status: int = 0


async def _migrate_group(pages: list[Page], node: int, pm: list[PageToNode]) -> None:
    """Migrate ``pages`` to ``node`` with V2's migrate_pages; fill in their statuses."""
    to: list[Page] = []
    for _ in pages:
        newpage = await alloc_pages_node(node)
        if newpage is None:
            break
        newpage.lru = to
        to.append(newpage)
    moved: list[Page] = []
    failed: list[Page] = []
    if to:
        await migrate_pages(pages, to, moved, failed)
    for pp in pm:
        if pp.page is None or pp.status != 0:
            continue
        if pp.page in moved:
            pp.status = node
        elif pp.page in failed:
            pp.status = EPERM
        elif pp.page in pages:
            pp.status = EAGAIN if to else ENOMEM
    await putback_lru_pages(moved)
    for page in failed:
        page.lru = pages
    pages.extend(failed)
    await putback_lru_pages(pages)
    for newpage in list(to):  # unused target pages: __free_page
        to.remove(newpage)
        newpage.lru = None
        await put_page(newpage)


async def do_move_pages(mm: MmStruct, pm: list[PageToNode], migrate_all: bool) -> int:
    """``do_move_pages``: isolate each page that must move, then migrate them.

    Context: takes mmap_sem for read around the whole operation (as sys_migrate_pages: the
    anon_vmas of this mm's pages stay alive). Returns 0 or -ENOENT when nothing was isolated.
    """
    groups: dict[int, list[Page]] = {}
    await mm.mmap_sem.down_read()
    await migrate_prep()  # "Build a list of pages to migrate"
    for pp in pm:
        vma = find_vma(mm, pp.addr)
        if vma is None:
            pp.status = EFAULT
            continue
        page = await follow_page(vma, pp.addr, FOLL_GET)
        if page is None:
            pp.status = ENOENT
            continue
        if page.flags & PG_reserved:
            err = ENOENT
        elif page.nid == pp.node:
            err = pp.node  # "Node already in the right place"
        elif page.mapcount > 1 and not migrate_all:
            err = EACCES
        else:
            pp.page = page
            err = await isolate_lru_page(page, groups.setdefault(pp.node, []), ref_held=True)
        await put_page(page)
        pp.status = err
    for node in sorted(groups):
        if groups[node]:
            await _migrate_group(groups[node], node, pm)
    await mm.mmap_sem.up_read()
    return 0 if groups else ENOENT


async def sys_move_pages(mm: MmStruct, pm: list[PageToNode], migrate_all: bool) -> int:
    """``sys_move_pages`` after get_task_mm: do_move_pages, then the statuses are "copied
    out" (a trace event each, which the timeline and finding files show)."""
    err = await do_move_pages(mm, pm, migrate_all)
    for pp in pm:
        trace("move_pages", mm=mm.name, addr=pp.addr, node=pp.node, status=pp.status)
    return err
