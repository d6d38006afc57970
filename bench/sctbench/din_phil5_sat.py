"""din_phil5_sat: SCTBench benchmarks/concurrent-software-benchmarks/din_phil5_sat.c.

Five philosophers (:func:`._din_phil.philosophers`); unlike din_phil2..4_sat, the increment
of ``phil`` and its ``phil == N`` test are inside ``__ESBMC_atomic_begin/end`` too, so no
update is lost: the last philosopher always fails ``assert(0)``, in every order.
:func:`main_unsat` is din_phil5_unsat.c (no counter, no assertion), for the tests.
"""

from __future__ import annotations

from ._din_phil import philosophers

N = 5


async def main() -> None:
    await philosophers(N, atomic_count=True)


async def main_unsat() -> None:
    await philosophers(N, atomic_count=True, count=False)
