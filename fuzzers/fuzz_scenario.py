"""Fuzz scenario and schedule together: the bytes choose the world, the processes, every
task's operations, and then every scheduling decision (format: fuzzers/_ops.py).

Hunts: refcount, mapcount, rss and lock-order bugs in any mix of fault, fork, exit, munmap,
mlock, pin, migrate and swap-out. Finds a planted bug (missing-get-new) from its seed corpus
(tests/test_fuzzers.py); its time-to-bug on the catalog is not yet benchmarked (bench/fuzz.md
measures fuzz_schedule).
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["target"]):
    import target.mm.syscalls  # noqa: F401  (the whole model, instrumented)

from fuzzers import _harness
from fuzzers._targets import decode_scenario_input

TARGET = "fuzz_scenario"


def TestOneInput(data: bytes) -> None:
    scenario, scheduler = decode_scenario_input(data)
    _harness.execute(TARGET, scenario, scheduler)


if __name__ == "__main__":
    _harness.fuzz_main(TestOneInput)
