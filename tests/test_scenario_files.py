"""Scenario files (issue 13 item 4): a kernel engineer hands ``migfuzz stress`` a race of their
own as JSON, with loops; every shipped example runs under every strategy, its move_pages
statuses reach the output, and every bad file is one line naming the file and field, exit 2."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from fuzzers._targets import Sequential
from migfuzz.cli import main
from migfuzz.findings import load
from migfuzz.gate import FAILED, Check, GateConfig
from migfuzz.gate._gate import _Gate
from migfuzz.history import History
from migfuzz.nightly import CorpusIndex, harvest
from migfuzz.replay import run_traced
from migfuzz.report_html import render
from migfuzz.strategies import EXHAUSTIVE, STRATEGIES
from migfuzz.timeline import describe
from stress.workload import load_scenario_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "corpus" / "scenarios").glob("*.json"))


def stress(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    rc = main(["stress", "--json", "--jobs", "1", *argv])
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else None


def test_examples_are_shipped() -> None:
    assert {p.name for p in EXAMPLES} >= {"threads-move-pages.json",
                                          "threads-move-pages-fuzzable.json"}


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s not in EXHAUSTIVE])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_runs_under_every_strategy(
    path: Path, strategy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out = stress(capsys, "--scenario", str(path), "--strategy", strategy, "--runs", "20",
                     "--fixes", "all", "--executor", "direct", "--out", str(tmp_path))
    assert rc == 0 and out["findings"] == []
    raw = json.loads(path.read_text())
    assert out["scenario"] == raw["name"]
    moves = sum(op[0] == "move_pages" for t in load_scenario_file(str(path)).tasks
                for op in t.ops)
    # readers and movers: every move of the 20 runs has a status in the output (-ENOENT: a
    # second mover found the first one's migration entry, which follow_page does not follow)
    assert sum(out.get("move_pages_status", {}).values()) == 20 * moves
    assert set(out["move_pages_status"]) <= {"node 0", "node 1", "-EAGAIN", "-EBUSY",
                                             "-ENOENT"}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", EXHAUSTIVE)
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_runs_under_an_exhaustive_strategy(
    path: Path, strategy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One run of dpor is a search of up to DPOR_RUN_EXECUTIONS executions of the scenario
    # (12 CPU s for threads-move-pages), so one run, not the 20 of the sampling strategies.
    rc, out = stress(capsys, "--scenario", str(path), "--strategy", strategy, "--runs", "1",
                     "--fixes", "all", "--executor", "direct", "--out", str(tmp_path))
    assert rc == 0 and out["findings"] == []
    assert out["scenario"] == json.loads(path.read_text())["name"]


def test_loops_are_unrolled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """reader1/2 read six times, reader3 three times two pages, mover once: 19 reads a run."""
    path = ROOT / "corpus" / "scenarios" / "threads-move-pages.json"
    rc, out = stress(capsys, "--scenario", str(path), "--runs", "5", "--fixes", "all",
                     "--executor", "direct", "--out", str(tmp_path))
    assert rc == 0 and out["op_counts"] == {"move_pages": 30, "read": 95}


def test_a_finding_of_a_scenario_file_replays(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The file's scenario travels in the finding file: repro needs nothing else. gup-vs-fork
    as a user would write it: the known flaw of V2, found and replayed."""
    f = tmp_path / "gup.json"
    f.write_text(json.dumps({
        "name": "my-gup-fork", "world": {"nodes": 2, "pages_per_node": 8, "swap_slots": 4},
        "processes": [{"pid": 1, "vmas": [{"start": 0, "end": 1, "writable": True}],
                       "prefault": [[0, 5]]}],
        "tasks": [{"name": "A", "ops": [["pin", 1, 0, 500]]},
                  {"name": "B", "ops": [["fork", 1, 2]]},
                  {"name": "C", "ops": [{"repeat": 2, "ops": [["read", 2, 0]]}]}]}))
    out_dir = tmp_path / "out"
    _, out = stress(capsys, "--scenario", str(f), "--runs", "400", "-x", "--executor",
                     "direct", "--out", str(out_dir))
    [finding] = out["findings"]
    assert finding["signature"] == "lost-write in user_access"
    assert main(["repro", finding["file"]]) == 1  # still reproduces
    assert "my-gup-fork" in capsys.readouterr().out


