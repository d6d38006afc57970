"""Lock classes for the report: the lockdep class every lock event carries
(``page12.PG_locked`` -> ``PG_locked``), read from the event, never guessed from the name."""

from __future__ import annotations

from stress import Event


def lock_class(ev: Event) -> str:
    """The lockdep class of the lock a ``lock``/``unlock`` event names, as the event carries
    it (``page12.PG_locked`` -> ``PG_locked``); "?" for an event without one."""
    cls = ev.lock_class
    return cls.name if cls is not None else "?"
