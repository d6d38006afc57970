"""Fuzz only the schedule of the canonical scenarios: the first byte picks the scenario, every
other byte one scheduling decision. Deep interleaving search on races known to matter.

Hunts: the catalog's races between migration and faults, fork, exit, swap-out and pins
(migration_entry_wait references, entry restore on failure, isolation under the ptl).
"""

from __future__ import annotations


import atheris

with atheris.instrument_imports(include=["target"]):
    import target.mm.syscalls  # noqa: F401  (the whole model, instrumented)

from fuzzers import _harness  # noqa: E402
from stress.scenarios import CANONICAL, canonical  # noqa: E402
from stress.schedulers import Scheduler  # noqa: E402
from stress.workload import Scenario  # noqa: E402

TARGET = "fuzz_schedule"
NAMES = sorted(CANONICAL)


def decode(data: bytes) -> tuple[Scenario, Scheduler]:
    name = NAMES[data[0] % len(NAMES)] if data else NAMES[0]
    return canonical(name), _harness.byte_scheduler(data[1:])


def TestOneInput(data: bytes) -> None:
    scenario, scheduler = decode(data)
    _harness.execute(TARGET, scenario, scheduler)


if __name__ == "__main__":
    _harness.fuzz_main(TestOneInput)
