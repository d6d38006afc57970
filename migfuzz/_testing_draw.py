"""Hypothesis strategies for scenarios and schedules of the model, and one run of a drawn pair
(``migfuzz.testing`` re-exports them; docs/testing.md shows a property test).

:func:`scenarios` draws from the space of the swarm generator (``stress.scenarios.compose``,
the code behind ``generate(seed)``), every choice a Hypothesis draw: a boolean per ``chance``
(shrinking toward its simple outcome: an op kind off, no sibling thread, one migrator, no
kswapd), an integer per count (toward its lower bound: fewer operations). Drawing one seed and
calling ``generate`` would give the same space but shrink nothing: a smaller seed is not a
smaller scenario.

:func:`schedules` draws :class:`Preemptions`: the task that starts, then up to
``max_preemptions`` switches "run on for N decisions, then switch to task T", read by
:class:`stress.schedulers.PreemptScheduler` (the ``fuzz_preempt`` encoding, one byte per
switch). Not one task id per decision: the runnable set at a decision is known only while
running, so a drawn list of task ids would mostly not apply, and shrinking it would not
remove preemptions; a drawn list of switches always applies (a switch to a task that cannot
run goes to the next one), and shrinking deletes switches and moves them earlier. The run's
decisions (``Outcome.schedule``) replay exactly through the replay scheduler, which is how a
finding of a drawn pair becomes a finding file (``check_schedule``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from hypothesis import strategies as st

from stress import DEFAULT_MAX_STEPS, Outcome
from stress.run import run_scenario
from stress.scenarios import compose
from stress.schedulers import PreemptScheduler
from stress.workload import Scenario

from .bugs import check_bugs, check_fixes, injected

T = TypeVar("T")

MAX_PREEMPTIONS = 8
"""Default bound of :func:`schedules`: the catalog's deepest races need 2 (bench/fuzz.md)."""


class _Draws:
    """A :class:`stress.scenarios.Chooser` whose every choice is a Hypothesis draw."""

    def __init__(self, draw: st.DrawFn) -> None:
        self._draw = draw

    def chance(self, p: float, *, simple: bool = False) -> bool:
        # booleans shrink to False: False is the simple outcome
        return self._draw(st.booleans()) != simple

    def randint(self, a: int, b: int) -> int:
        return self._draw(st.integers(a, b))

    def choice(self, seq: Sequence[T]) -> T:
        return self._draw(st.sampled_from(seq))

    def randrange(self, n: int) -> int:
        return self._draw(st.integers(0, n - 1))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A valid scenario of the swarm generator's space (1-2 processes and their forked
    children, sibling threads, one or two migrators, kswapd, world options), shrinkable."""
    chooser = _Draws(draw)
    return compose(lambda _stream: chooser, "hypothesis")


@dataclass(frozen=True)
class Preemptions:
    """A schedule as preemptions: task ``start`` runs first; each ``(n, task)`` of
    ``switches`` means "run on for ``n`` decisions, then switch to ``task``"; between
    switches the current task runs on (the lowest runnable one when it cannot)."""

    ntasks: int
    start: int = 0
    switches: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        n = self.ntasks
        if not 1 <= n <= 255 or not 0 <= self.start < n:
            raise ValueError(f"Preemptions: start {self.start} is not a task of {n}")
        for run, task in self.switches:
            if not (0 <= task < n and 0 <= run * n + task <= 255):
                raise ValueError(f"Preemptions: switch ({run}, {task}) is not one byte for "
                                 f"{n} tasks (0 <= task < {n}, run <= {(255 - task) // n})")

    def data(self) -> bytes:
        """The ``fuzz_preempt`` bytes of this schedule (stress/schedulers/preempt.py)."""
        n = self.ntasks
        return bytes([self.start, *(run * n + task for run, task in self.switches)])

    def scheduler(self) -> PreemptScheduler:
        return PreemptScheduler(self.data(), self.ntasks)


def schedules(scenario: Scenario, *, max_preemptions: int = MAX_PREEMPTIONS
              ) -> st.SearchStrategy[Preemptions]:
    """Schedules of ``scenario``'s tasks with at most ``max_preemptions`` switches; shrinks
    toward fewer switches, each earlier and to a lower task."""
    n = len(scenario.tasks)
    # a switch is one byte b: run on b // n decisions, then task b % n
    switch = st.integers(0, 255).map(lambda b: (b // n, b % n))
    return st.builds(Preemptions, ntasks=st.just(n), start=st.integers(0, n - 1),
                     switches=st.lists(switch, max_size=max_preemptions).map(tuple))


def run_schedule(scenario: Scenario, schedule: Preemptions | None = None, *,
                 bugs: Sequence[str] = (), fixes: Sequence[str] = ("all",),
                 executor: str = "direct", max_steps: int = DEFAULT_MAX_STEPS,
                 trace: bool = False) -> Outcome:
    """One run of ``scenario`` under ``schedule`` (None: no preemption) with the catalog
    ``bugs`` injected on top of the upstream ``fixes`` (default all of them: what fails is a
    bug or a race of the scenario, not a flaw of the 2006 code; ``()`` is V2 as posted).

    Raises:
        UsageError (a ValueError): an unknown bug or fix name.
    """
    sched = (schedule or Preemptions(len(scenario.tasks))).scheduler()
    with injected(check_bugs(bugs), check_fixes(fixes)):
        sched.new_execution()
        return run_scenario(scenario, sched, executor=executor, max_steps=max_steps,
                            trace=trace)
