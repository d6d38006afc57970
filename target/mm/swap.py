"""Page reference counting, LRU addition and pagevecs: mm/swap.c, include/linux/mm.h and
include/linux/pagevec.h (2.6.17).

``get_page``/``put_page`` are atomic operations on ``page->_count``; each is a scheduling
point, because unlocked readers (migrate_pages' ``page_count(page) == 1``, the refcount checks
of migrate_page_remove_references) race with them.

Pagevecs (``WorldConfig.pagevec_size`` >= 2): ``lru_cache_add`` takes a reference and parks the
page in the running CPU's ``lru_add_pvecs`` (or ``lru_add_active_pvecs``); only when the
pagevec is full, or at ``lru_add_drain``/``lru_add_drain_all``, does ``__pagevec_lru_add`` put
the batch on the LRU and ``release_pages`` drop the pagevec's references. Meanwhile the page
is not on the LRU (isolation fails with -EBUSY) and holds one reference more than its ptes
explain (migration's refcount check fails with -EAGAIN): the windows that made
``migrate_prep`` call ``lru_add_drain_all``. The kernel's pagevecs are per CPU; the model's
tasks *are* its CPUs (``KTask``), so each task has its own, keyed by tid. A CPU touches its
pagevec only with preemption disabled (``get_cpu_var``), so no other code of that CPU can see a
half-done batch: the model detaches the batch in one step before taking lru_lock, which is
the same thing. With ``pagevec_size`` 0 or 1 an addition goes to the LRU at once, as
``__pagevec_lru_add`` of a one-page vector would, without the pagevec reference's steps
(the prompt world every earlier reproducer was recorded in).
"""

from __future__ import annotations

from target.kernel import BUG, WRITE, current, might_sleep, preempt, trace

from .mm_inline import add_page_to_active_list, add_page_to_inactive_list, del_page_from_lru
from .page_alloc import free_hot_cold_page
from .types import Page, PG_active, PG_lru
from .world import W, Zone

PAGEVEC_SIZE = 14
"""include/linux/pagevec.h: the kernel's size, the bound of ``WorldConfig.pagevec_size``."""


async def get_page(page: Page) -> None:
    """``get_page``: ``atomic_inc(&page->_count)``. 2.6.17 has no zero check; the model has one.

    Taking a reference on a free page is how the rejected lookup_swap_cache design of the V2
    review goes wrong ("a get_page() on a random page which could be in any state"), so it is
    reported as a use-after-free of the page.
    """
    await preempt(page, WRITE, "count")
    if page._count <= 0:
        BUG("use-after-free", f"get_page on free page pfn {page.pfn}", pfn=page.pfn)
    page._count += 1
    trace("get_page", pfn=page.pfn, count=page._count)


def get_page_locked(page: Page) -> None:
    """``get_page`` where the caller already passed a point (under the lock it just took)."""
    if page._count <= 0:
        BUG("use-after-free", f"get_page on free page pfn {page.pfn}", pfn=page.pfn)
    page._count += 1
    trace("get_page", pfn=page.pfn, count=page._count)


async def put_page(page: Page) -> None:
    """``put_page``/``page_cache_release``: drop a reference; the last one frees the page.

    Context: any; the final put takes zone->lru_lock if the page is still on the LRU
    (``__page_cache_release``), which is allowed under ptl (rmap.c order).
    """
    await preempt(page, WRITE, "count")
    if page._count <= 0:
        BUG("refcount-underflow", f"put_page on page pfn {page.pfn} with count {page._count}",
            pfn=page.pfn, count=page._count)
    page._count -= 1
    trace("put_page", pfn=page.pfn, count=page._count)
    if page._count == 0:
        await __page_cache_release(page)


def __put_page(page: Page) -> None:
    """``__put_page``: drop a reference the caller knows is not the last (radix-tree ref)."""
    if page._count <= 1:
        BUG("refcount-underflow", f"__put_page would free page pfn {page.pfn}",
            pfn=page.pfn, count=page._count)
    page._count -= 1
    trace("put_page", pfn=page.pfn, count=page._count)


async def __page_cache_release(page: Page) -> None:
    """``__page_cache_release``: take the page off the LRU, then free it."""
    if page.flags & PG_lru:
        zone = W().zones[page.nid]
        await zone.lru_lock.lock()
        if page.flags & PG_lru:
            page.flags &= ~PG_lru
            del_page_from_lru(zone, page)
        await zone.lru_lock.unlock()
    free_hot_cold_page(page)


async def lru_cache_add(page: Page, active: bool = False) -> None:
    """``lru_cache_add``/``lru_cache_add_active``: through the CPU's pagevec.

    Context: any (the kernel disables preemption around the pagevec; lru_lock is taken only
    to drain it). The pagevec holds a reference (``page_cache_get``) until it drains.
    """
    w = W()
    if w.config.pagevec_size <= 1:
        await _lru_add_now(page, active)
        return
    pvecs = w.lru_add_active_pvecs if active else w.lru_add_pvecs
    await get_page(page)  # page_cache_get: the pagevec's reference
    pvec = pvecs.setdefault(current().tid, [])
    pvec.append(page)
    trace("pagevec_add", pfn=page.pfn, active=active, nr=len(pvec))
    if len(pvec) >= w.config.pagevec_size:  # !pagevec_add(pvec, page)
        await __pagevec_lru_add(_detach(pvecs, current().tid), active)


async def lru_cache_add_active(page: Page) -> None:
    await lru_cache_add(page, active=True)