@pytest.mark.parametrize("content, field", [
    ("{", "not a readable JSON scenario file"),
    ('{"name": "x", "world": {}, "processes": [], "tasks": [{"name": "t", "ops": '
     '[{"repeat": 0, "ops": [["read", 1, 0]]}]}]}', "tasks[0].ops[0]: a loop"),
    ('{"name": "x", "world": {}, "processes": [], "tasks": [{"name": "t", "ops": '
     '[{"repeat": 64, "ops": [["read", 1, 0], ["read", 1, 0]]}]}]}', "more than 64"),
    ('{"name": "x", "world": {"nodes": "2"}, "processes": [], "tasks": []}', "world.nodes"),
    ('{"name": "x", "world": {}, "processes": [], "tasks": [{"name": "t", "ops": '
     '[["fly", 1]]}]}', "unknown operation"),
])
def test_a_bad_file_is_one_line_naming_the_file_and_field(
    content: str, field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    rc = main(["stress", "--scenario", str(f), "--runs", "1", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and str(f) in err and field in err, err
    assert "Traceback" not in err


def test_a_missing_file_is_a_usage_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["stress", "--scenario", str(tmp_path / "nope.json"), "--runs", "1",
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "nope.json" in capsys.readouterr().err


TINY_FILE = {
    "name": "my-tiny-race", "world": {"nodes": 2, "pages_per_node": 4, "swap_slots": 0,
                                      "config_swap": False},
    "processes": [{"pid": 1, "vmas": [{"start": 0, "end": 1, "writable": True}],
                   "prefault": [[0, 5]]}],
    "tasks": [{"name": "reader", "ops": [["read", 1, 0]]},
              {"name": "mover", "ops": [["move_pages", 1, 0, 1, 0]]}]}
"""A user's race small enough that a planted bug (missing-get-new: the new page's reference
is never taken, so the first move frees a mapped page) shows in the first run."""


def tiny_file(tmp_path: Path) -> Path:
    f = tmp_path / "tiny.json"
    f.write_text(json.dumps(TINY_FILE))
    return f


def test_repro_of_a_scenario_saves_replays_minimizes_and_reports(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`repro --scenario` under a given strategy and seed: the finding is saved, replayed,
    minimized into OUT/minimized/; both files replay with plain `repro`; and a nightly
    harvest of the directory puts it, under the file's scenario name, in the report."""
    out = tmp_path / "out"
    rc = main(["repro", "--scenario", str(tiny_file(tmp_path)), "--strategy", "pct",
               "--seed", "3", "--runs", "5", "--bug", "missing-get-new", "--executor",
               "direct", "--out", str(out), "--no-timeline"])
    text = capsys.readouterr().out
    assert rc == 1, text
    (found,) = out.glob("*.json")
    (small,) = (out / "minimized").glob("*.json")
    assert str(found) in text and str(small) in text
    assert "result: REPRODUCED" in text and "minimized:" in text
    rec = load(found)
    assert rec.scenario.name == "my-tiny-race" and rec.bugs == ["missing-get-new"]
    assert rec.strategy.name == "pct" and rec.origin["campaign_seed"] == 3
    assert load(small).scenario.name == "my-tiny-race (minimized)"
    assert main(["repro", str(found), "--no-timeline"]) == 1
    assert main(["repro", str(small), "--no-timeline"]) == 1
    with History(tmp_path / "h.sqlite") as h:
        night = h.start_night(budget_s=60, jobs=1, bugs=["missing-get-new"],
                              out_dir=str(tmp_path), model_commit="test", tool_version="test")
        run_id = h.start_run(night=night, kind="stress", target="my-tiny-race", seed=3,
                             bugs=["missing-get-new"], jobs=1, budget_s=60, out_dir=str(out))
        run = h.run(run_id)
        assert run is not None
        got = harvest(h, run, CorpusIndex())
        assert got.files == [str(found)] and not got.rejected
        page, _, shown = render(h, night)
    assert shown == [rec.key] and "my-tiny-race" in page and rec.signature in page


def test_repro_of_a_scenario_that_finds_nothing_exits_0(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["repro", "--scenario", str(tiny_file(tmp_path)), "--runs", "3", "--fix",
               "all", "--executor", "direct", "--out", str(tmp_path / "out")])
    assert rc == 0 and "no finding in 3 runs" in capsys.readouterr().out
    assert not list((tmp_path / "out").glob("*.json"))


@pytest.mark.parametrize("argv, message", [
    (["--scenario", "BAD"], "world.nodes"),
    (["--strategy", "pct", "FILE"], "--strategy is for --scenario"),
    (["--scenario", "TINY", "FILE"], "FILE arguments are for finding files"),
    ([], "give finding files, or --scenario FILE"),
])
def test_repro_scenario_usage_errors(argv: list[str], message: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "world": {"nodes": "2"}, "processes": [], "tasks": []}')
    sub = {"BAD": str(bad), "TINY": str(tiny_file(tmp_path)),
           "FILE": str(ROOT / "corpus" / "known" / "unlock-before-remove.json")}
    assert main(["repro", *(sub.get(x, x) for x in argv)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def gate_parts(cfg: GateConfig) -> dict[tuple[str, str], Check]:
    """The parts of the gate that --scenario changes (dfs, stress), as run_gate runs them;
    the others are tests/test_gate.py's."""
    g = _Gate(cfg, None)
    g.dfs()
    g.stress()
    assert g.result.properties["stress"]["scenarios"] == cfg.scenario_file
    return {(c.suite, c.name): c for c in g.result.checks}


def test_gate_explores_and_stresses_a_scenario_file(tmp_path: Path) -> None:
    """`gate --scenario`: the DFS part explores the file's scenario and the stress part runs
    it; with a planted bug both fail, naming the scenario and the rerun command (the slow
    test below passes it without the bug)."""
    f = tiny_file(tmp_path)
    base = GateConfig(budget=0.01, scenarios=(), seeds=(1,), out=str(tmp_path / "findings"),
                      scenario_file=str(f), scenario_data=load_scenario_file(str(f)).dumps())
    bad = gate_parts(dataclasses.replace(base, bugs=("missing-get-new",),
                                         out=str(tmp_path / "bad")))
    assert {c.status for c in bad.values()} == {FAILED}
    assert f"--scenario {f}" in bad["stress", "seed-1"].text
    for c in bad.values():
        (path,) = [w for w in c.message.split() if w.endswith(".json")]
        assert load(path).scenario.name == "my-tiny-race"


@pytest.mark.slow
def test_gate_command_with_a_scenario_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The gate from the command line, shortest budget, on a corpus of the flaws only: the
    file's scenario is explored exhaustively and stressed, passes without a bug, and is in
    the verdict (a JUnit test case of its own) and the summary."""
    corpus = tmp_path / "corpus"
    for sub in ("known", "regressions"):
        (corpus / sub).mkdir(parents=True)
    shutil.copytree(ROOT / "corpus" / "flaws", corpus / "flaws")
    junit = tmp_path / "gate.xml"
    assert main(["gate", "--scenario", str(tiny_file(tmp_path)), "--budget", "0.01",
                 "--jobs", "1", "--corpus", str(corpus), "--out", str(tmp_path / "o"),
                 "--junit", str(junit)]) == 0
    out = capsys.readouterr().out
    assert "scenario:my-tiny-race: " in out and "exhausted" in out
    assert f"scenario file {tmp_path}" in out
    assert 'name="scenario:my-tiny-race"' in junit.read_text()


def test_gate_with_a_bad_scenario_file_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "world": {}, "processes": [], "tasks": [{"name": "t", '
                   '"ops": [["fly", 1]]}]}')
    assert main(["gate", "--scenario", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "unknown operation" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_move_pages_statuses_are_in_the_timeline() -> None:
    """What a finding's timeline shows (repro, the nightly report): each move's status, in
    the task that moved. One forced schedule: each task runs to its end, in task order."""
    sc = load_scenario_file(str(ROOT / "corpus" / "scenarios" / "threads-move-pages.json"))
    out = run_traced(sc, Sequential(), executor="direct", max_steps=50_000)
    assert out.finding is None and out.events is not None
    names = [t.name for t in sc.tasks]
    rows = [(names[e[1]], describe(e[2], e[3])) for e in out.events
            if e[2] == "op" and "status" in str(e[3])]
    # the mover alone, uncontended: node 1, node 0, three times over
    assert rows == [("mover", f">> move_pages status[0] = node {n}")
                    for n in (1, 0, 1, 0, 1, 0)]
