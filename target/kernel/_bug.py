"""Typed findings: what BUG_ON, VM_BUG_ON, lockdep and KASAN turn into.

The model never uses a bare ``assert`` for a kernel-state check: an ``AssertionError`` would
be indistinguishable from a bug in the harness. A violated kernel invariant raises
:class:`KernelFinding` instead, which the executor records as a finding of the model; any other
exception escaping a model task is a harness error (``StressInternalError`` in ``stress``).

The kinds are the closed list of ``FINDING_KINDS``: deduplication and reports key on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

FINDING_KINDS: frozenset[str] = frozenset(
    {
        "refcount-underflow",  # put_page on count 0, get_page on a freed page
        "bad-page-state",  # free_pages_check at free (mapcount, mapping, PG_lru, PG_locked)
        "use-after-free",  # KASAN: access to a freed page / anon_vma / vma / mm
        "page-leak",  # at quiescence: a page whose count no holder explains
        "mapcount-mismatch",  # page_mapcount != present ptes mapping it (I4)
        "rss-mismatch",  # anon_rss != present anon ptes (I5)
        "migration-entry-leak",  # a migration entry left after the old page was unlocked (I2)
        "migration-entry-on-unlocked-page",  # migration_entry_to_page BUG_ON(!PageLocked) (I1)
        "lost-write",  # data integrity (I10)
        "cow-violation",  # shared anon page mapped writable (I7)
        "lock-order-inversion",  # lockdep: circular dependency / against mm/rmap.c order (I8)
        "sleep-in-atomic",  # might_sleep with a spinlock held (I9)
        "lock-not-held",  # unlock of a lock not held, lockdep_assert_held failed
        "lock-misuse",  # recursive acquisition, lock held at task exit
        "deadlock",  # no task can run, some have not finished
        "livelock",  # step bound exceeded
        "no-progress",  # at quiescence: a migration or reclaim that should succeed did not
        "data-race",  # reserved for an unlocked write/write race detector
        "wild-access",  # a user page-table walk outside the user address space (ours)
        "kmap-misuse",  # CONFIG_DEBUG_HIGHMEM: kmap_atomic slot busy / wrong kunmap_atomic
        "swapoff-hang",  # swap entries swapoff can never find (try_to_unuse would loop)
        "object-leak",  # at quiescence: a kernel object no live structure reaches (ours)
        "syscall-mismatch",  # an mm system call's result or layout is not its spec's (ours)
        "bug",  # any other BUG_ON / VM_BUG_ON in the model
    }
)


class KernelFinding(Exception):
    """A violated kernel invariant, raised from inside the model.

    Attributes:
        kind: one of :data:`FINDING_KINDS`.
        message: one line, in the style of a kernel oops title.
        details: structured evidence (pfn, counts, lock chains ...), JSON-serialisable.
        function: the model function that raised it; filled in by the executor from the
            traceback when the raiser does not know it.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        function: str | None = None,
    ) -> None:
        if kind not in FINDING_KINDS:
            raise ValueError(f"unknown finding kind {kind!r}")
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.function = function


def BUG(kind: str, message: str, **details: Any) -> NoReturn:
    """``BUG()``: raise a :class:`KernelFinding` of ``kind`` unconditionally."""
    raise KernelFinding(kind, message, details)


def BUG_ON(condition: object, kind: str, message: str, **details: Any) -> None:
    """``BUG_ON(condition)`` / ``VM_BUG_ON``: a typed finding when ``condition`` holds."""
    if condition:
        raise KernelFinding(kind, message, details)
