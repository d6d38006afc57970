"""Each fuzz target's decoder, importable without atheris (for repro of raw artifacts).

``DECODERS[name](data)`` turns a target's input bytes into (scenario, scheduler), exactly as
the target's ``TestOneInput`` does; ``migfuzz`` uses it to turn libFuzzer crash artifacts into
finding files and to replay raw artifacts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from stress.scenarios import CANONICAL, canonical
from stress.schedulers import ByteScheduler, PreemptScheduler, Scheduler
from stress.workload import Scenario

from . import _ops

CANONICAL_NAMES = sorted(CANONICAL)


def decode_scenario_input(data: bytes) -> tuple[Scenario, Scheduler]:
    """fuzz_scenario: the whole input through the shared decoder, tail as schedule."""
    scenario, schedule = _ops.decode(data)
    return scenario, ByteScheduler(schedule)


def _canonical_of(data: bytes) -> Scenario:
    """The canonical scenario the first byte picks (the first one for no byte)."""
    return canonical(CANONICAL_NAMES[data[0] % len(CANONICAL_NAMES)] if data
                     else CANONICAL_NAMES[0])


def decode_schedule_input(data: bytes) -> tuple[Scenario, Scheduler]:
    """fuzz_schedule: first byte picks a canonical scenario, the rest is the schedule."""
    return _canonical_of(data), ByteScheduler(data[1:])


def decode_preempt_input(data: bytes) -> tuple[Scenario, Scheduler]:
    """fuzz_preempt: first byte picks a canonical scenario, the rest are preemptions (the
    task that starts, then one byte per preemption: stress/schedulers/preempt.py)."""
    scenario = _canonical_of(data)
    return scenario, PreemptScheduler(data[1:], len(scenario.tasks))


def scenario_byte(name: str) -> int:
    """The first byte of fuzz_schedule's and fuzz_preempt's inputs that picks ``name``.

    Raises:
        ScenarioError: not a canonical scenario (naming the ones there are).
    """
    canonical(name)  # raises for an unknown name
    return CANONICAL_NAMES.index(name)


@functools.cache
def ntasks_of(scenario_byte: int) -> int:
    """The number of tasks of the canonical scenario a first byte picks (fuzz_preempt's
    mutator names tasks by tid)."""
    return len(_canonical_of(bytes([scenario_byte])).tasks)


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
    "fuzz_preempt": decode_preempt_input,
    "fuzz_scenario": decode_scenario_input,
    "fuzz_schedule": decode_schedule_input,
    "fuzz_sequential": decode_sequential_input,
}
