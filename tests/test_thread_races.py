"""Each race threads bring (issue 13 item 7) made to happen by one forced schedule.

tests/test_canonical_reach.py shows that seeded random and PCT runs of each canonical
scenario meet its race; here each race is forced, step by step, as its scenario's docstring
draws it (fixed_schedulers.Script: run this task until the model is in that state), so the
race is shown to be real in the model by one execution, and with every upstream fix the run
ends without a finding. gup-vs-fork is V2's known flaw: the same forced schedule without
fork-early-cow-pinned loses the DMA's write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from fixed_schedulers import Script
from test_canonical_reach import Probe, _is_entry, install, wrap

from stress import Outcome
from stress.run import run_scenario
from stress.scenarios import canonical
from stress.spec import _pte_at
from target.bugs import inject
from target.fixes import lookup, without
from target.kernel import current
from target.mm import syscalls
from target.mm.world import W

Steps = Sequence[tuple[Sequence[str], Callable[[], bool]]]


def entry_at(pid: int, addr: int) -> Callable[[], bool]:
    """The process's pte at ``addr`` is a migration entry (the migrator unmapped the page)."""
    def holds() -> bool:
        p = W().processes.get(pid)
        mm = getattr(p, "mm", None)
        return mm is not None and _is_entry(_pte_at(mm, addr))
    return holds


def forced(name: str, steps: Callable[[Probe, Counter[str]], Steps], probe: Probe,
           done: Counter[str], fixes: Sequence[str]) -> tuple[Outcome, Script]:
    """Run canonical scenario ``name`` once under the script, with ``fixes`` applied."""
    sc = canonical(name)
    with inject(lookup(list(fixes))), pytest.MonkeyPatch.context() as mp:
        install(mp, probe)  # inside inject: the wrappers wrap the fixed functions

        def user_access(real: Any) -> Any:
            async def counted(proc: Any, addr: int, write: bool, value: int = 0) -> Any:
                got = await real(proc, addr, write, value)
                done[current().name] += 1
                return got
            return counted

        wrap(mp, syscalls, "user_access", user_access)
        script = Script([t.name for t in sc.tasks], steps(probe, done))
        script.new_execution()
        return run_scenario(sc, script, executor="direct"), script


# scenario -> (the race, as test_canonical_reach names it; the script that forces it)
RACES: dict[str, tuple[str, Callable[[Probe, Counter[str]], Steps]]] = {
    # migrator: pte 0 := M(P); T1 faults, sleeps on P; T2 faults, sleeps on P
    "threads-vs-migrate": ("two faults sleep on one migration entry", lambda p, d: [
        (["migrator"], entry_at(1, 0)),
        (["T1", "T2"], lambda: p.reached["two faults sleep on one migration entry"] > 0),
    ]),
    # T1: fork, write 0 -> do_wp_page, drops the ptl to copy; T2: write 0 -> do_wp_page
    "threads-cow-break": ("two do_wp_page on one pte", lambda p, d: [
        (["T1"], lambda: sum(p.in_wp.values()) > 0),
        (["T2", "T1"], lambda: p.reached["two do_wp_page on one pte"] > 0),
    ]),
    # A: get_user_pages(0), the pin held; B: fork
    "gup-vs-fork": ("the fork happens while the pin is held", lambda p, d: [
        (["A"], lambda: bool(p.pins_held)),
        (["B"], lambda: p.reached["the fork happens while the pin is held"] > 0),
    ]),
    # T1: its three loads; migrator: pte 0 := M(P); T2 faults, sleeps on P; T1 exits
    "thread-exit-vs-entry-wait": (
        "a thread exits while a sibling sleeps in migration_entry_wait", lambda p, d: [
            (["T1"], lambda: d["T1"] == 3),
            (["migrator"], entry_at(1, 0)),
            (["T2"], lambda: any(t == "T2" for s in p.sleepers.values() for t, _ in s)),
            (["T1"], lambda: p.reached[
                "a thread exits while a sibling sleeps in migration_entry_wait"] > 0),
        ]),
}


@pytest.mark.parametrize("name", sorted(RACES))
def test_a_forced_schedule_makes_the_race_happen(name: str) -> None:
    race, steps = RACES[name]
    probe, done = Probe(), Counter[str]()
    out, script = forced(name, steps, probe, done, ["all"])
    assert script.finished and probe.reached[race] == 1, dict(probe.reached)
    assert out.finding is None, out.finding


def test_the_forced_gup_vs_fork_is_the_known_flaw_without_its_fix() -> None:
    race, steps = RACES["gup-vs-fork"]
    probe, done = Probe(), Counter[str]()
    out, script = forced("gup-vs-fork", steps, probe, done, without("fork-early-cow-pinned"))
    assert script.finished and probe.reached[race] == 1
    assert out.finding is not None and out.finding.kind == "lost-write", out.finding
