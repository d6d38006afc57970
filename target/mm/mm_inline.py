"""The LRU list helpers of include/linux/mm_inline.h (2.6.17).

``add_page_to_active_list`` and friends are the only code that links a page into or out of a
zone's LRU lists. The caller holds ``zone->lru_lock``; 2.6.17 states that only in comments,
and the model checks it like ``lockdep_assert_held`` (ours: the kernel of the time had no such
assertion here). Without the check, a list update moved outside the lock is invisible unless
another CPU updates the same list in that very window: the model's lists are Python lists,
which never corrupt the way a torn ``list_del`` does.
"""

from __future__ import annotations

from target.kernel import BUG, lockdep_assert_held

from .types import Page, PG_active
from .world import Zone


def add_page_to_active_list(zone: Zone, page: Page) -> None:
    """``add_page_to_active_list``: ``list_add(&page->lru, &zone->active_list)``.

    Context: zone->lru_lock held. The caller has set PG_lru and PG_active.
    """
    lockdep_assert_held(zone.lru_lock)
    page.lru = zone.active_list
    zone.active_list.append(page)


def add_page_to_inactive_list(zone: Zone, page: Page) -> None:
    """``add_page_to_inactive_list``: ``list_add(&page->lru, &zone->inactive_list)``.

    Context: zone->lru_lock held. The caller has set PG_lru.
    """
    lockdep_assert_held(zone.lru_lock)
    page.lru = zone.inactive_list
    zone.inactive_list.append(page)


def del_page_from_lru_list(zone: Zone, page: Page) -> None:
    """``del_page_from_active_list``/``del_page_from_inactive_list``: ``list_del(&page->lru)``.

    Context: zone->lru_lock held; the caller has tested and cleared PG_lru under it. A page
    with PG_lru must be on one of the zone's two lists (CONFIG_DEBUG_LIST would catch a
    ``list_del`` of an entry that is not).
    """
    lockdep_assert_held(zone.lru_lock)
    if page.lru is not zone.active_list and page.lru is not zone.inactive_list:
        BUG("bad-page-state", f"pfn {page.pfn} had PG_lru but is on no LRU list of node "
            f"{zone.nid}", pfn=page.pfn)
    page.lru.remove(page)
    page.lru = None


def del_page_from_lru(zone: Zone, page: Page) -> None:
    """``del_page_from_lru``: as :func:`del_page_from_lru_list`, clearing PG_active too.

    Context: zone->lru_lock held (``__page_cache_release``).
    """
    page.flags &= ~PG_active
    del_page_from_lru_list(zone, page)
