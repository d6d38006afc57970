"""lockdep: lock classes, per-task held-lock stacks, and the class dependency graph.

Like the kernel's lockdep (kernel/lockdep.c, 2.6.18), it proves a deadlock *possible* from the
orders it has seen, without the deadlock having to happen:

* every lock belongs to a :class:`LockClass`; nesting annotations (``spin_lock_nested``,
  ``down_write_nested``) select a subclass, and the graph's vertices are (class, subclass);
* acquiring B while holding A adds the edge A -> B, remembering the first acquisition that
  showed it (task, step, the held stack); an edge that closes a cycle is reported at once as a
  ``lock-order-inversion`` with both chains;
* the documented order (``declare_order``, written once as the mm/rmap.c "Lock ordering in mm"
  tree) is part of the graph from the start, so a single acquisition against it is reported
  even before the reverse order has been observed;
* trylocks cannot deadlock: they add no edge *to* the lock, but once held they are sources of
  edges like any other lock (kernel lockdep does the same);
* recursive acquisition, acquiring a second lock of a class already held without a nesting
  annotation, releasing a lock not held, and returning with locks held are ``lock-misuse`` /
  ``lock-not-held`` findings; :func:`lockdep_assert_held` backs the ``Context:`` lines.

The graph lives on the run queue, so it is per execution: a replay starts from the same graph
and reports the same thing. A campaign-wide graph would find more orders but could not be
replayed from one schedule.
"""

from __future__ import annotations

from collections import deque
from itertools import pairwise
from typing import Any, Protocol

from ._bug import KernelFinding

ClassKey = tuple[str, int]  # (class name, subclass)


class LockClass:
    """A lock class, as lockdep keys them: every ptl is one class, every anon_vma->lock another."""

    __slots__ = ("name", "sleeping")

    def __init__(self, name: str, *, sleeping: bool) -> None:
        self.name = name
        self.sleeping = sleeping

    def __repr__(self) -> str:
        return f"<lock class {self.name}>"


class Lock(Protocol):
    """What lockdep needs of a lock instance."""

    name: str
    lock_class: LockClass
    spinning: bool


class HeldLock:
    __slots__ = ("key", "lock", "read", "step", "trylock")

    def __init__(self, lock: Lock, key: ClassKey, trylock: bool, read: bool, step: int) -> None:
        self.lock = lock
        self.key = key
        self.trylock = trylock
        self.read = read
        self.step = step

    def describe(self) -> str:
        sub = f"/{self.key[1]}" if self.key[1] else ""
        mode = " (read)" if self.read else ""
        return f"{self.lock.name} [{self.key[0]}{sub}]{mode}"


def _key_name(key: ClassKey) -> str:
    return f"{key[0]}/{key[1]}" if key[1] else key[0]


class LockGraph:
    """The class dependency graph of one execution.

    Invariants:
        ``edges[a][b]`` exists iff a -> b was observed or declared; its value says where.
        The graph is acyclic: an edge that would close a cycle is reported, not added.
    """

    __slots__ = ("edges",)

    def __init__(self) -> None:
        self.edges: dict[ClassKey, dict[ClassKey, str]] = {}
        for parent, child in DOCUMENTED_ORDER:
            self.edges.setdefault(parent, {})[child] = "documented in mm/rmap.c lock ordering"

    def path(self, src: ClassKey, dst: ClassKey) -> list[ClassKey] | None:
        """A path src ->* dst, or None. Breadth-first, so the chain reported is a shortest one."""
        if src == dst:
            return [src]
        prev: dict[ClassKey, ClassKey] = {}
        queue = deque([src])
        while queue:
            node = queue.popleft()
            for nxt in self.edges.get(node, ()):
                if nxt in prev or nxt == src:
                    continue
                prev[nxt] = node
                if nxt == dst:
                    out = [dst]
                    while out[-1] != src:
                        out.append(prev[out[-1]])
                    return out[::-1]
                queue.append(nxt)
        return None

    def add(self, held: HeldLock, new_key: ClassKey, where: str) -> None:
        a = held.key
        succ = self.edges.setdefault(a, {})
        if new_key in succ:
            return
        back = self.path(new_key, a)
        if back is not None:
            chain = [
                f"{_key_name(x)} -> {_key_name(y)}: {self.edges[x][y]}"
                for x, y in pairwise(back)
            ]
            raise KernelFinding(
                "lock-order-inversion",
                f"possible circular locking dependency: {_key_name(new_key)} "
                f"acquired while holding {_key_name(a)}",
                {
                    "new_dependency": f"{_key_name(a)} -> {_key_name(new_key)}: {where}",
                    "existing_chain": chain,
                    # the cause, not the trace: every class on the cycle, whichever of its
                    # edges happened to close it (``PG_locked/1 -> PG_locked`` closing the
                    # chain through anon_vma->lock is the same bug as anon_vma->lock ->
                    # PG_locked closing the documented one)
                    "classes": canonical_classes([a[0], *(x[0] for x in back)]),
                },
            )
        succ[new_key] = where


