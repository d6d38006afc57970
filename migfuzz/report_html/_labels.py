"""Lock classes from lock instance names: the table the report draws its lock-order graph
over (``page12.PG_locked`` -> ``PG_locked``)."""

from __future__ import annotations

import re

_CLASS_OF_NAME: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\.mmap_sem$"), "mm->mmap_sem"),
    (re.compile(r"\.PG_locked$"), "PG_locked"),
    (re.compile(r"^anon_vma\w*\.lock$"), "anon_vma->lock"),
    (re.compile(r"\.page_table_lock$"), "mm->page_table_lock"),
    (re.compile(r"\.ptl\[\d+\]$"), "pte_lock"),
    (re.compile(r"\.lru_lock$"), "zone->lru_lock"),
    (re.compile(r"^swap_lock$"), "swap_lock"),
    (re.compile(r"^mmlist_lock$"), "mmlist_lock"),
    (re.compile(r"\.tree_lock$"), "mapping->tree_lock"),
    (re.compile(r"^rcu_read_lock$"), "rcu_read_lock"),
]


def lock_class(name: str) -> str:
    """The lockdep class of a lock instance, from the names ``target/mm`` gives its locks
    (``page12.PG_locked`` -> ``PG_locked``); an unknown name loses its instance digits."""
    for pat, cls in _CLASS_OF_NAME:
        if pat.search(name):
            return cls
    return re.sub(r"\d+", "", name)
