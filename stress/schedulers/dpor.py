"""Source-set DPOR with sleep sets: every Mazurkiewicz trace of a program, not every schedule.

The algorithm is "source-DPOR", Algorithm 1 of Abdulla, Aronis, Jonsson and Sagonas, "Optimal
Dynamic Partial Order Reduction", POPL 2014 (without wakeup trees), run statelessly as
:mod:`.dfs` runs its search: each execution replays a prefix of the last one, then takes an
alternative at its deepest position that has one. Two schedules that differ only in the order
of *independent* steps (steps of different tasks that touch different objects, or only read
one) reach the same state; DPOR runs one schedule of each such class (trace) and finds, from
what each execution did, the races (pairs of dependent steps not ordered otherwise) whose
reversal is a new trace: for a race between step ``e`` and a later ``e'``, some task that
can start ``notdep(e).e'`` (its *initials*) goes into the backtrack set of the state before
``e``. Sleep sets keep a task explored at a state asleep in the states after it, until a
step dependent with its own step runs: the schedules that start with it are already covered.

Which steps are dependent is :mod:`._dpor_events`' (the typed points of the model, plus the
releases, wake-ups and exits a step makes without announcing them). The scheduler sees every
step, not only the decisions: :meth:`DPORScheduler.observe` is called by the execution at
every pick (``stress._execution``), with the run queue, so it knows which task ran, what it
touched, what it woke and which tasks could run instead. A step where one task can run (or
an interrupt is due) has no alternative; a backtrack set only ever gets a task that was
runnable at its state, so an execution never has to run a task that cannot run. Where a
race's initials hold no such task (the dependence relation missed an enabling step), every
runnable task is added there instead and the event is counted (``fallbacks``).

Plain source sets with sleep sets may still run more than one schedule of a trace (the
sleep-set-blocked executions that wakeup trees avoid); such an execution is run to its end
but adds no backtrack points after the block (``sleep_blocked``), which is sound: every
continuation of it is covered by the schedule the sleeping task started.

``preemption_bound`` limits the preemptions of every schedule, as :mod:`.dfs` does. Plain
DPOR under a bound is not complete for the bounded space: a reversal a race asks for may be
out of bound where another ordering of the same trace is not, and a task asleep at a state
may be the only way into a trace within the bound (Coons, Musuvathi and McKinley, "Bounded
Partial-Order Reduction", OOPSLA 2013). So, bounded, the search adds their conservative
backtrack point (the same task right after the last context switch before the race, where
it costs no preemption), uses no sleep sets, and drops (and counts, ``pruned``) only an
alternative out of bound. tests/test_dpor.py checks that it reaches every final state and
finding DFS reaches at the same bound on the gate's scenarios. Unbounded (the default), the
search covers every trace, with sleep sets.

``seed`` only orders: the tasks tried at a fresh decision (None: the current task first, then
the lowest tid, like DFS) and the alternatives of a position (None: lowest tid first). Any
order covers the same traces; a seed varies which come first when the search is capped.
Bounded, the current task still goes first at a fresh decision whatever the seed (a seed
picks among the others at a context switch): the conservative backtrack points assume
executions that preempt only where a race asked them to, and a seeded first choice that
preempted left 3 of tiny-migrate-fault's 8 final states unseen (tests/test_dpor.py checks
seeded searches against DFS). The decisions are recorded by the execution like any
strategy's, so a schedule found by DPOR replays through ``ReplayScheduler``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from target.kernel import Runqueue

from ._dpor_events import Clocks, Ev, Step, declared, dependent, finish
from .dfs import NondeterminismError


@dataclass
class _Pos:
    """One step of the current path and the search state before it.

    ``enabled`` are the tasks that could be chosen here (one where nothing was decided);
    ``runnable`` the whole runnable set (wake-ups are read against it); ``pending`` the
    announced step of each enabled task; ``sleep`` the tasks asleep here with their steps;
    ``done`` the tasks explored here with the steps they made; ``backtrack`` the tasks to
    explore here (``done`` among them).
    """

    tid: int
    enabled: tuple[int, ...]
    runnable: tuple[int, ...]
    ntasks: int
    current: int | None
    pending: dict[int, Ev]
    sleep: dict[int, Ev]
    preemptions: int
    done: dict[int, Ev] = field(default_factory=dict)
    backtrack: set[int] = field(default_factory=set)

    @property
    def decision(self) -> bool:
        return len(self.enabled) > 1

    def preempts(self, tid: int) -> bool:
        return self.current is not None and self.current in self.enabled and tid != self.current


class DPORScheduler:
    """Source-DPOR over the executions of one program; ``exhausted`` once every trace ran."""

    # Every access a step makes, not only the one its point announces (stress.run switches
    # the machine's pages to target.mm.types.TracedPage; target.kernel.touch records).
    needs_every_access = True

    def __init__(self, preemption_bound: int | None = None, max_executions: int | None = None,
                 seed: int | None = None) -> None:
        """Raises ValueError for a negative bound or execution limit."""
        if preemption_bound is not None and preemption_bound < 0:
            raise ValueError(f"preemption_bound must be >= 0 or None, got {preemption_bound}")
        if max_executions is not None and max_executions < 0:
            raise ValueError(f"max_executions must be >= 0 or None, got {max_executions}")
        self.preemption_bound = preemption_bound
        self.max_executions = max_executions
        self.seed = seed
        self.executions = 0
        self.sleep_blocked = 0  # executions that reached a state where every task slept
        self.fallbacks = 0  # races whose initials were not runnable: all runnable added
        self.pruned = 0  # alternatives dropped by the preemption bound
        self._stack: list[_Pos] = []
        self._prefix = 0  # positions replayed by this execution (the last one is new)
        self._pos = 0  # positions reached in this execution
        self._clocks = Clocks()
        self._rq: Runqueue | None = None
        self._blocked_at: int | None = None
        self._exhausted = False
        self._rng = random.Random(0)

    def __repr__(self) -> str:
        return f"DPORScheduler(preemption_bound={self.preemption_bound}, seed={self.seed})"

    @property
    def exhausted(self) -> bool:
        """Every trace (within the bound) has been explored."""
        return self._exhausted

    # -- executions ------------------------------------------------------------------------

    def new_execution(self) -> bool:
        """Advance to the next unexplored trace; False when there is none (or the limit).

        Raises:
            NondeterminismError: the last execution ended before replaying its prefix.
        """
        if self._exhausted:
            return False
        if self.executions > 0:
            self._end_execution()
            if not self._backtrack():
                self._exhausted = True
                return False
        if self.max_executions is not None and self.executions >= self.max_executions:
            return False
        self.executions += 1
        self._pos = 0
        self._clocks = Clocks()
        self._rq = None
        self._blocked_at = None
        self._rng = random.Random(f"dpor:{self.seed}:{self.executions}")
        return True

    def _end_execution(self) -> None:
        if self._pos < self._prefix:
            raise NondeterminismError(
                f"execution {self.executions - 1} ended after {self._pos} steps, before the "
                f"{self._prefix} its prefix recorded: the program is not deterministic given "
                "its schedule, so DPOR cannot explore it")
        if self._rq is not None and self._pos > len(self._clocks.steps):
            self._finish(self._pos - 1, self._rq)
        del self._stack[self._pos:]

    def _backtrack(self) -> bool:
        """Move the deepest position with a task left to explore to it; False if none."""
        stack = self._stack
        while stack:
            top = stack[-1]
            todo = sorted(t for t in top.backtrack
                          if t not in top.done and t not in top.sleep and t in top.enabled)
            if todo:
                # Any order of a position's alternatives covers the same traces; a seed
                # varies it, so that capped searches of one program differ.
                pick = 0 if self.seed is None else random.Random(
                    f"dpor-backtrack:{self.seed}:{self.executions}").randrange(len(todo))
                top.tid = todo[pick]
                self._prefix = len(stack)
                return True
            stack.pop()
        self._prefix = 0
        return False

    # -- the execution's side --------------------------------------------------------------

    def observe(self, rq: Runqueue | None) -> None:
        """Called by the execution at every pick, before the choice (None when it ends):
        finish the step just run, and open the position of the one about to run."""
        if rq is None:
            if self._rq is not None and self._pos > len(self._clocks.steps):
                self._finish(self._pos - 1, self._rq)
            return
        self._rq = rq
        if rq.touches is None:  # record the accesses steps make past their points
            rq.touches = []
        i = self._pos
        if i > 0 and len(self._clocks.steps) < i:
            self._finish(i - 1, rq)
        irq = rq.irq_task
        forced = rq.step >= rq.irq_due and irq is not None
        enabled = (irq.tid,) if forced and irq is not None else tuple(rq.runnable_tids)
        cur = rq.current.tid if rq.current is not None else None
        self._pos = i + 1
        if i < len(self._stack):  # replaying the prefix
            pos = self._stack[i]
            if pos.enabled != enabled or pos.current != cur:
                raise NondeterminismError(
                    f"step {i} of execution {self.executions - 1}: replaying the prefix "
                    f"found runnable {list(enabled)} (current {cur}), recorded "
                    f"{list(pos.enabled)} (current {pos.current})")
            return
        self._stack.append(self._open(rq, enabled, cur))

    def _open(self, rq: Runqueue, enabled: tuple[int, ...], cur: int | None) -> _Pos:
        """A new position: its sleep set from the step before, its task if there is no
        choice (a decision's is chosen by :meth:`next_task`)."""
        sleep: dict[int, Ev] = {}
        before = 0
        if self._stack:
            last = self._stack[-1]
            ev = self._clocks.steps[-1].ev
            if self.preemption_bound is None:  # see the module docstring on bounds
                for t, e in (*last.sleep.items(), *last.done.items()):
                    if t != last.tid and not dependent(e, ev):
                        sleep[t] = e
            before = last.preemptions + int(last.preempts(last.tid))
        pos = _Pos(enabled[0], enabled, tuple(rq.runnable_tids), len(rq.tasks), cur,
                   {t: declared(rq.tasks[t]) for t in enabled}, sleep, before)
        pos.backtrack.add(pos.tid)
        return pos

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        """The replayed choice in the prefix; past it, a task that is not asleep."""
        i = self._pos - 1
        pos = self._stack[i]
        if i < self._prefix or not pos.decision:
            return pos.tid
        awake = [t for t in pos.enabled if t not in pos.sleep and self._allowed(pos, t)]
        if not awake:  # every task asleep: this execution repeats covered traces
            self.sleep_blocked += 1
            if self._blocked_at is None:
                self._blocked_at = i
            awake = [t for t in pos.enabled if self._allowed(pos, t)]
        if current in awake and (self.seed is None or self.preemption_bound is not None):
            # Bounded, a fresh decision never preempts: the backtrack points races add
            # assume the schedule they reverse ran each task on while it could (BPOR's
            # conservative branch is "right after the last context switch"); a seeded
            # first choice that preempted left 3 of tiny-migrate-fault's 8 states unseen.
            tid = current
        elif self.seed is not None:
            tid = awake[self._rng.randrange(len(awake))]
        else:
            tid = awake[0]
        pos.tid = tid
        pos.backtrack = {tid}
        return tid

    def _allowed(self, pos: _Pos, tid: int) -> bool:
        bound = self.preemption_bound
        return bound is None or pos.preemptions < bound or not pos.preempts(tid)

    # -- races -----------------------------------------------------------------------------

    def _finish(self, i: int, rq: Runqueue) -> None:
        """Step ``i`` is over: its full event, its clock, and the backtrack points of its
        races."""
        pos = self._stack[i]
        task = rq.tasks[pos.tid]
        ev, woken = finish(pos.pending[pos.tid], task, rq, pos.runnable, pos.ntasks)
        pos.done[pos.tid] = ev
        clocks = self._clocks
        # Races between two steps of the replayed prefix were handled by the execution that
        # first ran them; after a sleep-set block, the sleeping task's schedules cover them.
        fresh = i >= self._prefix - 1 and (self._blocked_at is None or i <= self._blocked_at)
        races = clocks.add(Step(pos.tid, ev), fresh)
        for tid in (*woken, *range(pos.ntasks, len(rq.tasks))):
            clocks.after(tid, i)
        for c in races:
            self._reverse(c, i)

    def _reverse(self, i: int, k: int) -> None:
        """Steps ``i`` and ``k`` race: make sure some initial of ``notdep(e_i).e_k`` is
        explored at position ``i``."""
        pos = self._stack[i]
        initials = self._clocks.initials(i, k)
        if initials & pos.backtrack:
            return
        ok = sorted(t for t in initials if t in pos.enabled)
        # Under a bound, an initial that may run here without exceeding it first: another
        # initial's reversal would be pruned for nothing.
        ok.sort(key=lambda t: not self._allowed(pos, t))
        awake = [t for t in ok if t not in pos.sleep]
        pick = (awake or ok)[:1]
        if not pick:
            self.fallbacks += 1
            self._add_all(self._decision_at_or_before(i))
            return
        if self.preemption_bound is not None:
            self._conservative(i, pick[0])
        if self._allowed(pos, pick[0]):
            pos.backtrack.add(pick[0])
        else:
            self.pruned += 1

    def _conservative(self, i: int, tid: int) -> None:
        """Bounded search only: also try ``tid`` right after the last context switch before
        ``i``, where running it costs no extra preemption (BPOR's conservative branch, Coons
        et al., OOPSLA 2013): the reversal at ``i`` itself may be out of bound."""
        stack = self._stack
        j = i
        while j > 0 and not (stack[j].decision and stack[j - 1].tid != stack[j].tid):
            j -= 1
        target = stack[j]
        if not target.decision or j == i:
            return
        if tid in target.enabled and self._allowed(target, tid):
            target.backtrack.add(tid)
        else:
            self._add_all(j)

    def _decision_at_or_before(self, i: int) -> int:
        while i > 0 and not self._stack[i].decision:
            i -= 1
        return i

    def _add_all(self, j: int) -> None:
        """The conservative fallback: every runnable task the bound allows, at ``j``."""
        target = self._stack[j]
        target.backtrack.update(t for t in target.enabled if self._allowed(target, t))
