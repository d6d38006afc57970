"""Scenario files (issue 13 item 4): a kernel engineer hands ``migfuzz stress`` a race of their
own as JSON, with loops; every shipped example runs under every strategy, its move_pages
statuses reach the output, and every bad file is one line naming the file and field, exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from migfuzz.cli import main
from migfuzz.strategies import STRATEGIES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "corpus" / "scenarios").glob("*.json"))


def stress(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    rc = main(["stress", "--json", "--jobs", "1", *argv])
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else None


def test_examples_are_shipped() -> None:
    assert [p.name for p in EXAMPLES if p.name == "threads-move-pages.json"]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_runs_under_every_strategy(
    path: Path, strategy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out = stress(capsys, "--scenario", str(path), "--strategy", strategy, "--runs", "20",
                     "--fixes", "all", "--executor", "direct", "--out", str(tmp_path))
    assert rc == 0 and out["findings"] == []
    raw = json.loads(path.read_text())
    assert out["scenario"] == raw["name"]
    if "move_pages" in path.read_text():
        # three readers and a mover: every move of the 20 runs has a status in the output
        assert sum(out["move_pages_status"].values()) == 20 * 6
        assert set(out["move_pages_status"]) <= {"node 0", "node 1", "-EAGAIN", "-EBUSY"}


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
