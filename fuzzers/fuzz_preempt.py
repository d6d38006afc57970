"""Fuzz the preemptions of the canonical scenarios: the first byte picks the scenario, the
second the task that starts, every other byte one preemption ("run on for g decisions, then
switch to task t": stress/schedulers/preempt.py). Between preemptions the current task runs
on, so an input of a few bytes is a schedule of a few preemptions, the shape of a deep race,
and libFuzzer's byte mutations insert, delete, move and reorder preemptions. The custom
mutator (fuzzers/_mutate.py) edits them as preemptions; ``--libfuzzer-mutator`` leaves only
libFuzzer's own. ``MIGFUZZ_SCENARIO=NAME`` fuzzes that canonical scenario's preemptions only
(every input the mutator makes picks it; the inputs replay unchanged without it).

Hunts: the races that need two or more preemptions, each in its place (get-after-unlock,
link-new-vma-at-head, find-get-page-after-unlock, move-ptes-drop-ptl), which fuzz_schedule's
one byte per decision does not reach from an empty corpus (0/3 within 10,000 executions:
bench/fuzz.md as of commit 187fcaf; this target's figures: bench/fuzz.md).
"""

from __future__ import annotations

import os
import sys

import atheris

with atheris.instrument_imports(include=["target"]):
    import target.mm.syscalls  # noqa: F401  (the whole model, instrumented)

from fuzzers import _coverage, _guide, _harness, _mutate
from fuzzers._targets import decode_preempt_input, ntasks_of, scenario_byte
from stress.workload import ScenarioError

TARGET = "fuzz_preempt"
own_mutator = True
pin: int | None = None


def TestOneInput(data: bytes) -> None:
    if not (_coverage.enabled and own_mutator):
        scenario, scheduler = decode_preempt_input(data)
        _harness.execute(TARGET, scenario, scheduler)
        return
    scenario, recording = _guide.decode(data)  # the same choices, noted for the mutator
    outcome = _harness.execute(TARGET, scenario, recording)
    _guide.remember(data, recording, outcome.events or [])


def CustomMutator(data: bytes, max_size: int, seed: int) -> bytes:
    return _mutate.mutate(data, max_size, seed, ntasks_of, atheris.Mutate, own=own_mutator,
                          pin=pin, guide=_guide.mutate if _coverage.enabled else None)


if __name__ == "__main__":
    if "--libfuzzer-mutator" in sys.argv:
        sys.argv.remove("--libfuzzer-mutator")
        own_mutator = False
    if os.environ.get("MIGFUZZ_SCENARIO"):
        try:
            pin = scenario_byte(os.environ["MIGFUZZ_SCENARIO"])
        except ScenarioError as exc:
            print(f"{TARGET}: MIGFUZZ_SCENARIO: {exc}", file=sys.stderr)
            sys.exit(2)
    _harness.fuzz_main(TestOneInput, CustomMutator)
