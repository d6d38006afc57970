"""Fuzz only the schedule of the canonical scenarios: the first byte picks the scenario, every
other byte one scheduling decision. Deep interleaving search on races known to matter.

Hunts: the catalog's races between migration and faults, fork, exit, swap-out and pins
(migration_entry_wait's reference, entry restore on failure, nr_refs with a pin). From its
seeds it finds nr-refs-constant in 1 execution, wait-without-ref in a median of 284 (2.5 CPU s)
and no-restore-on-failure in 268, but get-after-unlock in 1 seed of 5 within 1,200
(bench/time_to_bug.md).
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["target"]):
    import target.mm.syscalls  # noqa: F401  (the whole model, instrumented)

from fuzzers import _harness
from fuzzers._targets import decode_schedule_input

TARGET = "fuzz_schedule"


def TestOneInput(data: bytes) -> None:
    scenario, scheduler = decode_schedule_input(data)
    _harness.execute(TARGET, scenario, scheduler)


if __name__ == "__main__":
    _harness.fuzz_main(TestOneInput)
