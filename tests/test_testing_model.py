"""migfuzz.testing for the model: the Hypothesis strategies (valid, shrinking, replayable),
check_scenario (the runs of ``migfuzz stress --scenario``, failing with the saved finding's
timeline and repro command) and check_schedule (one file for Hypothesis's final example)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from migfuzz.bugs import check_fixes, injected
from migfuzz.cli import main
from migfuzz.findings import load, trace_hash
from migfuzz.replay import replay_schedule
from migfuzz.strategies import STRATEGIES
from migfuzz.testing import (
    Preemptions,
    ScenarioFailed,
    check_scenario,
    check_schedule,
    run_schedule,
    scenarios,
    schedules,
)
from stress import DEFAULT_MAX_STEPS
from stress.scenarios import canonical, compose, generate
from stress.workload import Scenario, validate

ROOT = Path(__file__).resolve().parent.parent
# no explain phase: it re-runs a failing example ~90 times under a line tracer
DETERMINISTIC = settings(derandomize=True, database=None, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow],
                         phases=[p for p in Phase if p is not Phase.explain])
RACE = "page-lock-under-anon-vma"  # depth 1 on migrate-vs-fault: PCT seed 1 finds it at run 66


class _Recorder:
    """A Chooser that takes the simple outcome of every choice, recording them."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def chance(self, p: float, *, simple: bool = False) -> bool:
        self.calls.append("chance")
        return simple

    def randint(self, a: int, b: int) -> int:
        self.calls.append("randint")
        return a

    def choice(self, seq: object) -> object:
        self.calls.append("choice")
        return seq[0]  # type: ignore[index]

    def randrange(self, n: int) -> int:
        self.calls.append("randrange")
        return 0


def test_the_generator_takes_every_choice_from_its_chooser() -> None:
    """compose() with every choice at its simple outcome: the smallest scenario of the space
    (what scenarios() shrinks toward), and no choice made behind the chooser's back."""
    rec = _Recorder()
    sc = compose(lambda _stream: rec, "simplest")  # type: ignore[arg-type, return-value]
    validate(sc)
    assert sc.size() == (2, 4)
    assert [(t.name, t.ops) for t in sc.tasks] == [
        ("p1", [("write", 1, 0, 1001), ("write", 1, 0, 1002), ("write", 1, 0, 1003)]),
        ("migrator", [("migrate", 1, 0, 1, 0)])]
    assert {"chance", "randint", "choice"} <= set(rec.calls)
    assert generate(7).name == "generated:7"


@settings(DETERMINISTIC, max_examples=60)
@given(scenarios())
def test_drawn_scenarios_are_valid_and_round_trip(sc: Scenario) -> None:
    validate(sc)
    assert Scenario.from_json(json.loads(sc.dumps())).dumps() == sc.dumps()


def test_the_simplest_drawn_scenario_is_the_smallest() -> None:
    """Hypothesis's first draw is its simplest (every choice at its shrink target): the
    smallest scenario of the generator's space, what a failure shrinks toward."""
    sc = find(scenarios(), lambda s: True,
              settings=settings(DETERMINISTIC, phases=[Phase.generate]))
    assert sc.dumps() == compose(lambda _stream: _Recorder(), "hypothesis").dumps()  # type: ignore[arg-type, return-value]


@pytest.mark.slow
def test_scenarios_shrink_tasks_and_operations() -> None:
    """Asked for four tasks, shrinking leaves four tasks of the fewest operations."""
    sc = find(scenarios(), lambda s: len(s.tasks) >= 4, settings=DETERMINISTIC)
    assert len(sc.tasks) == 4
    assert sc.size()[1] <= 12, sc


@pytest.mark.slow
@settings(DETERMINISTIC, max_examples=25)
@given(st.data())
def test_a_drawn_schedule_replays_exactly(data: st.DataObject) -> None:
    """The decisions of a run under drawn preemptions replay through the replay scheduler
    with the same trace."""
    sc = data.draw(scenarios())
    pre = data.draw(schedules(sc))
    outcome = run_schedule(sc, pre, trace=True)
    with injected([], check_fixes(["all"])):
        again = replay_schedule(sc, outcome.schedule, executor="direct",
                                max_steps=DEFAULT_MAX_STEPS)
    assert again.divergence is None
    assert again.trace_hash == trace_hash(outcome)


@pytest.mark.slow
def test_schedules_shrink_to_one_preemption_for_a_depth_1_race() -> None:
    sc = canonical("migrate-vs-fault")
    assert run_schedule(sc, bugs=[RACE]).finding is None  # no preemption: no finding
    pre = find(schedules(sc), lambda p: run_schedule(sc, p, bugs=[RACE]).finding is not None,
               settings=settings(DETERMINISTIC, max_examples=500))
    assert len(pre.switches) == 1, pre
    assert pre.data() == bytes([pre.start, pre.switches[0][0] * 2 + pre.switches[0][1]])


def test_check_scenario_passes_on_a_clean_model(tmp_path: Path) -> None:
    check_scenario("migrate-vs-fault", "pct", runs=30, seed=1, out=tmp_path)
    assert not list(tmp_path.glob("*.json"))


