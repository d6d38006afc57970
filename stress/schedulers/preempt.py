"""Preempt: a fuzzer's input read as a list of preemptions, not of decisions.

The first byte names the task that starts; every further byte is one *record*: with ``n``
tasks, byte ``b`` means "run on for ``b // n`` decisions, then, at the next one, switch to task
``b % n``". Between records the scheduler keeps the current task while it can run and
otherwise takes the lowest runnable one (the ``Sequential`` order of fuzzers/_targets.py, and
PCT's between its change points), so an input of one byte is a run without preemptions and an
input of ``k + 1`` bytes preempts at most ``k`` times.

Why not one byte per decision (:class:`~stress.schedulers.bytes.ByteScheduler`): there, random
bytes switch tasks at almost every decision, and a schedule with two preemptions placed far
apart (what a depth-2 bug needs) is a long run of bytes that each keep the current task, a
needle libFuzzer does not find (bench/fuzz.md). Here one byte is one preemption, so libFuzzer's
byte-level mutations act on preemptions: inserting or erasing a byte inserts or deletes one,
swapping or shuffling bytes reorders them, changing a byte moves one or retargets it, and no
mutation leaves the rest of the input misaligned (as it would with records of two bytes).

The task is named absolutely (tids are ``0 .. n-1``), not as an index into the runnable set,
so that a record means the same task wherever a mutation moves it; if that task cannot run, the
next runnable tid after it (cyclically) runs instead. A record naming the current task does not
preempt, it only runs on: that is how an input reaches past ``255 // n`` decisions.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._protocol import OneExecution


class PreemptScheduler(OneExecution):
    """One execution of ``ntasks`` tasks whose preemptions are read from ``data``.

    Invariant: ``0 <= record <= len(data) - 1``: ``record`` records (bytes after the first)
    have been used, and ``countdown`` decisions remain before the next one applies.
    """

    def __init__(self, data: bytes, ntasks: int) -> None:
        if ntasks < 1:
            raise ValueError(f"ntasks must be at least 1, got {ntasks}")
        self.data = bytes(data)
        self.ntasks = ntasks
        self.record = 0
        self.countdown = data[1] // ntasks if len(data) > 1 else 0

    def __repr__(self) -> str:
        return f"PreemptScheduler({max(len(self.data) - 1, 0)} records, {self.ntasks} tasks)"

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        data, n = self.data, self.ntasks
        if current is None:  # the first decision: which task starts is not a preemption
            return self._at_or_after(runnable, data[0] % n if data else 0)
        i = self.record + 1
        if i < len(data):
            if self.countdown == 0:
                self.record = i
                if i + 1 < len(data):
                    self.countdown = data[i + 1] // n
                return self._at_or_after(runnable, data[i] % n)
            self.countdown -= 1
        if current in runnable:
            return current
        return runnable[0]

    @staticmethod
    def _at_or_after(runnable: Sequence[int], tid: int) -> int:
        """``tid`` if it can run, else the next runnable tid after it, cyclically."""
        return next((t for t in runnable if t >= tid), runnable[0])
