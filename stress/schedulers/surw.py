"""Selectively uniform random walk (SURW): interleavings of the interesting events, sampled
uniformly.

The algorithm is from "Selectively Uniform Concurrency Testing", Zhao, Wolff, Mathur and
Roychoudhury, ASPLOS 2025, as shuttle's ``urw.rs`` (shuttle-schedulers/src/urw.rs) and
Fray's ``SURWScheduler.kt`` implement it. A random walk (:mod:`.random`) draws interleavings
very unevenly: with two tasks of 1 and 25 events, it runs the short task's event among the
first few of the long one's almost always. Choosing the next task with probability
proportional to the number of events it has *left* draws every interleaving with the same
probability (the multinomial count of the extensions, the paper's section 3.1). SURW makes
that choice only for the *interesting* events, so the rest do not dilute it.

Here an event is a point a task passes (every pick, a decision or not, reaches
:meth:`SURWScheduler.observe_op`); it is interesting when its pending operation touches a
shared model object (:func:`._conflict.access` is not None: a lock, a pte, a page's count
or flags..., a :class:`migfuzz.testing.Shared`); ``NONE`` is not. At a decision (Fray's
loop, the paper's Algorithm 2):

1. a runnable task not blocked *for this round* is drawn uniformly; if its pending
   operation is not interesting, it runs;
2. otherwise the round's *intended* task is drawn, if none is, among the unblocked runnable
   tasks with weight their remaining interesting events (at least 1 for a task that is about
   to make one); the drawn task runs if it is the intended one (the round ends: the blocked
   set is cleared), else it is blocked for the round and step 1 repeats. When every runnable
   task is blocked (the intended one cannot run), the round starts afresh.

A task's remaining events are its estimate minus the interesting events it has made in this
execution (never below 0). The estimates come from a first execution, a random walk that
counts each task's interesting events (``estimates=None``: execution 0 is that run, as in
shuttle and Fray), then grow with every later execution (per task, the largest count seen:
:meth:`SURWScheduler._refined`); or they are given: a stress campaign runs such a first run
once per scenario, as it measures PCT's ``k`` (``migfuzz.campaign``'s ``probe_estimates``),
and records the estimates in the strategy's spec so that the run rebuilds. A task spawned
during the execution (migfuzz.testing's ``spawn``) counts, in its parent's estimate, its own
events and its descendants' (shuttle's parent subsumption): when it appears, its estimate
moves from the parent to it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from target.kernel import PendingOp

from ._conflict import access


def format_estimates(estimates: Sequence[int]) -> str:
    """The estimates as a spec parameter: ``"3,0,12"`` (task 0's first)."""
    return ",".join(str(n) for n in estimates)


def parse_estimates(text: str) -> tuple[int, ...]:
    """The estimates of :func:`format_estimates`; ValueError naming the problem."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"SURW estimates must be comma-separated counts, not {text!r}") from None
    if any(v < 0 for v in values):
        raise ValueError(f"SURW estimates must be non-negative, not {text!r}")
    return values


def interesting(op: PendingOp) -> bool:
    """Whether ``op`` is an event SURW samples uniformly: an access to a shared object."""
    return access(op) is not None


class SURWScheduler:
    """SURW over ``iterations`` executions (None: until the caller stops).

    Invariant: execution ``i`` of seed ``s`` with the same estimates is the same on every run
    and executor: its draws come from a generator seeded with ``(s, i)`` alone.
    """

    def __init__(self, seed: int, estimates: Sequence[int] | str | None = None,
                 iterations: int | None = None) -> None:
        self.seed = seed
        self.iterations = iterations
        self.execution = -1
        if isinstance(estimates, str):
            estimates = parse_estimates(estimates)
        # None until known: the first execution then measures them (a random walk).
        self.estimates: tuple[int, ...] | None = (
            None if estimates is None else tuple(estimates))
        self._rng = random.Random(f"surw:{seed}:0")
        self._own: dict[int, int] = {}  # interesting events made per tid, this execution
        self._parent: dict[int, int] = {}  # tid -> the tid that spawned it, this execution
        self._remaining: dict[int, int] = {}
        self._last: int | None = None  # the task of the last observed step
        self._blocked: set[int] = set()
        self._intended: int | None = None
        self.rounds = 0  # weighted draws of an intended task, this execution (tests read it)

    def __repr__(self) -> str:
        return f"SURWScheduler(seed={self.seed})"

    @property
    def estimating(self) -> bool:
        """Whether this execution is the first run that measures the estimates."""
        return self.estimates is None

    def new_execution(self) -> bool:
        if self.execution >= 0:
            self.estimates = self._refined()
        self.execution += 1
        if self.iterations is not None and self.execution >= self.iterations:
            return False
        self._rng = random.Random(f"surw:{self.seed}:{self.execution}")
        self._own = {}
        self._parent = {}
        self._remaining = {}
        self._last = None
        self._blocked = set()
        self._intended = None
        self.rounds = 0
        return True

    def _refined(self) -> tuple[int, ...]:
        """The estimates after this execution: per tid, the larger of the estimate and what
        this execution measured. A task whose path depends on the data (twostage_bad's
        reader returns early when it runs first) is under-counted by a first run that took
        the short path; keeping the estimate fixed starved the long path (median 163
        schedules on twostage_bad, seeds 0-4, against 10 with this)."""
        measured = self.measured()
        if self.estimates is None:
            return measured
        old = self.estimates
        size = max(len(old), len(measured))
        return tuple(max(old[t] if t < len(old) else 0, measured[t] if t < len(measured) else 0)
                     for t in range(size))

    def measured_own(self) -> tuple[int, ...]:
        """Per tid, the interesting events it made itself in this execution."""
        return tuple(self._own.get(tid, 0) for tid in range(max(self._own, default=-1) + 1))

    def measured(self) -> tuple[int, ...]:
        """The estimates this execution's counts give: per tid, its interesting events and
        its descendants' (tids grow with spawn order, so children are summed first)."""
        total = dict(self._own)
        for tid in sorted(self._parent, reverse=True):
            parent = self._parent[tid]
            total[parent] = total.get(parent, 0) + total.get(tid, 0)
        size = max(total, default=-1) + 1
        return tuple(total.get(tid, 0) for tid in range(size))

    # -- what every step tells us ---------------------------------------------------------

    def observe_op(self, op: PendingOp) -> None:
        """Task ``op.tid`` is about to perform ``op`` (every pick, decision or not)."""
        tid = op.tid
        self._see(tid)
        self._last = tid
        if interesting(op):
            self._own[tid] = self._own.get(tid, 0) + 1
            left = self._remaining.get(tid, 0)
            if left:
                self._remaining[tid] = left - 1

    def _see(self, tid: int) -> None:
        """Meet ``tid``: a task met for the first time after a step was spawned by that
        step's task, and takes its estimate over from it."""
        if tid in self._remaining:
            return
        est = self._estimate(tid)
        self._remaining[tid] = est
        parent = self._last
        if parent is not None:
            self._parent[tid] = parent
            self._remaining[parent] = max(self._remaining.get(parent, 0) - est, 0)

    def _estimate(self, tid: int) -> int:
        est = self.estimates
        if est is None:
            return 0
        if tid < len(est):
            return est[tid]
        # A task the first run never had: as shuttle does, the smallest count measured.
        return min((n for n in est if n), default=1)

    # -- the decision ---------------------------------------------------------------------

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        """Without pending operations nothing is interesting: a random walk. The execution
        always asks :meth:`next_task_pending`."""
        return runnable[self._rng.randrange(len(runnable))]

    def next_task_pending(self, runnable: Sequence[int], current: int | None, yielding: bool,
                          pending: Sequence[PendingOp]) -> int:
        for tid in runnable:
            self._see(tid)
        if self.estimates is None:
            return runnable[self._rng.randrange(len(runnable))]
        ops = dict(zip(runnable, pending, strict=True))
        rng = self._rng
        while True:
            free = [t for t in runnable if t not in self._blocked]
            if not free:  # the intended task cannot run: a fresh round
                self._blocked.clear()
                self._intended = None
                free = list(runnable)
            tid = free[rng.randrange(len(free))]
            if not interesting(ops[tid]):
                return tid
            if self._remaining[tid] == 0:
                self._remaining[tid] = 1  # it is about to make one: the estimate was short
            if self._intended is None:
                self._intended = self._draw(free)
            if tid == self._intended:
                self._intended = None
                self._blocked.clear()
                return tid
            self._blocked.add(tid)

    def _draw(self, free: Sequence[int]) -> int:
        """A task of ``free`` with probability proportional to its remaining events."""
        self.rounds += 1
        weights = [self._remaining[t] for t in free]
        total = sum(weights)  # >= 1: the caller's task is in ``free`` with a weight >= 1
        pick = self._rng.randrange(total)
        for tid, w in zip(free, weights, strict=True):
            if pick < w:
                return tid
            pick -= w
        raise AssertionError("unreachable: pick < total")
