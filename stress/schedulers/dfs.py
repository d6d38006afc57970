"""Exhaustive depth-first search over schedules, bounded by the number of preemptions.

In the style of CHESS's preemption bounding (Musuvathi and Qadeer, "Iterative Context
Bounding for Systematic Testing of Multithreaded Programs", PLDI 2007), loom's
``preemption_bound`` and shuttle's ``DfsScheduler`` (shuttle-schedulers/src/dfs.rs). Most
concurrency bugs need only one or two preemptions, and the number of schedules with at most
``c`` preemptions grows polynomially in the run length instead of exponentially.

A *preemption* is a decision that runs another task while ``current`` is still runnable. A
switch away from a task that blocked or finished is not one: the task gave up the CPU itself.
With bound ``c``, every schedule with at most ``c`` preemptions is run exactly once, and no
other: each execution replays the recorded prefix of decisions, then takes the next untried
alternative at the deepest decision that has one.

The search is complete only if the program is deterministic given its schedule: replaying a
prefix must reach the same decisions with the same runnable tasks. The model is (it draws no
random data, see ``_protocol``), and a divergence is reported rather than ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class NondeterminismError(RuntimeError):
    """Replaying a recorded prefix reached a different decision: the search is unsound."""


@dataclass
class _Point:
    """One decision of the current path.

    Invariants:
        ``choices`` is non-empty; it lists the alternatives the bound allows, the
        non-preempting one (``current``, when runnable) first.
        ``0 <= index < len(choices)``; ``choices[index]`` is the choice on the current path
        and ``choices[:index]`` have been explored with this prefix.
        ``preemptions`` counts the preemptions among the decisions before this one.
    """

    runnable: tuple[int, ...]
    current: int | None
    choices: tuple[int, ...]
    index: int
    preemptions: int


class DFSScheduler:
    """Every schedule with at most ``preemption_bound`` preemptions, once each.

    Executions end when the search is exhausted or ``max_executions`` have run.
    """

    def __init__(
        self, preemption_bound: int | None = 2, max_executions: int | None = None
    ) -> None:
        """Create the search; ``new_execution`` starts the first execution.

        Args:
            preemption_bound: the most preemptions a schedule may have; None for no bound
                (every interleaving, exponentially many).
            max_executions: stop after this many executions even if the search is not done.

        Raises:
            ValueError: a negative bound or execution limit.
        """
        if preemption_bound is not None and preemption_bound < 0:
            raise ValueError(f"preemption_bound must be >= 0 or None, got {preemption_bound}")
        if max_executions is not None and max_executions < 0:
            raise ValueError(f"max_executions must be >= 0 or None, got {max_executions}")
        self.preemption_bound = preemption_bound
        self.max_executions = max_executions
        self.executions = 0  # executions started (each is a distinct schedule)
        # invariant: the decisions of the current path, in order; between executions it is
        # the path of the last one, during one its prefix up to ``depth``.
        self._stack: list[_Point] = []
        self._depth = 0  # decisions made in the current execution
        self._exhausted = False

    def __repr__(self) -> str:
        return f"DFSScheduler(preemption_bound={self.preemption_bound})"

    @property
    def exhausted(self) -> bool:
        """Every schedule within the bound has been explored."""
        return self._exhausted

    def new_execution(self) -> bool:
        """Advance to the next unexplored schedule; False when there is none (or the limit).

        Raises:
            NondeterminismError: the last execution ended before replaying its whole prefix.
        """
        if self._exhausted:
            return False
        if self.executions > 0:
            if self._depth < len(self._stack):
                raise NondeterminismError(
                    f"execution {self.executions - 1} ended after {self._depth} decisions, "
                    f"before the {len(self._stack)} its prefix recorded: the program is not "
                    "deterministic given its schedule, so DFS cannot explore it"
                )
            if not self._backtrack():
                self._exhausted = True
                return False
        if self.max_executions is not None and self.executions >= self.max_executions:
            return False
        self.executions += 1
        self._depth = 0
        return True

    def _backtrack(self) -> bool:
        """Move the deepest point with an untried alternative to it; False if none is left."""
        stack = self._stack
        while stack:
            top = stack[-1]
            if top.index + 1 < len(top.choices):
                top.index += 1
                return True
            stack.pop()
        return False

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        """Replay the prefix, then take the first allowed choice at each new decision.

        Raises:
            NondeterminismError: a replayed decision sees different runnable tasks.
        """
        depth = self._depth
        self._depth = depth + 1
        stack = self._stack
        if depth < len(stack):
            point = stack[depth]
            if point.runnable != tuple(runnable) or point.current != current:
                raise NondeterminismError(
                    f"decision {depth} of execution {self.executions - 1}: replaying the "
                    f"prefix found runnable {list(runnable)} (current {current}), recorded "
                    f"{list(point.runnable)} (current {point.current}): the program is not "
                    "deterministic given its schedule"
                )
            return point.choices[point.index]
        before = 0
        if stack:
            last = stack[-1]
            before = last.preemptions + _is_preemption(last)
        stack.append(
            _Point(tuple(runnable), current, self._choices(runnable, current, before), 0, before)
        )
        return stack[-1].choices[0]

    def _choices(
        self, runnable: Sequence[int], current: int | None, before: int
    ) -> tuple[int, ...]:
        """The alternatives at a new decision, ``before`` preemptions into the path."""
        if current is None or current not in runnable:
            return tuple(runnable)  # current blocked, finished or not started: no preemption
        if self.preemption_bound is not None and before >= self.preemption_bound:
            return (current,)
        return (current, *(t for t in runnable if t != current))


def _is_preemption(point: _Point) -> int:
    """1 if the choice taken at ``point`` preempts its current task, else 0."""
    choice = point.choices[point.index]
    return int(point.current is not None and point.current in point.runnable
               and choice != point.current)
