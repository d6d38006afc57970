"""Page lock and writeback waits: mm/filemap.c and include/linux/pagemap.h (2.6.17).

PG_locked is a sleeping bit lock with a wait queue (lockdep class ``PG_locked``); PG_writeback
is a bit that I/O completion clears. ``TestSetPageLocked`` is the trylock that code holding a
spinlock must use, since the page lock ranks above every spinlock in mm/rmap.c's order.
"""

from __future__ import annotations

from target.kernel import BUG, RELEASED, TRY, Released, preempt

from .types import Page


async def lock_page(page: Page, subclass: int = 0) -> None:
    """``lock_page``: sleep until PG_locked is clear, then set it.

    Context: may sleep; must not hold any spinlock. ``subclass`` 1 is the migrator's second
    page lock (the new page), see target.mm.locking.
    """
    await page.locked.lock(subclass)


async def TestSetPageLocked(page: Page) -> bool:
    """``TestSetPageLocked``: trylock; returns the old bit (True = someone holds it)."""
    await preempt(page.locked, TRY)
    return page.locked.test_and_set()


def unlock_page(page: Page) -> Released:
    """``unlock_page``: clear PG_locked and wake waiters (migration_entry_wait sleepers).

    The migration-entry oracle (reference I2) runs here: once the page is unlocked, no pte
    anywhere may still hold a migration entry pointing at it, or the next
    ``migration_entry_to_page`` on that entry hits ``BUG_ON(!PageLocked(page))``.
    """
    page.locked.clear()
    if page.ghost_migration_ptes:
        BUG("migration-entry-leak",
            f"page pfn {page.pfn} unlocked with {page.ghost_migration_ptes} migration "
            "entries still pointing at it", pfn=page.pfn, entries=page.ghost_migration_ptes)
    return RELEASED


def PageLocked(page: Page) -> bool:
    return page.locked.is_set


def PageWriteback(page: Page) -> bool:
    return page.writeback.is_set


async def wait_on_page_locked(page: Page) -> None:
    """``wait_on_page_locked``: sleep until PG_locked is clear; does not take the lock.

    Context: may sleep; the caller must hold a reference on the page (or the page may be
    freed and reused while we sleep on it, reference A.6). That obligation is checked: a
    sleep that starts on a free page, or ends after the page was freed (and perhaps
    reallocated), is a use-after-free of the page.
    """
    gen = page.ghost_gen
    if page.count == 0:
        BUG("use-after-free", f"wait_on_page_locked on free page pfn {page.pfn}", pfn=page.pfn)
    await page.locked.wait_clear()
    if page.count == 0 or page.ghost_gen != gen:
        BUG("use-after-free",
            f"page pfn {page.pfn} was freed while a task slept on its PG_locked",
            pfn=page.pfn, reallocated=page.ghost_gen != gen)


async def wait_on_page_writeback(page: Page) -> None:
    """``wait_on_page_writeback``: sleep until I/O completion clears PG_writeback."""
    await page.writeback.wait_clear()


def set_page_writeback(page: Page) -> None:
    """``set_page_writeback``: the caller holds the page lock."""
    if page.writeback.is_set:
        BUG("bug", f"set_page_writeback on page pfn {page.pfn} already under writeback")
    page.writeback.test_and_set()


def end_page_writeback(page: Page) -> None:
    """``end_page_writeback``: I/O completion; wakes wait_on_page_writeback sleepers."""
    if not page.writeback.is_set:
        BUG("bug", f"end_page_writeback on page pfn {page.pfn} not under writeback")
    page.writeback.clear()
