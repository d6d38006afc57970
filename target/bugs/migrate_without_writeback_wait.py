"""migrate-without-writeback-wait: migrate_pages neither skips nor waits for a page under
writeback.

A mutation of the code's history: since Lameter's swap-based migration (2.6.15, mm/vmscan.c)
``migrate_pages`` has, after locking the page, "Only wait on writeback if we have already
done a pass where we may have triggered writeouts for lots of pages": pass 0 skips a page
under writeback (-EAGAIN), later passes ``wait_on_page_writeback`` with the page lock held
(2.6.18 keeps it as ``if (!force) goto unlock; wait_on_page_writeback(page)``). The page lock
alone does not stop I/O: ``swap_writepage`` sets PG_writeback and *unlocks* the page, and the
write completes later, from the disk's interrupt. A page reclaim is writing out can meanwhile
be faulted back in from the swap cache, so a migrator finds it mapped and lockable:

    kswapd                      user                    migrator            irq
    try_to_unmap: pte 0 := S
    swap_writepage: writeback,
      unlock_page
                                read 0: swap cache hit,
                                  pte 0 := P again
                                                        isolate P, lock P
                                                        migrate_page:
                                                        BUG_ON(PageWriteback)
                                                                            end_page_writeback

Without the BUG_ON (2.6.17's "Writeback must be complete") the old page would be freed with
the write in flight and ``end_page_writeback`` would run on a freed page. Breaks I3 (the page
the I/O holds by its bio is freed). With synchronous I/O (``swap_io_delay`` 0) the write is
in flight only until the end of kswapd's reclaim step, so a migrator must slip in before it
ends (depth 1 on migrate-vs-swap-pin); with the interrupt actor (target.mm.page_io) for as
long as the scheduler delays the completion, and one task can reclaim, fault the page back
and migrate it before the interrupt (migrate-vs-writeback: depth 0; the same scenario with
synchronous I/O never shows it).
"""

from __future__ import annotations

from target.kernel import READ, cond_resched, preempt
from target.mm.filemap import TestSetPageLocked, lock_page, unlock_page
from target.mm.migrate import EAGAIN, migrate_page, move_to_lru
from target.mm.types import Page

from ._catalog import HistoricalBug


async def migrate_pages(
    from_: list[Page], to: list[Page], moved: list[Page], failed: list[Page]
) -> int:
    nr_failed = 0
    pass_ = 0
    while True:
        retry = 0
        for page in list(from_):
            newpage: Page | None = None
            await cond_resched()
            rc = 0
            await preempt(page, READ, "count")
            if page.count == 1:
                pass  # page was freed from under us: only our isolation reference is left
            else:
                if to == []:
                    break
                rc = EAGAIN
                locked = False
                if pass_ > 2:
                    await lock_page(page)
                    locked = True
                elif not await TestSetPageLocked(page):
                    locked = True
                if locked:
                    # BUG: no PageWriteback test, no wait_on_page_writeback
                    newpage = to[0]
                    await lock_page(newpage, 1)  # never contended: private to us
                    # Both branches call migrate_page: swapper_space's a_ops->migratepage
                    # is migrate_page, and the model has no other mapping.
                    rc = await migrate_page(newpage, page)
                    await unlock_page(newpage)
                    await unlock_page(page)
            if rc == EAGAIN:
                retry += 1
            elif rc:
                from_.remove(page)
                failed.append(page)
                page.lru = failed
                nr_failed += 1
            else:
                if newpage is not None:
                    to.remove(newpage)
                    newpage.lru = None
                    await move_to_lru(newpage)
                from_.remove(page)
                moved.append(page)
                page.lru = moved
        if retry and pass_ < 10:
            pass_ += 1
            continue
        break
    return nr_failed + retry


BUG = HistoricalBug(
    name="migrate-without-writeback-wait",
    year=2006,
    history="mutation",
    reference="mutation of migrate_pages' writeback test (Lameter, swap migration 2.6.15, "
    "mm/vmscan.c: \"Only wait on writeback if we have already done a pass\"; 2.6.18 "
    "unmap_and_move: if (!force) goto unlock; wait_on_page_writeback)",
    breaks="I3: a page under writeback is migrated and freed with its write in flight",
    summary="migrate_pages migrates a page under writeback (no skip, no wait)",
    expected_kinds=("bug",),
    scenario="migrate-vs-writeback",
    # Neither sampler reaches migrate-vs-writeback's window (DFS does, at its first
    # execution); PCT is the one that finds the bug at all, on migrate-vs-swap-pin.
    strategy="pct",
    overrides={"target.mm.migrate:migrate_pages": migrate_pages},
    depth=0,
    # Recorded by the gate's DFS, which runs with every fix (the scenario shows none of V2's
    # flaws: its faithful DFS to bound 2 is clean either way).
    fixes=("all",),
)
