"""What DPOR knows of a step: the accesses it made, and which steps happen before which.

A *step* is what a task runs between two scheduling points. It makes the access its point
announced (``target.kernel.PendingOp``) and then runs on without a point until the next one.
The model puts a point before the accesses that race (``target.kernel._sched``), but not
before every access, so a step's event is its announced access plus every access it made
past its point, as the model records them for DPOR (``target.kernel.touch``, into
``Runqueue.touches``): every field access of a page (``stress.run`` switches the machine's
pages to ``target.mm.types.TracedPage``), the process table and ``task->mm``, ``mm_users``.
Without the page accesses, a ``get_page`` under tree_lock looked independent of a
``put_page`` of the same page, and DPOR missed 2 of swapin-vs-reclaim's 8 final states.
Where a key cannot tell objects apart (one without a name or a pfn is keyed by its type),
they count as one: more steps are dependent, never fewer. The rules, checked against
exhaustive DFS (tests/test_dpor.py: the same final states and findings on the gate's
scenarios; bench/dpor.md on sixteen more searches):

* a ``NONE`` point (a task's start, ``cond_resched``, entering a system call, a sleep until
  another task exits) announces nothing: its step is what it touches past the point (a
  system call's entry reads the process table: ``stress.workload.run_op``). Until the
  touches, every ``NONE`` step was taken to touch everything, which ordered it with every
  step of every other task and kept DPOR at 1.7x fewer schedules than DFS;
* a step of the interrupt actor is what it touches too: the bio queue its point names, the
  page's fields and wait bits (``TracedWaitBit``), the slot's data; ``submit_bio`` touches
  the queue it appends to. Until then the actor's steps were taken to touch everything, and
  DPOR ran all 214 schedules of migrate-vs-writeback at bound 1 (now 7, the same 2 final
  states; 5,330 against 9 at bound 2);
* a release: the lock is dropped inside a step and the task's *next* point is the
  ``RELEASE`` of it (``target.kernel.Released``), so that step writes the lock, and so does
  the step after the ``RELEASE`` point (with it local, DPOR misses a final state of
  tiny-migrate-fault: code after an unlock runs on to the next point);
* an ``rcu_read_lock`` section excludes nobody: its release touches nothing;
* a wake-up: a task that was blocked (a lock waiter, a sleeper on another task's exit, the
  idle interrupt actor) is runnable after the step; the woken task's next step happens after
  it (an edge of the order, like the spawn of a task, not a race: the woken step cannot run
  first), while the access that blocked it (the lock, the exit) is what races;
* an exit: the step ends its task; it writes ``("exit", tid)``, which a join of that task
  reads (an object with a ``task`` attribute, ``migfuzz.testing.Thread``, names that key).

Keys are stable across executions (the scheduler compares a step of one execution with a
step of the next in its sleep sets): a lock or an mm by its name, a page by its pfn, anything
else by its type alone. Two objects with one key are merely treated as one (more steps are
dependent, never fewer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from target.kernel import NONE, READ, RELEASE, Action, KTask, LockClass, Runqueue

Key = tuple[object, ...]

RCU_READ_LOCK = "rcu_read_lock"
"""The lock class of ``rcu_read_lock()``: lockdep's, not a lock anybody waits for (the
model has no ``synchronize_rcu``; SLAB_DESTROY_BY_RCU is KASAN's type-stability rule)."""


@dataclass(frozen=True)
class Ev:
    """The accesses of one step: (key, writes) pairs."""

    acc: tuple[tuple[Key, bool], ...] = ()

    def plus(self, key: Key) -> Ev:
        """This step, also writing ``key``."""
        return Ev((*self.acc, (key, True)))


LOCAL = Ev()


def dependent(a: Ev, b: Ev) -> bool:
    """Two steps (of different tasks) do not commute: one key, at least one write."""
    for key, w in a.acc:
        for key2, w2 in b.acc:
            if key == key2 and (w or w2):
                return True
    return False


def _stable(obj: object) -> object:
    task = getattr(obj, "task", None)
    if isinstance(task, KTask):  # a join target (migfuzz.testing.Thread): its task's exit
        return ("exit", task.tid)
    name = getattr(obj, "name", None)
    if isinstance(name, str):
        return name
    pfn = getattr(obj, "pfn", None)
    return pfn if isinstance(pfn, int) else None


def declared(task: KTask) -> Ev:
    """The access ``task``'s pending point announces (nothing for ``NONE``; for a
    ``RELEASE``, the lock: see the module docstring)."""
    return _access(task.op_obj, task.op_action, task.op_part)


def _access(obj: object, action: Action, part: object) -> Ev:
    if action == NONE or obj is None:
        return LOCAL
    stable = _stable(obj)
    if isinstance(stable, tuple):
        return Ev((((stable), action != READ),))
    cls = getattr(obj, "lock_class", None)
    if isinstance(cls, LockClass):
        if cls.name == RCU_READ_LOCK:
            return LOCAL  # a read-side section excludes nobody, and nothing waits for it
        # Every lock operation writes the lock, but a shared rwsem acquisition or release
        # ("read") and a test of a bit lock (READ: wait_on_page_locked, PageLocked): two
        # readers commute, a writer's acquisition conflicts with both.
        return Ev((((type(obj).__name__, stable), part != "read" and action != READ),))
    return Ev((((type(obj).__name__, stable, part), action != READ),))


