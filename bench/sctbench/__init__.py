"""SCTBench programs ported to migfuzz's runtime (:mod:`migfuzz.testing`).

Source: github.com/mc-imperial/sctbench, ``benchmarks/concurrent-software-benchmarks/``
(Thomson, Donaldson and Betts, "Concurrency testing using controlled schedulers: an empirical
study", TOPC 2016). One module per program, its docstring naming the C file. Each port keeps
the original's threads, its shared variables (a :class:`~migfuzz.testing.Shared` each, every
access a scheduling point, left-to-right with C's short-circuits), every pthread operation
as a point, and the assertion or deadlock that is the bug.

One difference from the C harness, the same for every port: when ``main`` returns, C ends the
process and kills the other threads; here they run to the end (as after ``pthread_exit`` in
main). Only account_bad returns without joining; its bug is reachable either way.

:data:`PROGRAMS` lists them for bench/sctbench.py and tests/test_sctbench.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from migfuzz.testing import Program

from . import (
    account_bad,
    arithmetic_prog_bad,
    carter01_bad,
    circular_buffer_bad,
    deadlock01_bad,
    din_phil2_sat,
    lazy01_bad,
    reorder_3_bad,
    stack_bad,
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
}
