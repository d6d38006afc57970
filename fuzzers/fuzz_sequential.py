"""Fuzz sequences of operations under a fixed schedule: tasks run one after another (a task
gives way only when it blocks), so every finding is a sequential refcount, mapcount, rss or
swap-count bug, with no race needed to explain it.

Hunts: ledger bugs on single paths (missing get_page on the new page, swap slot counts,
rss after fork/exit/migrate), where code coverage alone guides well.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["target"]):
    import target.mm.syscalls  # noqa: F401  (the whole model, instrumented)

from fuzzers import _harness
from fuzzers._targets import decode_sequential_input

TARGET = "fuzz_sequential"


def TestOneInput(data: bytes) -> None:
    scenario, scheduler = decode_sequential_input(data)
    _harness.execute(TARGET, scenario, scheduler)


if __name__ == "__main__":
    _harness.fuzz_main(TestOneInput)
