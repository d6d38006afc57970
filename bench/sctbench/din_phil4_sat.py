"""din_phil4_sat: SCTBench benchmarks/concurrent-software-benchmarks/din_phil4_sat.c.

din_phil2_sat with N = 4 philosophers (:func:`._din_phil.philosophers`): each takes its
forks inside the ``esbmc_mutex`` section, then increments ``phil`` unlocked; the one that
sees ``phil == N`` fails ``assert(0)``. Sequential order shows it; a lost update hides it.
"""

from __future__ import annotations

from ._din_phil import philosophers

N = 4


async def main() -> None:
    await philosophers(N, atomic_count=False)
