"""What two pending operations race on: the shared vocabulary of POS and conflict-aware PCT.

A :class:`~target.kernel.PendingOp` names a model object and a part of it. Two operations
*race* (the paper's "race" of POS, a conflict of DPOR) when they touch the same thing and at
least one of them writes:

* a lock (``op.lock_class`` set): the lock object itself, whatever ``part``; every
  acquisition, trylock and release is a write, except a shared rwsem acquisition (``part``
  ``"read"``), so two ``down_read`` of one rwsem do not race;
* anything else: the object *and* its part (a page's ``"count"`` is not its ``"flags"``, a
  pte is (mm, address)); ``READ`` reads, every other action writes;
* ``NONE`` touches nothing and races with nothing.

Keys use ``id(obj)``: identity, not equality, is what makes two objects the same, and a
model object may define ``__eq__``. A caller that keeps a key beyond the decision keeps the
operation (and so the object) alive with it, so the id is never reused meanwhile.
"""

from __future__ import annotations

from typing import NamedTuple

from target.kernel import NONE, READ, PendingOp


class Access(NamedTuple):
    """The racing-relevant content of a pending operation."""

    key: tuple[int, object]
    write: bool


def access(op: PendingOp) -> Access | None:
    """The access ``op`` makes, or None when it touches nothing shared.

    An object with a true ``task_local`` attribute is named by a point only to say its step
    touches nothing shared (migfuzz.testing's thread start, a READ rather than NONE so that
    DPOR may treat that step as local): no access, so SURW does not count it as an event."""
    if op.action == NONE or op.obj is None or getattr(op.obj, "task_local", False):
        return None
    if op.lock_class is not None:
        return Access((id(op.obj), None), op.part != "read")
    return Access((id(op.obj), op.part), op.action != READ)


def races(a: Access | None, b: Access | None) -> bool:
    """Whether two accesses race: the same key, and at least one writes."""
    return a is not None and b is not None and a.key == b.key and (a.write or b.write)


def same(a: PendingOp, b: PendingOp) -> bool:
    """The same pending event: one object (by identity), part and action. A task whose
    pending operation is no longer the same has executed the old one."""
    return a.obj is b.obj and a.action == b.action and a.part == b.part
