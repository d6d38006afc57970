"""Probabilistic Concurrency Testing (PCT): random priorities plus d-1 priority change points.

The algorithm is from "A Randomized Scheduler with Probabilistic Guarantees of Finding Bugs",
Burckhardt, Kothari, Musuvathi and Nagarakatte, ASPLOS 2010. For a program with ``n`` tasks
and ``k`` scheduling decisions, one execution finds a given bug of depth ``d`` (one that needs
``d`` ordering constraints to show) with probability at least ``1 / (n * k**(d-1))``. Like
shuttle's ``PctScheduler`` (shuttle-schedulers/src/pct.rs), it learns ``k`` from the executions
it has run instead of asking for it up front.

Each execution:

1. gives every task a random priority, all distinct (a task first seen mid-run gets a random
   rank among the tasks not yet lowered);
2. picks ``d - 1`` distinct change points uniformly among decisions ``1 .. k-1`` (decision 0
   has no running task to lower, and the random initial priorities already cover it);
3. at every decision runs the highest-priority runnable task; at a change point, it first
   lowers the task that reached the point below every other priority, the latest change
   lowest, as ``d - i`` does in the paper.

Only decisions (points with two or more runnable tasks, see ``Execution.pick``) are counted, as
in shuttle: the paper (section 4.1, "Identifying Sequential Execution") notes that a change
point during a sequential stretch can be moved to where the second task becomes runnable.

``yielding`` does *not* lower a priority, unlike shuttle, which deprioritises a yielding task.
That would make PCT fair to busy-wait loops, and an unfair scheduler is exactly how a yield()
busy-wait shows: V2 2/5's ``do_swap_page`` answered a migration entry with ``yield()`` and a
re-fault, and while the faulting task keeps the higher priority the migrator never runs to
remove the entry (``target/bugs/yield_busy_wait.py``). yield() promises nothing more in Linux
either: with no other task of higher priority, the yielding task runs again at once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

DEFAULT_MAX_STEPS_HINT = 100
"""Decisions expected in an execution before any has been seen.

A canonical migrate-vs-* scenario makes 20 to 120 decisions under a random walk; a hint that
is far too large wastes change points past the end of the run, one far too small crowds them
at the start. Both only cost probability, never correctness.
"""


class PCTScheduler:
    """PCT of depth ``depth`` over ``iterations`` executions (None: until the caller stops).

    Invariant: execution ``i`` of seed ``s`` is the same on every run and executor, given the
    same program in executions ``0 .. i``: its random draws come from a generator seeded with
    ``(s, i)`` alone; only the estimate ``k`` depends on how long executions ``0 .. i-1`` were.
    """

    def __init__(
        self,
        seed: int,
        depth: int = 3,
        max_steps_hint: int = DEFAULT_MAX_STEPS_HINT,
        iterations: int | None = None,
    ) -> None:
        """Create the strategy; ``new_execution`` starts the first execution.

        Args:
            seed: master seed; execution ``i`` draws from ``(seed, i)``.
            depth: the bug depth ``d`` targeted; ``d - 1`` change points per execution.
                Depth 1 never preempts a runnable task.
            max_steps_hint: the number of decisions ``k`` assumed until an execution has
                been seen; later executions use the longest one seen instead.
            iterations: how many executions to run; None for no limit.

        Raises:
            ValueError: ``depth`` or ``max_steps_hint`` is less than 1.
        """
        if depth < 1:
            raise ValueError(f"PCT depth must be at least 1, got {depth}")
        if max_steps_hint < 1:
            raise ValueError(f"max_steps_hint must be at least 1, got {max_steps_hint}")
        self.seed = seed
        self.depth = depth
        self.iterations = iterations
        self.execution = -1
        # The estimate of k: the hint until an execution made a decision, then the longest
        # execution seen (shuttle probes with a first run instead). Like shuttle's, it only
        # grows: a run cut off at max_steps (a livelock) inflates it for the rest of this
        # scheduler's executions, which spreads their change points thinner.
        self.max_steps_hint = max_steps_hint
        self.max_steps = max_steps_hint
        self._longest = 0
        self._rng = random.Random(f"pct:{seed}:0")
        # invariants: keys are the tids seen this execution, values all distinct;
        # never-lowered tasks have values in [0, 1), lowered ones -1, -2, ... in lowering order,
        # so every lowered task ranks below every other and the latest lowered lowest.
        self._priority: dict[int, float] = {}
        self._next_lowered = -1.0
        # invariant: len(change_points) == min(depth - 1, max(max_steps - 1, 0)), all in
        # [1, max_steps - 1]; a change point is an index into this execution's decisions.
        self.change_points: frozenset[int] = frozenset()
        # Decisions made so far in this execution.
        self.steps = 0

    def __repr__(self) -> str:
        return f"PCTScheduler(seed={self.seed}, depth={self.depth})"

    def new_execution(self) -> bool:
        self._longest = max(self._longest, self.steps)  # the execution that just ended
        if self._longest:
            self.max_steps = self._longest
        self.execution += 1
        if self.iterations is not None and self.execution >= self.iterations:
            return False
        self._rng = random.Random(f"pct:{self.seed}:{self.execution}")
        self._priority = {}
        self._next_lowered = -1.0
        self.steps = 0
        points = min(self.depth - 1, max(self.max_steps - 1, 0))
        self.change_points = frozenset(self._rng.sample(range(1, self.max_steps), points))
        return True

    def _rank_new(self, tid: int) -> None:
        """Give ``tid`` a uniformly random rank among the tasks never lowered."""
        prio = self._priority
        taken = set(prio.values())
        value = self._rng.random()
        while value in taken:  # distinct priorities; a repeat is astronomically rare
            value = self._rng.random()
        prio[tid] = value

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        prio = self._priority
        for tid in runnable:
            if tid not in prio:
                self._rank_new(tid)
        if self.steps in self.change_points and current is not None:
            self._lower(current)
        self.steps += 1
        return max(runnable, key=prio.__getitem__)

    def _lower(self, current: int) -> None:
        """Lower ``current`` below every task, the latest lowered lowest.

        The paper lowers the task that executed the step at the change point: the one that
        reached this point, whether or not it can still run.
        """
        if current not in self._priority:
            self._rank_new(current)
        self._priority[current] = self._next_lowered
        self._next_lowered -= 1.0
