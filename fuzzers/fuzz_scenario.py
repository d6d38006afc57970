"""Fuzz scenario and schedule together: the bytes choose the world, the processes, every
task's operations, and then every scheduling decision.

Hunts: refcount, mapcount, rss and lock-order bugs in any mix of fault, fork, exit, munmap,
mlock, pin, migrate and swap-out. Finds all catalog bugs that random scenarios reach
(bench/time_to_bug.md).
"""

from __future__ import annotations


import atheris

with atheris.instrument_imports(include=["target"]):
    import target.mm.syscalls  # noqa: F401  (the whole model, instrumented)

from fuzzers import _harness, _ops  # noqa: E402
from stress.workload import Scenario  # noqa: E402
from stress.schedulers import Scheduler  # noqa: E402

TARGET = "fuzz_scenario"


def decode(data: bytes) -> tuple[Scenario, Scheduler]:
    scenario, schedule = _ops.decode(data)
    return scenario, _harness.byte_scheduler(schedule)


def TestOneInput(data: bytes) -> None:
    scenario, scheduler = decode(data)
    _harness.execute(TARGET, scenario, scheduler)


if __name__ == "__main__":
    _harness.fuzz_main(TestOneInput)
