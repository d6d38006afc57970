"""migfuzz in your own pytest suite: copy this file into your tests (docs/testing.md).

    pytest testing_example.py                               # the model with every fix: passes
    MIGFUZZ_BUGS=missing-get-new pytest testing_example.py  # a catalog bug: both tests fail

A failing test prints the finding, the end of its interleaving (one column per task) and
``migfuzz repro FILE``, the command that replays the saved finding file exactly. Hypothesis
keeps the shrunk failing example in its database (``.hypothesis/``) and tries it first on the
next run.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from migfuzz.testing import check_scenario, check_schedule, scenarios, schedules

# Catalog bugs to inject (`migfuzz bugs`), as the fuzzers take them; none: the model itself.
BUGS = tuple(b for b in os.environ.get("MIGFUZZ_BUGS", "").split(",") if b)


# No "explain" phase: the failure already shows the interleaving, and Hypothesis would re-run
# the shrunk example ~90 times under a line tracer to say which lines only failures run.
@settings(max_examples=100, deadline=None, phases=[p for p in Phase if p is not Phase.explain])
@given(data=st.data())
def test_any_scenario_under_any_schedule(data: st.DataObject) -> None:
    """A property: whatever the scenario and whatever the preemptions, no finding. A failure
    saves its shrunk example's finding file in a new temporary directory (``out=`` to
    choose one)."""
    scenario = data.draw(scenarios(), label="scenario")
    schedule = data.draw(schedules(scenario), label="schedule")
    check_schedule(scenario, schedule, bugs=BUGS)


def test_a_race_under_pct(tmp_path: Path) -> None:
    """One scenario (a canonical name, a scenario file's path, or a Scenario) for 100
    schedules of PCT from a fixed seed: the same runs every time. The finding file, if any,
    goes into the test's own directory (one file per signature, as ``migfuzz stress --out``
    keeps them)."""
    check_scenario("migrate-vs-fault", "pct", runs=100, seed=1, bugs=BUGS, out=tmp_path)