# Filled in by the module that owns the order (target.mm.locking): (parent, child) edges.
DOCUMENTED_ORDER: list[tuple[ClassKey, ClassKey]] = []


def canonical_classes(names: Any) -> list[str]:
    """Lock class names (subclasses dropped: ``PG_locked/1`` is ``PG_locked``), each once, in
    one order whatever order a trace met them in: the documented order first (outermost on
    top, by the number of documented ancestors), then classes it does not rank, by name.

    This is what a finding's signature says of its locks (``[PG_locked -> anon_vma->lock]``),
    so two schedules of one bug, or one cycle closed at different edges, name it alike.
    """
    depth: dict[str, int] = {}
    for (parent, _), (child, _) in DOCUMENTED_ORDER:
        depth.setdefault(parent, 0)
        depth[child] = depth.get(child, 0) + 1
    plain = {str(n).split("/", 1)[0] for n in names}
    return sorted(plain, key=lambda c: (c not in depth, depth.get(c, 0), c))


def declare_order(tree: list[tuple[str, list[Any]]]) -> None:
    """Declare the documented lock order from a nested ``(class, [children])`` tree.

    Indentation in the kernel comment means "acquired inside"; every ancestor/descendant pair
    becomes an edge, so the check does not depend on how far apart two classes are.
    """

    def walk(node: tuple[str, list[Any]], ancestors: list[str]) -> None:
        name, children = node
        for anc in ancestors:
            DOCUMENTED_ORDER.append(((anc, 0), (name, 0)))
        for child in children:
            walk(child, [*ancestors, name])

    for root in tree:
        walk(root, [])


def acquire(
    task: Any, graph: LockGraph, step: int, lock: Lock, subclass: int, trylock: bool, read: bool
) -> None:
    """lock_acquire(): validate against the held stack and the graph, then push."""
    key: ClassKey = (lock.lock_class.name, subclass)
    if not trylock:
        for h in task.held:
            if h.lock is lock:
                raise KernelFinding(
                    "lock-misuse",
                    f"recursive locking: {lock.name} already held by {task.name}",
                    {"lock": lock.name, "held": [x.describe() for x in task.held]},
                )
            if h.key == key:
                raise KernelFinding(
                    "lock-misuse",
                    f"possible recursive locking: {lock.name} while holding {h.lock.name} "
                    f"of the same class {_key_name(key)} without a nesting annotation",
                    {"lock": lock.name, "held": [x.describe() for x in task.held]},
                )
        where = (
            f"{task.name} at step {step} holding "
            + ", ".join(x.describe() for x in task.held)
            + f", acquiring {lock.name}"
        )
        for h in task.held:
            graph.add(h, key, where)
    task.held.append(HeldLock(lock, key, trylock, read, step))


def release(task: Any, lock: Lock) -> None:
    """lock_release(): pop ``lock`` from the held stack (any position), or report it."""
    held = task.held
    for i in range(len(held) - 1, -1, -1):
        if held[i].lock is lock:
            del held[i]
            return
    raise KernelFinding(
        "lock-not-held",
        f"bad unlock balance: {task.name} releases {lock.name} which it does not hold",
        {"lock": lock.name, "held": [x.describe() for x in held]},
    )


def holds(task: Any, lock: Lock, *, write: bool = False) -> bool:
    return any(h.lock is lock and not (write and h.read) for h in task.held)
