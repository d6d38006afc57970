"""din_phil2_sat: SCTBench benchmarks/concurrent-software-benchmarks/din_phil2_sat.c.

Two philosophers take both forks inside ``__ESBMC_atomic_begin/end`` (common.inc: a lock of
the global ``esbmc_mutex``), then increment ``phil`` unlocked; the one that sees
``phil == N`` fails ``assert(0)``. Reachable in the sequential order too ("sat": the
assertion is a reachability target); a lost update of phil hides it. The program is
:func:`._din_phil.philosophers`, shared with din_phil3..5_sat.
"""

from __future__ import annotations

from ._din_phil import philosophers

N = 2


async def main() -> None:
    await philosophers(N, atomic_count=False)
