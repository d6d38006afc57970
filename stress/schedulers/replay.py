"""Replay: follow a recorded list of decisions exactly, and say where it stops applying.

shuttle's ``ReplayScheduler`` (shuttle-schedulers/src/replay.rs). A recorded
``Outcome.schedule`` holds one tid per decision, so feeding it back makes the same choices at
the same points; the model draws nothing else at random, and the run is identical on either
executor. When the model has changed since the schedule was recorded (a fix, a new point), the
schedule stops fitting: that is a :class:`ScheduleDivergence`, never a silent different run.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._protocol import OneExecution


class ScheduleDivergence(RuntimeError):
    """The recorded schedule does not fit the program being replayed.

    Either a recorded task is not runnable where the schedule chooses it, or the program asks
    for more decisions than were recorded. The model or the scenario differs from the one the
    schedule was recorded on; re-search (``migfuzz repro`` re-runs the strategy) instead.

    Note that ``Execution.pick`` wraps whatever a scheduler raises in a
    ``StressInternalError``, so callers find this one as a ``__cause__`` in the chain.
    """


class ReplayScheduler(OneExecution):
    """One execution that makes exactly the recorded decisions.

    Invariant: ``0 <= position <= len(schedule)``; ``position`` decisions have been replayed.
    """

    def __init__(self, schedule: Sequence[int]) -> None:
        self.schedule: tuple[int, ...] = tuple(schedule)
        self.position = 0

    def __repr__(self) -> str:
        return f"ReplayScheduler({len(self.schedule)} decisions)"

    @property
    def finished(self) -> bool:
        """Every recorded decision was used.

        False after an execution means the schedule was longer than the run: the replay
        ended (a finding, or all tasks done) before the recording did.
        """
        return self.position == len(self.schedule)

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        """The next recorded tid.

        Raises:
            ScheduleDivergence: the schedule is used up, or its tid cannot run here.
        """
        i = self.position
        if i >= len(self.schedule):
            raise ScheduleDivergence(
                f"the schedule ran out: it has {len(self.schedule)} decisions but the run "
                f"needs another at decision {i}, runnable: {list(runnable)}"
            )
        tid = self.schedule[i]
        if tid not in runnable:
            raise ScheduleDivergence(
                f"scheduled task {tid} is not runnable at decision {i}, "
                f"runnable: {list(runnable)}"
            )
        self.position = i + 1
        return tid