def test_check_scenario_fails_with_the_timeline_and_a_repro_that_replays(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ScenarioFailed) as info:
        check_scenario("migrate-vs-fault", "pct", runs=100, seed=1, bugs=[RACE], out=tmp_path)
    exc = info.value
    assert isinstance(exc, AssertionError)
    assert exc.path is not None and exc.path.parent == tmp_path and exc.record is not None
    text = str(exc)
    assert text.splitlines()[0] == (
        "lock-order-inversion in lock_page [PG_locked -> anon_vma->lock] in scenario "
        f"migrate-vs-fault, run 66 of 100 (pct from seed 1; bugs: {RACE})")
    assert "timeline (2 tasks" in text and "FINDING at step" in text
    assert f"  migfuzz repro {exc.path}" in text.splitlines()
    assert main(["repro", str(exc.path), "--no-timeline"]) == 1
    assert "result: REPRODUCED" in capsys.readouterr().out


@pytest.mark.slow
def test_check_scenario_runs_what_migfuzz_stress_runs(tmp_path: Path) -> None:
    """The same strategy, seed and runs on the command line stop at the same run with the
    same reproducer."""
    with pytest.raises(ScenarioFailed) as info:
        check_scenario("migrate-vs-fault", "pct", runs=100, seed=1, bugs=[RACE],
                       out=tmp_path / "api")
    assert main(["stress", "--scenario", "migrate-vs-fault", "--strategy", "pct", "--seed",
                 "1", "--runs", "100", "-x", "--jobs", "1", "--executor", "direct", "--bug",
                 RACE, "--fixes", "all", "--out", str(tmp_path / "cli")]) == 1
    (cli,) = (load(p) for p in (tmp_path / "cli").glob("*.json"))
    api = info.value.record
    assert api is not None
    assert (api.signature, api.schedule, api.origin["run"]) == (
        cli.signature, cli.schedule, cli.origin["run"])


def test_check_scenario_takes_a_scenario_file(tmp_path: Path) -> None:
    path = ROOT / "corpus" / "scenarios" / "threads-move-pages.json"
    check_scenario(str(path), "random", runs=5, seed=0, out=tmp_path)


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"strategy": "nope"}, "unknown strategy 'nope'"),
    ({"bugs": ["nope"]}, "unknown bug nope"),
    ({"fixes": ["nope"]}, "nope"),
    ({"executor": "nope"}, "unknown executor 'nope'"),
    ({"scenario": "no-such-scenario"}, "unknown scenario 'no-such-scenario'"),
])
def test_check_scenario_names_bad_input(kwargs: dict[str, object], problem: str,
                                        tmp_path: Path) -> None:
    args: dict[str, object] = {"scenario": "migrate-vs-fault", "runs": 1, "out": tmp_path}
    args.update(kwargs)
    with pytest.raises(ValueError, match=problem):
        check_scenario(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", ["surw", "dpor"])
def test_check_scenario_takes_every_strategy_of_migfuzz_stress(strategy: str,
                                                               tmp_path: Path) -> None:
    # docs/testing.md lists what check_scenario takes: migfuzz stress's --strategy choices
    doc = (ROOT / "docs" / "testing.md").read_text()
    assert f"{', '.join(STRATEGIES)}: what `migfuzz stress --strategy`" in doc
    with pytest.raises(ScenarioFailed, match=f"run 0 of 2 \\({strategy} from seed 1"):
        check_scenario("migrate-vs-fault", strategy, runs=2, seed=1,
                       bugs=("missing-get-new",), out=tmp_path)


@pytest.mark.slow
def test_check_schedule_saves_only_hypothesis_final_example(tmp_path: Path) -> None:
    """Shrinking tries many failing examples; one file is written, the shrunk one's."""

    @settings(DETERMINISTIC, max_examples=20)
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        sc = data.draw(scenarios())
        check_schedule(sc, data.draw(schedules(sc)), bugs=["missing-get-new"], out=tmp_path)

    with pytest.raises(ScenarioFailed) as info:
        prop()
    assert "(shrinking)" not in str(info.value)
    assert [p.name for p in tmp_path.glob("*.json")] == [info.value.path.name]  # type: ignore[union-attr]
    rec = load(info.value.path)  # type: ignore[arg-type]
    assert rec.scenario.size() == (2, 4) and rec.strategy.name == "preempt"


def test_check_schedule_without_preemptions_on_a_clean_model(tmp_path: Path) -> None:
    sc = canonical("migrate-vs-fault")
    check_schedule(sc, Preemptions(len(sc.tasks), start=1), out=tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("start", "switches"), [(2, ()), (0, ((0, 2),)), (0, ((128, 1),))])
def test_preemptions_refuse_what_one_byte_cannot_say(start: int,
                                                     switches: tuple[tuple[int, int], ...]
                                                     ) -> None:
    with pytest.raises(ValueError, match="Preemptions: "):
        Preemptions(2, start, switches)
