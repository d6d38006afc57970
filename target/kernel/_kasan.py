"""Object lifetime checking, in the manner of KASAN.

Kernel objects whose lifetime the model tracks (anon_vma, vm_area_struct, mm_struct) derive
from :class:`KObject`. Freeing one poisons it: it records who freed it and when, and it is never
reused, so every later access through a stale pointer is caught deterministically (the real
slab, SLAB_DESTROY_BY_RCU for anon_vma, may reuse the memory at once and hide the access). The
model calls :func:`kasan_check` where the kernel would dereference the object; locks embedded
in an object check it on every operation.
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

    __slots__ = ("_allocated", "_freed")
    kind = "object"

    def __init__(self) -> None:
        self._allocated = _where()
        self._freed: tuple[str, int] | None = None

    @property
    def freed(self) -> bool:
        return self._freed is not None


def kfree(obj: KObject) -> None:
    """Free ``obj``: later accesses are use-after-free findings; a second free is one too."""
    if obj._freed is not None:
        _report(obj, "double free")
    obj._freed = _where()


def kasan_check(obj: KObject, access: str) -> None:
    """Report ``access`` to ``obj`` if it has been freed."""
    if obj._freed is not None:
        _report(obj, access)


def _report(obj: KObject, access: str) -> None:
    task, step = _where()
    assert obj._freed is not None
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