@dataclass
class Step:
    """One step of the current execution, with its place in the happens-before order."""

    tid: int
    ev: Ev = LOCAL
    local: int = 0  # 1 for the task's first step
    vc: dict[int, int] = field(default_factory=dict)  # tid -> its last step before (incl.)


def finish(ev: Ev, task: KTask, rq: Runqueue, before: tuple[int, ...],
           ntasks: int) -> tuple[Ev, list[int]]:
    """``ev`` with the unannounced effects of the step just run (module docstring), and the
    tasks it woke.

    ``before`` is the runnable set and ``ntasks`` the number of tasks when the step was
    chosen (a task spawned by the step is born, not woken).
    """
    touches = rq.touches
    if touches:
        acc = list(ev.acc)
        # A step reads a page's flags a dozen times: each distinct access once, in order.
        distinct = {(id(obj), action, part): (obj, action, part)
                    for obj, action, part in touches}
        for obj, action, part in distinct.values():
            acc.extend(_access(obj, action, part).acc)
        ev = Ev(tuple(acc))
        touches.clear()
    if task.finished:
        ev = ev.plus(("exit", task.tid))
    elif task.op_action == RELEASE and task.op_obj is not None:
        ev = Ev(ev.acc + _access(task.op_obj, RELEASE, task.op_part).acc)
    woken = [t for t in rq.runnable_tids if t not in before and t != task.tid and t < ntasks]
    return ev, woken


class Clocks:
    """Happens-before of one execution, built step by step: program order, plus each pair
    of dependent steps in trace order, as vector clocks; and the races of each new step."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self._last_write: dict[Key, int] = {}
        self._reads: dict[Key, dict[int, int]] = {}
        self._last_of: dict[int, int] = {}
        # tid -> steps its next step must follow (the step that spawned or woke it)
        self._after: dict[int, list[int]] = {}

    def hb(self, i: int, j: int) -> bool:
        """Step ``i`` happens before step ``j`` (or is it)."""
        a = self.steps[i]
        return self.steps[j].vc.get(a.tid, 0) >= a.local

    def after(self, tid: int, step: int) -> None:
        """Task ``tid`` was spawned or woken by ``step``: its next step happens after it."""
        self._after.setdefault(tid, []).append(step)

    def add(self, step: Step, races: bool = True) -> list[int]:
        """Append ``step``; return the earlier steps it races with (dependent, of another
        task, and not ordered before it through any other step), if ``races``."""
        steps, tid, ev = self.steps, step.tid, step.ev
        k = len(steps)
        prev = self._last_of.get(tid)
        preds = self._after.pop(tid, [])
        if prev is not None:
            preds.append(prev)
        vc: dict[int, int] = {}
        for p in preds:
            _join(vc, steps[p].vc)
        step.local = vc.get(tid, 0) + 1
        vc[tid] = step.local
        cands: set[int] = set()
        for key, w in ev.acc:
            lw = self._last_write.get(key)
            if lw is not None:
                cands.add(lw)
            if w and key in self._reads:
                cands.update(self._reads[key].values())
        others = [(c, steps[c]) for c in sorted(cands) if steps[c].tid != tid]
        found = []
        if races:
            # A candidate ordered before a predecessor, or before another candidate, is
            # ordered before this step through it: not a race.
            for c, a in others:
                if vc.get(a.tid, 0) < a.local and not any(
                        b is not a and b.vc.get(a.tid, 0) >= a.local for _, b in others):
                    found.append(c)
        for _, a in others:
            _join(vc, a.vc)
        step.vc = vc
        steps.append(step)
        for key, w in ev.acc:
            if w:
                self._last_write[key] = k
                self._reads.pop(key, None)
            else:
                self._reads.setdefault(key, {})[tid] = k
        self._last_of[tid] = k
        return found

    def initials(self, i: int, k: int) -> set[int]:
        """The tasks that can start ``notdep(e_i).e_k``: the steps after ``i`` that do not
        happen after it, then ``k``; a task is an initial when its first step there has no
        predecessor there (Abdulla et al., POPL 2014, Definition 3.3 and Algorithm 1)."""
        first: dict[int, int] = {}  # tid -> its first step in v
        for m in range(i + 1, k):
            t = self.steps[m].tid
            if t not in first and not self.hb(i, m):
                first[t] = m
        tk = self.steps[k].tid
        first.setdefault(tk, k)
        local = {t: self.steps[m].local for t, m in first.items()}
        out = set()
        for t, m in first.items():
            vc = self.steps[m].vc
            if all(vc.get(r, 0) < local[r] for r in first if r != t):
                out.add(t)
        return out


def _join(vc: dict[int, int], other: dict[int, int]) -> None:
    for t, n in other.items():
        if vc.get(t, 0) < n:
            vc[t] = n
