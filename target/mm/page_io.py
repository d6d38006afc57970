"""Swap I/O: mm/page_io.c (2.6.17) swap_readpage/swap_writepage and their bio completions.

    swap_readpage (page locked, !uptodate)      swap_writepage (page locked, dirty cleared)
      submit_bio(READ)                            set_page_writeback; submit_bio(WRITE)
                                                  unlock_page
      ... the disk interrupt, some time later ...
    end_swap_bio_read                           end_swap_bio_write
      SetPageUptodate; unlock_page                end_page_writeback

Until its completion a page being read stays locked and not uptodate, and a page being written
stays under writeback: migrate_pages meets both (trylock fails in passes 0-2, writeback is
skipped in pass 0 and waited for later), and so does everything else that finds the page in
the swap cache. ``WorldConfig.swap_io_delay`` chooses how long that lasts:

- 0: synchronous, the model before asynchronous I/O: a read completes inside swap_readpage,
  and writes complete at :func:`end_swap_io`, at the end of kswapd's step (or swapoff's write);
- N > 0: the execution has an interrupt actor, :func:`swap_bio_irq` (task "irq", another
  CPU taking the disk's interrupt), that completes bios in submission order whenever the
  scheduler runs it, and at the latest N scheduling points after the submission (then it runs
  without a decision). A bound above the run's step limit is unbounded.

A run phase without the irq actor (setup, readback, a unit test) completes I/O at once, as
the synchronous world does. The slot's content is read into the page at completion, where the
DMA has certainly happened; a write takes the page's content at submission.
"""

from __future__ import annotations

from dataclasses import dataclass

from target.kernel import (
    HOOKS,
    NEVER,
    Action,
    irq_idle,
    other_tasks_alive,
    preempt,
    raise_irq,
    touch,
    trace,
)

from .filemap import end_page_writeback, set_page_writeback, unlock_page
from .swapfile import remove_exclusive_swap_page
from .types import Page, PG_uptodate, SwapPte
from .world import W

READ = 0
WRITE = 1


@dataclass
class Bio:
    """One ``struct bio`` in flight: a page, its slot, the direction and when it was due."""

    rw: int
    page: Page
    offset: int
    due: int


def _irq_task_of_execution() -> bool:
    """Whether this execution has the interrupt actor: registers it on the run queue the first
    time (the actor may not have run yet: its first step is the scheduler's choice too)."""
    rq = HOOKS.rq
    if rq.irq_task is None:
        for task in rq.tasks:
            if getattr(task.coro, "cr_code", None) is swap_bio_irq.__code__:
                rq.irq_task = task
                break
    return rq.irq_task is not None


def submit_bio(rw: int, page: Page, offset: int) -> bool:
    """``submit_bio``: queue the I/O for the interrupt actor; False if this execution has none
    (synchronous I/O: the caller completes it)."""
    w = W()
    if w.config.swap_io_delay == 0 or not _irq_task_of_execution():
        return False
    due = HOOKS.rq.step + w.config.swap_io_delay
    if rw == READ:
        page.locked.release_to_io()  # end_swap_bio_read unlocks it
    touch(w, Action.WRITE, "bio_queue")  # the irq actor's pop is the point that names it
    w.bio_queue.append(Bio(rw, page, offset, due))
    trace("bio", rw="write" if rw == WRITE else "read", pfn=page.pfn, slot=offset)
    raise_irq(due)
    return True


def end_swap_bio_read(page: Page, offset: int) -> None:
    """``end_swap_bio_read``: the data is in, SetPageUptodate, unlock_page.

    Context: interrupt (or the submitter, for synchronous I/O); never sleeps.
    """
    slot = W().swap_slots[offset]
    touch(slot, Action.READ, "data")
    page.data = slot.data
    page.flags |= PG_uptodate
    unlock_page(page)


def end_swap_bio_write(page: Page) -> None:
    """``end_swap_bio_write``: end_page_writeback. Context: interrupt; never sleeps."""
    end_page_writeback(page)


def swap_readpage(page: Page, entry: SwapPte) -> None:
    """``swap_readpage``: read slot ``entry`` into the locked, not uptodate ``page``.

    Context: page lock held; returns with it held until the read completes (the completion
    unlocks it, maybe on another CPU).
    """
    if not submit_bio(READ, page, entry.offset):
        end_swap_bio_read(page, entry.offset)


async def swap_writepage(page: Page) -> None:
    """``swap_writepage``: start the write (writeback set) and unlock the page; or, when
    ``remove_exclusive_swap_page`` finds nobody else using the page and its slot (the ptes
    that try_to_unmap made swap entries of were zapped meanwhile), take it out of the swap
    cache instead, dirty, and write nothing.

    Context: page lock held, released here; takes swap_lock and tree_lock (in
    remove_exclusive_swap_page). The slot's content is taken now; the write completes in the
    interrupt actor, or at :func:`end_swap_io` for synchronous I/O.
    """
    if await remove_exclusive_swap_page(page):
        await unlock_page(page)
        return
    set_page_writeback(page)
    w = W()
    slot = w.swap_slots[page.private]
    touch(slot, Action.WRITE, "data")
    slot.data = page.data
    if not submit_bio(WRITE, page, page.private):
        w.pending_writeback.append(page)
    await unlock_page(page)


def end_swap_io() -> int:
    """Synchronous I/O: ``end_swap_bio_write`` for every write in flight. Returns the count.

    With the interrupt actor it has nothing to do: the actor completes the writes.
    """
    pending = W().pending_writeback
    n = len(pending)
    for page in pending:
        end_swap_bio_write(page)
    pending.clear()
    return n


async def swap_bio_irq() -> None:
    """The disk's interrupt handler on a CPU of its own: complete each bio, oldest first.

    Context: interrupt; never sleeps, takes no sleeping lock. Each completion is one step;
    between two the scheduler may run anything else (the unbounded delay), until a bio is
    due. Idle while nothing is in flight; returns once nothing is and no other task is left.
    """
    w = W()
    rq = HOOKS.rq
    rq.irq_task = HOOKS.rq.current
    while True:
        while w.bio_queue:
            bio = w.bio_queue.pop(0)
            rq.irq_due = w.bio_queue[0].due if w.bio_queue else NEVER
            trace("bio_end", rw="write" if bio.rw == WRITE else "read", pfn=bio.page.pfn)
            if bio.rw == READ:
                end_swap_bio_read(bio.page, bio.offset)
            else:
                end_swap_bio_write(bio.page)
            await preempt(w, Action.WRITE, "bio_queue")  # the next completion pops it
        if not other_tasks_alive():
            return
        await irq_idle()
