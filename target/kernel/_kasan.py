"""Object lifetime checking, in the manner of KASAN.

Kernel objects whose lifetime the model tracks (anon_vma, vm_area_struct, mm_struct) derive
from :class:`KObject`. Freeing one poisons it: it records who freed it and when, so every later
access through a stale pointer is caught deterministically, until the slab hands the same
memory out again (:func:`kreuse`, only anon_vma_cachep does, when the world asks for it): from
then on the object is live, and an access through a stale pointer reads the new object, which
KASAN cannot tell from a legitimate one either. The model calls :func:`kasan_check` where the
kernel would dereference the object; locks embedded in an object check it on every operation.

Objects of a ``SLAB_DESTROY_BY_RCU`` cache (anon_vma) are type-stable: after ``kfree`` the
memory stays an object of that type until an RCU grace period has passed, so a task that was
non-preemptible (inside rcu_read_lock or holding a spinlock) when the object was freed, and has
stayed so since, may still lock it and read it. page_lock_anon_vma depends on exactly this: it
may lock an anon_vma that anon_vma_unlink has just freed, and it finds its list empty. Classic
RCU (2006) cannot end a grace period while any CPU has preemption disabled, which is why
holding the spinlock keeps the memory valid after rcu_read_unlock.
"""

from __future__ import annotations

from ._bug import KernelFinding
from ._sched import HOOKS


def _where() -> tuple[str, int]:
    rq = HOOKS.rq
    task = rq.current
    return (task.name if task is not None else "setup", rq.step)


class KObject:
    """A kernel object with a tracked lifetime.

    Invariants:
        ``_freed is None`` while the object is live; after :func:`kfree` it names the freer.
    """

    __slots__ = ("_allocated", "_freed", "_rcu_readers")
    kind = "object"
    slab_destroy_by_rcu = False

    def __init__(self) -> None:
        self._allocated = _where()
        self._freed: tuple[str, int] | None = None
        # For SLAB_DESTROY_BY_RCU objects: the tasks that were non-preemptible at kfree time,
        # with their atomic_epoch then; each may keep using the object until it leaves that
        # non-preemptible section (the grace period cannot end before).
        self._rcu_readers: dict[object, int] = {}

    @property
    def freed(self) -> bool:
        return self._freed is not None


def kfree(obj: KObject, *, destroy_by_rcu: bool | None = None) -> None:
    """Free ``obj``: later accesses are use-after-free findings; a second free is one too.

    ``destroy_by_rcu``: whether the object's cache was created ``SLAB_DESTROY_BY_RCU``
    (None: what its type says, ``slab_destroy_by_rcu``; a catalog bug frees an anon_vma as a
    cache without the flag would).
    """
    if obj._freed is not None:
        _report(obj, "double free")
    obj._freed = _where()
    if destroy_by_rcu is None:
        destroy_by_rcu = obj.slab_destroy_by_rcu
    if destroy_by_rcu:
        obj._rcu_readers = {t: t.atomic_epoch for t in HOOKS.rq.tasks if t.atomic}


def kreuse(obj: KObject) -> None:
    """The slab hands ``obj``'s freed memory out again as a new object (no constructor runs:
    a SLAB_DESTROY_BY_RCU cache's ctor ran once, when the slab page was filled).

    It is live from now on: stale pointers to it are no longer KASAN findings.
    """
    assert obj._freed is not None  # harness: only a free object is handed out again
    obj._freed = None
    obj._allocated = _where()
    obj._rcu_readers = {}


def kasan_check(obj: KObject, access: str) -> None:
    """Report ``access`` to ``obj`` if it has been freed."""
    if obj._freed is not None:
        if obj._rcu_readers:
            task = HOOKS.rq.current
            epoch = obj._rcu_readers.get(task)
            if task is not None and task.atomic and epoch == task.atomic_epoch:
                return  # still inside the section that began before the free
        _report(obj, access)


def _report(obj: KObject, access: str) -> None:
    task, step = _where()
    assert obj._freed is not None  # harness: only freed objects are reported
    raise KernelFinding(
        "use-after-free",
        f"KASAN: use-after-free in {access} on {obj.kind} {obj!r}",
        {
            "object": repr(obj),
            "access": access,
            "accessed_by": f"{task} at step {step}",
            "allocated_by": f"{obj._allocated[0]} at step {obj._allocated[1]}",
            "freed_by": f"{obj._freed[0]} at step {obj._freed[1]}",
        },
    )