async def _lru_add_now(page: Page, active: bool) -> None:
    """The prompt world's addition: onto the LRU at once, under zone->lru_lock."""
    zone = W().zones[page.nid]
    await zone.lru_lock.lock()
    if page.flags & PG_lru:
        BUG("bug", f"lru_cache_add of page pfn {page.pfn} already on the LRU", pfn=page.pfn)
    page.flags |= PG_lru
    if active:
        page.flags |= PG_active
        add_page_to_active_list(zone, page)
    else:
        add_page_to_inactive_list(zone, page)
    await zone.lru_lock.unlock()


def _detach(pvecs: dict[int, list[Page]], cpu: int) -> list[Page]:
    """Take a CPU's whole batch in one step (pagevec_reinit after the drain, in the kernel)."""
    return pvecs.pop(cpu, [])


async def _lru_lock_of(page: Page, held: Zone | None) -> Zone:
    """The batch walks' lock hand-over: hold ``page``'s zone's lru_lock, dropping ``held``'s
    first if it is another zone's (a batch takes each lock once per run of one zone)."""
    zone = W().zones[page.nid]
    if zone is not held:
        if held is not None:
            await held.lru_lock.unlock()
        await zone.lru_lock.lock()
    return zone


async def __pagevec_lru_add(pages: list[Page], active: bool) -> None:
    """``__pagevec_lru_add``/``__pagevec_lru_add_active``: each page onto its zone's LRU
    (lru_lock taken once per run of pages of one zone), then ``release_pages`` drops the
    pagevec's references: a page nobody else holds any more is freed right there.

    Context: takes and releases zone->lru_lock. ``TestSetPageLRU``/``TestSetPageActive``
    BUG as in 2.6.17: a page is added to the LRU only by the one who took it off.
    """
    zone = None
    for page in pages:
        zone = await _lru_lock_of(page, zone)
        if page.flags & PG_lru:
            BUG("bug", f"__pagevec_lru_add: pfn {page.pfn} already on the LRU", pfn=page.pfn)
        page.flags |= PG_lru
        if active:
            if page.flags & PG_active:
                BUG("bug", f"__pagevec_lru_add_active: pfn {page.pfn} already active",
                    pfn=page.pfn)
            page.flags |= PG_active
            add_page_to_active_list(zone, page)
        else:
            add_page_to_inactive_list(zone, page)
        trace("lru_add", pfn=page.pfn, active=active)
    if zone is not None:
        await zone.lru_lock.unlock()
    await release_pages(pages)


async def release_pages(pages: list[Page]) -> None:
    """``release_pages``: drop one reference of each page; those that reach 0 leave the LRU
    (under lru_lock, held across a run of one zone's pages) and are freed in batches of
    ``PAGEVEC_SIZE`` (``__pagevec_free``).

    Context: takes and releases zone->lru_lock. A page whose count reached 0 and is still
    on the LRU waits for that lock: vmscan's ``get_page_testone`` skips it meanwhile, and
    isolate_lru_page may not meet it (its callers hold a pte reference: A.10).
    """
    to_free: list[Page] = []
    zone = None
    for page in pages:
        await preempt(page, WRITE, "count")  # put_page_testzero: atomic_dec_and_test
        if page._count <= 0:
            BUG("refcount-underflow", f"release_pages: pfn {page.pfn} count {page._count}",
                pfn=page.pfn, count=page._count)
        page._count -= 1
        trace("put_page", pfn=page.pfn, count=page._count)
        if page._count:
            continue
        if page.flags & PG_lru:
            zone = await _lru_lock_of(page, zone)
            page.flags &= ~PG_lru
            del_page_from_lru(zone, page)
        to_free.append(page)
        if len(to_free) == PAGEVEC_SIZE:  # !pagevec_add(&pages_to_free, page)
            if zone is not None:
                await zone.lru_lock.unlock()
                zone = None
            __pagevec_free(to_free)
            to_free = []
    if zone is not None:
        await zone.lru_lock.unlock()
    __pagevec_free(to_free)


def __pagevec_free(pages: list[Page]) -> None:
    """``__pagevec_free``: ``free_hot_cold_page`` of each page (count already 0)."""
    for page in pages:
        free_hot_cold_page(page)


async def __lru_add_drain(cpu: int) -> None:
    """``__lru_add_drain``: both of ``cpu``'s pagevecs onto the LRU."""
    w = W()
    for pvecs, active in ((w.lru_add_pvecs, False), (w.lru_add_active_pvecs, True)):
        pages = _detach(pvecs, cpu)
        if pages:
            await __pagevec_lru_add(pages, active)


async def lru_add_drain() -> None:
    """``lru_add_drain``: drain the running CPU's pagevecs. Context: any."""
    await __lru_add_drain(current().tid)


async def lru_add_drain_all() -> None:
    """``lru_add_drain_all`` (CONFIG_NUMA, 2.6.16+): ``schedule_on_each_cpu`` of
    ``lru_add_drain``, waiting for every CPU's work to finish.

    Context: may sleep (flush_workqueue). Each CPU's keventd runs the drain when that CPU
    is preemptible, which in the model is any point outside its own ``lru_cache_add``, and
    that one detaches its batch in one step: so the caller drains each CPU's batch itself,
    in CPU order. A page a CPU adds after its drain stays in its pagevec, as in the kernel
    ("pages may be moved off the LRU after we have drained them", migrate_prep).
    """
    might_sleep("lru_add_drain_all")
    w = W()
    for cpu in sorted(set(w.lru_add_pvecs) | set(w.lru_add_active_pvecs)):
        await __lru_add_drain(cpu)
