"""SCTBench programs ported to migfuzz's runtime (:mod:`migfuzz.testing`).

Source: github.com/mc-imperial/sctbench, ``benchmarks/concurrent-software-benchmarks/``,
``benchmarks/chess/`` (WorkStealQueue, InterlockedWorkStealQueue) and
``benchmarks/safestack/`` (safestack bug1) (Thomson, Donaldson and Betts, "Concurrency
testing using controlled schedulers: an empirical study", TOPC 2016). One module per
program, its docstring naming the C file. Each port keeps the original's threads, its
shared variables (a :class:`~migfuzz.testing.Shared` each, every access a scheduling point,
left-to-right with C's short-circuits), every pthread operation as a point (an atomic or
Win32 Interlocked read-modify-write: one point, see :class:`~migfuzz.testing.Shared`;
``sched_yield``/``sleep(0)``: :func:`~migfuzz.testing.yield_`), the assertion or deadlock
that is the bug, and the file's constants (thread counts, loop bounds, sizes). Programs
that differ only in a parameter share their code (``_din_phil.py``, ``_reorder.py``,
``_work_steal_queue.py``).

One difference from the C harness, the same for every port: when ``main`` returns, C ends the
process and kills the other threads; here they run to the end (as after ``pthread_exit`` in
main). Only account_bad returns without joining; its bug is reachable either way.

:data:`PROGRAMS` lists them for bench/sctbench.py and tests/test_sctbench.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from migfuzz.testing import Program

from . import (
    InterlockedWorkStealQueue,
    WorkStealQueue,
    account_bad,
    arithmetic_prog_bad,
    carter01_bad,
    circular_buffer_bad,
    deadlock01_bad,
    din_phil2_sat,
    din_phil3_sat,
    din_phil4_sat,
    din_phil5_sat,
    lazy01_bad,
    phase01_bad,
    queue_bad,
    reorder_3_bad,
    reorder_5_bad,
    reorder_10_bad,
    safestack_bug1,
    stack_bad,
    sync01_bad,
    sync02_bad,
    twostage_bad,
    wronglock_bad,
)


@dataclass(frozen=True)
class Port:
    """A ported program and what its bug is."""

    main: Program
    kind: str  # the finding kind of its bug: "bug" (a failed assert) or "deadlock"
    # Whether the sequential run (each thread to completion, in creation order) shows the
    # bug: True for the programs whose assertion holds on no complete run in order.
    sequential_bug: bool


PROGRAMS: dict[str, Port] = {
    "account_bad": Port(account_bad.main, "bug", False),
    "arithmetic_prog_bad": Port(arithmetic_prog_bad.main, "bug", True),
    "carter01_bad": Port(carter01_bad.main, "deadlock", False),
    "circular_buffer_bad": Port(circular_buffer_bad.main, "bug", False),
    "deadlock01_bad": Port(deadlock01_bad.main, "deadlock", False),
    "din_phil2_sat": Port(din_phil2_sat.main, "bug", True),
    "lazy01_bad": Port(lazy01_bad.main, "bug", True),
    "reorder_3_bad": Port(reorder_3_bad.main, "bug", False),
    "stack_bad": Port(stack_bad.main, "bug", False),
    "twostage_bad": Port(twostage_bad.main, "bug", False),
    "wronglock_bad": Port(wronglock_bad.main, "bug", False),
    "din_phil3_sat": Port(din_phil3_sat.main, "bug", True),
    "din_phil4_sat": Port(din_phil4_sat.main, "bug", True),
    "din_phil5_sat": Port(din_phil5_sat.main, "bug", True),
    "phase01_bad": Port(phase01_bad.main, "deadlock", True),
    "queue_bad": Port(queue_bad.main, "bug", False),
    "reorder_5_bad": Port(reorder_5_bad.main, "bug", False),
    "reorder_10_bad": Port(reorder_10_bad.main, "bug", False),
    "sync01_bad": Port(sync01_bad.main, "deadlock", True),
    "sync02_bad": Port(sync02_bad.main, "deadlock", True),
    "WorkStealQueue": Port(WorkStealQueue.main, "bug", False),
    "InterlockedWorkStealQueue": Port(InterlockedWorkStealQueue.main, "bug", False),
    "safestack_bug1": Port(safestack_bug1.main, "bug", False),
}
