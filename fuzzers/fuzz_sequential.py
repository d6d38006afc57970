"""Fuzz sequences of operations under a fixed schedule: tasks run one after another (a task
gives way only when it blocks), so every finding is a sequential refcount, mapcount, rss or
swap-count bug, with no race needed to explain it.

Hunts: ledger bugs on single paths (missing get_page on the new page, swap slot counts,
rss after fork/exit/migrate), where code coverage alone guides well.
"""

from __future__ import annotations

from collections.abc import Sequence

import atheris

with atheris.instrument_imports(include=["target"]):
    import target.mm.syscalls  # noqa: F401  (the whole model, instrumented)

from fuzzers import _harness, _ops  # noqa: E402
from stress.schedulers import Scheduler  # noqa: E402
from stress.workload import Scenario  # noqa: E402

TARGET = "fuzz_sequential"


class Sequential:
    """Run the current task until it blocks or ends, then the lowest runnable task."""

    def new_execution(self) -> bool:
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        return current if current in runnable else runnable[0]


def decode(data: bytes) -> tuple[Scenario, Scheduler]:
    scenario, _ = _ops.decode(data)
    return scenario, Sequential()


def TestOneInput(data: bytes) -> None:
    scenario, scheduler = decode(data)
    _harness.execute(TARGET, scenario, scheduler)


if __name__ == "__main__":
    _harness.fuzz_main(TestOneInput)
