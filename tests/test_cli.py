"""The command line: listing, usage errors (exit 2, clear message, no traceback), the faithful
model staying clean over a short campaign, Ctrl-C, and determinism across --jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import migfuzz.campaign._plan as campaign_plan
import migfuzz.campaign._worker as campaign_mod
from migfuzz.campaign import Campaign, CampaignConfig
from migfuzz.cli import main
from migfuzz.findings import FindingRecord, KnownFlaw, load
from migfuzz.strategies import StrategySpec
from stress.scenarios import CANONICAL, canonical
from target.fixes import FIXES

ROOT = Path(__file__).resolve().parent.parent


def run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code or 0)


def test_scenarios_lists_every_canonical_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for name in CANONICAL:
        assert name in out
    assert run_main(["scenarios", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(CANONICAL)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stress", "--scenario", "no-such"], "unknown scenario 'no-such'; choose one of:"),
        (["stress", "--strategy", "bfs"], "argument --strategy: invalid choice: 'bfs'"),
        (["stress", "--executor", "threads"], "argument --executor: invalid choice"),
        (["stress", "--bug", "no-such-bug"], "unknown bug no-such-bug; known:"),
        (["stress", "--runs", "0"], "expected an integer from 1 to 1,000,000,000, got '0'"),
        (["stress", "--runs", "many"], "expected an integer from 1 to 1,000,000,000, got 'many'"),
        (["stress", "--jobs", "-1"], "expected an integer from 1 to 64"),
        (["stress", "--jobs", "1000"], "expected an integer from 1 to 64, got '1000'"),
        (["stress", "--max-steps", "10**12"], "--max-steps: expected an integer from 1 to"),
        (["minimize", "x.json", "-o", "o", "--search-runs", "1000000"],
         "--search-runs: expected an integer from 0 to 10,000"),
        (["stress", "--seconds", "-5"], "expected a positive number of seconds"),
        (["stress", "--seconds", "nan"], "expected a positive number of seconds"),
        (["stress", "--runs", "3", "--seconds", "3"], "not allowed with argument"),
        (["stress", "--seed", "-1"], "expected an integer >= 0"),
        (["repro"], "give finding files, or --scenario FILE"),
        (["repro", "--executor", "gevent", "x.json"], "invalid choice: 'gevent'"),
        (["minimize", "x.json"], "the following arguments are required: -o/--out"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ('{"format": "migfuzz-finding", "format_ver', "not valid JSON (truncated or corrupt?)"),
        ("", "empty file"),
        ('{"format": "something-else"}', "not a finding file"),
        ('{"format": "migfuzz-finding", "format_version": 1}', ": missing"),
        ('{"format": "migfuzz-finding", "format_version": 99}', "newer migfuzz"),
    ],
)
@pytest.mark.parametrize("command", ["repro", "minimize"])
def test_bad_finding_files_exit_2_naming_the_file(
    tmp_path: Path, content: str | None, problem: str, command: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "finding.json"
    if content is not None:
        path.write_text(content)
    argv = [command, str(path)] + (["-o", str(tmp_path / "o.json")] if command == "minimize"
                                   else [])
    assert run_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"migfuzz: error: {path}: ") and problem in err
    assert "Traceback" not in err


def test_mangled_schedule_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = FindingRecord(
        signature="deadlock in f", kind="deadlock", message="m", function="f", task="-",
        step=1, details={}, scenario=canonical("tiny-migrate-fault"),
        strategy=StrategySpec("random", 0), executor="direct", schedule=[0, 1], bugs=[],
        max_steps=100, steps=2, trace_hash="sha256:0",
    )
    d = rec.to_json()
    d["schedule"] = "mfs1:zzzz"
    path = tmp_path / "f.json"
    path.write_text(json.dumps(d))
    assert run_main(["repro", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"migfuzz: error: {path}: field schedule:")
    assert "Traceback" not in err


def test_out_that_is_a_file_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert run_main(["stress", "--runs", "1", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "cannot create the directory" in err and "Traceback" not in err


def test_repro_directory_argument_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(["repro", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_faithful_model_short_campaign_is_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With every upstream fix the model is clean; on V2 as posted (the default) the same
    campaign finds V2's real flaws, every one labelled as a known flaw, and exits 0."""
    out = tmp_path / "findings"
    rc = run_main(["stress", "--runs", "40", "--jobs", "1", "--executor", "direct",
                   "--fixes", "all", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert rc == 0, captured.err
    assert summary["runs"] == 40 and summary["findings"] == [] and summary["error"] is None
    assert summary["exit_code"] == 0 and summary["schedules_per_second"] > 0
    assert summary["fixes"] == sorted(FIXES)
    assert "migfuzz stress summary" in captured.err
    assert out.is_dir() and not list(out.iterdir())

    v2 = tmp_path / "v2"
    rc = run_main(["stress", "--runs", "40", "--jobs", "1", "--executor", "direct",
                   "--out", str(v2), "--json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert rc == 0, captured.err
    assert summary["fixes"] == [] and summary["findings"], "V2 as posted has real flaws"
    for f in summary["findings"]:
        flaw = f["known_flaw"]
        assert flaw is not None and flaw["fix"] in FIXES, f
        assert FIXES[flaw["fix"]].label() == flaw["label"]
        assert f["kind"] in FIXES[flaw["fix"]].finding_kinds
        assert load(f["file"]).known_flaw == KnownFlaw(flaw["fix"], flaw["label"], flaw["how"])
    assert "known flaws of V2 as posted" in captured.err
    assert "findings not explained by a known flaw" not in captured.err


def test_faithful_canonical_scenarios_on_trio_are_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in CANONICAL:
        rc = run_main(["stress", "--runs", "4", "--jobs", "1", "--scenario", name,
                       "--fixes", "all", "--out", str(tmp_path)])
        assert rc == 0, (name, capsys.readouterr())
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("strategy", ["random", "pct", "portfolio"])
def test_each_strategy_runs(strategy: str, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    rc = run_main(["stress", "--runs", "8", "--jobs", "1", "--executor", "direct",
                   "--strategy", strategy, "--scenario", "tiny-migrate-pin",
                   "--out", str(tmp_path), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["runs"] == 8
    by = summary["by_strategy"]
    assert sum(by.values()) == 8
    assert set(by) == ({"random", "pct"} if strategy == "portfolio" else {strategy})


def test_ctrl_c_stops_cleanly_and_keeps_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = campaign_mod.run_scenario
    calls = []

    def interrupted_on_fifth(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(campaign_mod, "run_scenario", interrupted_on_fifth)
    # PCT's probe runs a scenario too, once per scenario and process (cached): whether it
    # does here depends on which tests ran before in this process, so it is taken out.
    monkeypatch.setattr(campaign_plan, "_probe_decisions", lambda sc, max_steps: 50)
    summary = Campaign(CampaignConfig(runs=100, executor="direct", out=str(tmp_path))).run()
    assert summary.interrupted and summary.runs == 4 and summary.exit_code == 0  # cli: 130


def test_harness_errors_are_not_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("harness bug")

    monkeypatch.setattr(campaign_mod, "run_scenario", broken)
    rc = run_main(["stress", "--runs", "5", "--jobs", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 3
    assert "HARNESS ERROR (not a finding of the model) in run 0" in out
    assert "RuntimeError: harness bug" in out
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_jobs_do_not_change_the_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    results = []
    for jobs in ("1", "2"):  # with a bug, so that there are findings and hits to compare
        rc = run_main(["stress", "--runs", "60", "--jobs", jobs, "--executor", "direct",
                       "--seed", "5", "--bug", "unlock-before-remove",
                       "--out", str(tmp_path / jobs), "--json"])
        s = json.loads(capsys.readouterr().out)
        results.append((rc, s["runs"], s["decisions"], s["by_strategy"],
                        sorted((f["signature"], f["hits"], f["decisions"])
                               for f in s["findings"])))
    assert results[0][0] == 1 and results[0][4], results[0]
    assert results[0] == results[1]


@pytest.mark.slow
def test_sigint_to_a_parallel_campaign_prints_the_summary(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "migfuzz.cli", "stress", "--seconds", "120", "--jobs", "2",
         "--executor", "direct", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
    )
    assert proc.stderr is not None
    proc.stderr.readline()  # the header
    proc.stderr.readline()  # the first progress line: workers are running
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err  # a Ctrl-C'd campaign is not a clean one
    assert "interrupted by Ctrl-C" in out and "schedules" in out
    assert "Traceback" not in err
