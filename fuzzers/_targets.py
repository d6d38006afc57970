"""Each fuzz target's decoder, importable without atheris (for repro of raw artifacts).

``DECODERS[name](data)`` turns a target's input bytes into (scenario, scheduler), exactly as
the target's ``TestOneInput`` does; ``migfuzz`` uses it to turn libFuzzer crash artifacts into
finding files and to replay raw artifacts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from stress.scenarios import CANONICAL, canonical
from stress.schedulers import ByteScheduler, Scheduler
from stress.workload import Scenario

from . import _ops

CANONICAL_NAMES = sorted(CANONICAL)


def decode_scenario_input(data: bytes) -> tuple[Scenario, Scheduler]:
    """fuzz_scenario: the whole input through the shared decoder, tail as schedule."""
    scenario, schedule = _ops.decode(data)
    return scenario, ByteScheduler(schedule)


def decode_schedule_input(data: bytes) -> tuple[Scenario, Scheduler]:
    """fuzz_schedule: first byte picks a canonical scenario, the rest is the schedule."""
    name = CANONICAL_NAMES[data[0] % len(CANONICAL_NAMES)] if data else CANONICAL_NAMES[0]
    return canonical(name), ByteScheduler(data[1:])


class Sequential:
    """Run the current task until it blocks or ends, then the lowest runnable task."""

    def new_execution(self) -> bool:
        return True

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        return current if current is not None and current in runnable else runnable[0]


def decode_sequential_input(data: bytes) -> tuple[Scenario, Scheduler]:
    """fuzz_sequential: the shared decoder's scenario under the fixed sequential schedule."""
    scenario, _ = _ops.decode(data)
    return scenario, Sequential()


DECODERS: dict[str, Callable[[bytes], tuple[Scenario, Scheduler]]] = {
    "fuzz_scenario": decode_scenario_input,
    "fuzz_schedule": decode_schedule_input,
    "fuzz_sequential": decode_sequential_input,
}
