"""Bytes: a fuzzer's input read as a schedule, one byte per decision.

For coverage-guided fuzzers (atheris) and Hypothesis's ``st.binary()``: the fuzzer mutates
bytes, and every byte string is a valid schedule, so no input is wasted on a parse error.

Each decision consumes one byte ``b`` and runs ``runnable[b % len(runnable)]``. When the bytes
run out the scheduler keeps running ``current`` if it can, else the lowest runnable tid: the
rest of the run has no preemptions. That makes the schedule total (any length works) and keeps
trailing mutations cheap: appending a byte changes one decision near the end and leaves the
prefix's run untouched, and a short input already means a plausible, unpreempted run.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._protocol import OneExecution


class ByteScheduler(OneExecution):
    """One execution whose decisions are read from ``data``.

    Invariant: ``0 <= consumed <= len(data)``; ``consumed`` bytes have been used.
    """

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.consumed = 0

    def __repr__(self) -> str:
        return f"ByteScheduler({len(self.data)} bytes)"

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        i = self.consumed
        if i < len(self.data):
            self.consumed = i + 1
            return runnable[self.data[i] % len(runnable)]
        if current is not None and current in runnable:
            return current
        return runnable[0]
