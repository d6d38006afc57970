"""``migfuzz gate``: passes on the faithful model, fails (naming the signature and the command
that reproduces it) with a catalog bug injected, gives the same verdicts twice, and reports
unusable corpus files (exit 2) and harness errors (exit 3) as what they are."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import migfuzz.gate as gate_mod
from migfuzz.bugs import injected
from migfuzz.cli import main
from migfuzz.findings import load
from migfuzz.gate import (
    GATE_SEEDS,
    MIN_RUNS_PER_SEED,
    Check,
    GateConfig,
    GateResult,
    junit_xml,
    run_gate,
    stress_plan,
    verdicts,
)
from migfuzz.replay import check
from stress.scenarios import TINY
from target.bugs import CATALOG

ROOT = Path(__file__).resolve().parent.parent
KNOWN = ROOT / "corpus" / "known"


def run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code or 0)


def cases(xml_path: Path) -> dict[str, ET.Element]:
    root = ET.parse(xml_path).getroot()
    return {f"{tc.get('classname')}::{tc.get('name')}": tc for tc in root.iter("testcase")}


def prop(tc: ET.Element, name: str) -> str | None:
    for p in tc.iter("property"):
        if p.get("name") == name:
            return p.get("value")
    return None


def corpus_with(tmp_path: Path, regressions: dict[str, str] = {},  # noqa: B006 (read only)
                known: dict[str, str] = {}) -> Path:  # noqa: B006
    c = tmp_path / "corpus"
    for sub, files in (("regressions", regressions), ("known", known)):
        (c / sub).mkdir(parents=True)
        for name, text in files.items():
            (c / sub / name).write_text(text)
    return c


def fixed_regression(bug: str = "unlock-before-remove") -> str:
    """A known reproducer as a regression of the faithful model: the finding its bug causes,
    "fixed" on the faithful model, back as soon as the bug is injected."""
    d = json.loads((KNOWN / f"{bug}.json").read_text())
    d["bugs"] = []
    d["key"] = d["signature"]  # the key follows the bugs (checked on load)
    return json.dumps(d)


def small(tmp_path: Path, corpus: Path, *, bugs: tuple[str, ...] = (),
          scenarios: tuple[str, ...] = ()) -> GateConfig:
    """A gate without DFS (unless asked) and one minimal stress seed: for the replay parts."""
    return GateConfig(budget=0.01, bugs=bugs, corpus=corpus, scenarios=scenarios, seeds=(1,),
                      out=str(tmp_path / "findings"))


# -- the plan -----------------------------------------------------------------------------------


def test_stress_plan_is_a_pure_function_of_budget_and_work() -> None:
    assert stress_plan(120, 2000) == stress_plan(120, 2000)
    per_seed, reserved = stress_plan(120, 2000)
    assert reserved == pytest.approx(2.0)
    assert per_seed == int(118 * gate_mod.STRESS_RUNS_PER_SECOND) // len(GATE_SEEDS)
    assert stress_plan(240, 2000)[0] > per_seed  # more budget, more runs
    assert stress_plan(0.001, 10**6)[0] == MIN_RUNS_PER_SEED  # never below the minimum
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive"):
            stress_plan(bad, 0)


# -- end to end ---------------------------------------------------------------------------------


def test_gate_passes_on_the_faithful_model_and_twice_gives_the_same_verdicts(
        tmp_path: Path) -> None:
    """The CI command, run twice with the same arguments: exit 0, one test case per check,
    the same test cases with the same verdicts, schedule counts and run counts."""
    runs = []
    for i in (1, 2):
        junit = tmp_path / f"gate{i}.xml"
        proc = subprocess.run(
            [sys.executable, "-m", "migfuzz.cli", "gate", "--budget", "2", "--jobs", "2",
             "--junit", str(junit), "--out", str(tmp_path / "findings")],
            cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "result: PASS" in proc.stdout
        runs.append(junit)
    assert not list(tmp_path.glob(".gate*"))  # atomic write: no temp file left behind
    first, second = (junit.read_text() for junit in runs)
    assert verdicts(first) == verdicts(second)
    a, b = cases(runs[0]), cases(runs[1])
    assert sorted(a) == sorted(
        [f"migfuzz.gate.known::{bug}[{mode}]" for bug in CATALOG
         for mode in ("faithful", "injected")]
        + [f"migfuzz.gate.dfs::{name}" for name in TINY]
        + [f"migfuzz.gate.stress::seed-{s}" for s in GATE_SEEDS])
    assert all(status == "passed" for _, _, status in verdicts(first))
    for name in TINY:
        tc = a[f"migfuzz.gate.dfs::{name}"]
        assert prop(tc, "exhausted") == "true" and prop(tc, "capped") == "false"
        assert int(prop(tc, "schedules") or 0) > 1
        assert prop(tc, "schedules") == prop(b[f"migfuzz.gate.dfs::{name}"], "schedules")
        assert f"{int(prop(tc, 'schedules') or 0):,} schedules explored" in (
            tc.findtext("system-out") or "")
    for s in GATE_SEEDS:
        tc = a[f"migfuzz.gate.stress::seed-{s}"]
        assert prop(tc, "runs") == prop(tc, "runs_planned") == prop(
            b[f"migfuzz.gate.stress::seed-{s}"], "runs")


@pytest.mark.parametrize("bug", ["unlock-before-remove", "missing-get-new"])
def test_an_injected_bug_fails_the_gate_naming_its_signature(
        bug: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    signature = load(KNOWN / f"{bug}.json").signature
    results = []
    for i in (1, 2):
        junit = tmp_path / f"gate{i}.xml"
        code = run_main(["gate", "--budget", "1", "--jobs", "1", "--bug", bug,
                         "--junit", str(junit), "--out", str(tmp_path / "findings")])
        assert code == 1
        results.append(junit)
    out = capsys.readouterr().out
    assert "result: FAIL (findings)" in out and signature in out
    assert verdicts(results[0].read_text()) == verdicts(results[1].read_text())
    for key, tc in cases(results[0]).items():
        failure = tc.find("failure")
        if ".known::" in key:  # the known reproducers inject their own bugs, not --bug
            assert failure is None, key
            continue
        assert failure is not None, key
        message = failure.get("message", "")
        assert message.startswith(signature) and "migfuzz repro " in message, message
        saved = load(message.split("migfuzz repro ", 1)[1].split()[0])
        assert saved.signature == signature and saved.bugs == [bug]
        if ".stress::" in key:
            assert f"migfuzz stress --seed {key.rsplit('-', 1)[1]} " in (failure.text or "")


def test_an_unknown_bug_is_a_usage_error_naming_the_valid_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_main(["gate", "--bug", "no-such-bug", "--junit", "gate.xml"]) == 2
    err = capsys.readouterr().err
    assert "unknown bug no-such-bug; known:" in err and "missing-get-new" in err
    assert list(tmp_path.iterdir()) == []  # nothing run, nothing written
    assert run_main(["gate", "--budget", "0"]) == 2
    assert run_main(["gate", "--corpus", str(tmp_path / "none")]) == 2


# -- regressions and known reproducers ----------------------------------------------------------


def test_a_fixed_regression_passes_and_comes_back_with_its_bug(tmp_path: Path) -> None:
    corpus = corpus_with(tmp_path, regressions={"leak.json": fixed_regression()})
    clean = run_gate(small(tmp_path, corpus))
    assert clean.exit_code == 0
    [reg] = [c for c in clean.checks if c.suite == "regressions"]
    assert reg.name == "leak.json" and reg.status == "passed"

    back = run_gate(small(tmp_path, corpus, bugs=("unlock-before-remove",)))
    assert back.exit_code == 1
    [reg] = [c for c in back.checks if c.suite == "regressions"]
    assert reg.status == "failed"
    assert reg.message.startswith("migration-entry-leak in unlock_page: still reproduces: "
                                  "migfuzz repro ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{\"format\": \"migfuzz-finding\"", "not valid JSON"),
        ((KNOWN / "unlock-before-remove.json").read_text(),  # a reproducer, with its bug
         "a regression entry is a finding of the faithful model"),
    ],
)
def test_an_unusable_regression_file_is_exit_2_and_a_junit_error(
        text: str, problem: str, tmp_path: Path) -> None:
    corpus = corpus_with(tmp_path, regressions={"bad.json": text})
    r = run_gate(small(tmp_path, corpus))
    assert r.exit_code == 2
    [reg] = [c for c in r.checks if c.suite == "regressions"]
    assert reg.status == "invalid" and problem in reg.message
    err = ET.fromstring(junit_xml(r)).find(".//testcase[@name='bad.json']/error")
    assert err is not None and err.get("type") == "invalid-input"


def test_a_known_reproducer_that_does_not_flip_fails_its_injected_mode(tmp_path: Path) -> None:
    d = json.loads((KNOWN / "unlock-before-remove.json").read_text())
    d["signature"] = "use-after-free in get_page"  # what it no longer shows
    d.update(kind="use-after-free", function="get_page",  # consistent, or it is corrupt
             key="use-after-free in get_page +bugs:unlock-before-remove")
    corpus = corpus_with(tmp_path, known={"unlock-before-remove.json": json.dumps(d)})
    r = run_gate(small(tmp_path, corpus))
    assert r.exit_code == 1
    status = {c.name: (c.status, c.message) for c in r.checks if c.suite == "known"}
    assert status["unlock-before-remove[faithful]"][0] == "passed"
    failed, message = status["unlock-before-remove[injected]"]
    assert failed == "failed"
    assert message.startswith("detected as migration-entry-leak in unlock_page, expected "
                              "use-after-free in get_page")
    assert "migfuzz repro " in message


def test_a_known_file_that_is_not_a_catalog_bug_is_invalid_in_both_modes(
        tmp_path: Path) -> None:
    text = (KNOWN / "missing-get-new.json").read_text()
    corpus = corpus_with(tmp_path, known={"frobnicate.json": text})
    r = run_gate(small(tmp_path, corpus))
    assert r.exit_code == 2
    assert [(c.name, c.status) for c in r.checks if c.suite == "known"] == [
        ("frobnicate[faithful]", "invalid"), ("frobnicate[injected]", "invalid")]


# -- DFS: the cap, harness errors ---------------------------------------------------------------


def test_a_capped_dfs_search_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate_mod, "DFS_MAX_EXECUTIONS", 10)
    r = run_gate(small(tmp_path, corpus_with(tmp_path), scenarios=("tiny-migrate-pin",)))
    assert r.exit_code == 0  # capped is not failed, but never silent:
    [dfs] = [c for c in r.checks if c.suite == "dfs"]
    assert dfs.properties == {"schedules": "10", "exhausted": "false", "capped": "true"}
    assert "CAPPED at max_executions=10" in dfs.out[0] and "NOT exhaustive" in dfs.out[0]
    xml = junit_xml(r)
    assert "NOT exhaustive" in xml and 'name="capped" value="true"' in xml
    assert "CAPPED" in gate_mod.format_summary(r)


def test_a_harness_error_is_exit_3_not_a_finding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the harness broke")

    monkeypatch.setattr(gate_mod, "run_scenario", broken)
    r = run_gate(small(tmp_path, corpus_with(tmp_path), scenarios=("tiny-migrate-fault",)))
    assert r.exit_code == 3
    [dfs] = [c for c in r.checks if c.suite == "dfs"]
    assert dfs.status == "error" and "RuntimeError: the harness broke" in dfs.message
    err = ET.fromstring(junit_xml(r)).find(".//testcase[@name='tiny-migrate-fault']/error")
    assert err is not None and err.get("type") == "harness-error"
    assert "Traceback" in (err.text or "")


def test_junit_survives_control_characters_and_markup() -> None:
    r = GateResult(GateConfig())
    c = Check("dfs", "odd", seconds=0.5)
    c.fail("failed", "lock <a> & \x01 [b -> c]", "trace\x1b[0m")
    r.checks.append(c)
    root = ET.fromstring(junit_xml(r))
    failure = root.find(".//testcase[@name='odd']/failure")
    assert failure is not None
    assert failure.get("message") == "lock <a> & \\x01 [b -> c]"
    assert root.get("failures") == "1" and root.get("tests") == "1"


@pytest.mark.slow
@pytest.mark.parametrize("bug", sorted(CATALOG))
def test_every_catalog_bug_fails_the_gate(bug: str, tmp_path: Path) -> None:
    """Even at a tiny budget: the exhaustive part sees every catalog bug (the stress part,
    at 25 runs a seed, sees only the easy ones; at the default budget it runs ~11,800)."""
    r = run_gate(GateConfig(budget=1, bugs=(bug,), corpus=corpus_with(tmp_path),
                            out=str(tmp_path / "findings")))
    assert r.exit_code == 1
    assert {c.status for c in r.checks} <= {"passed", "failed"}  # findings, not errors
    assert any(c.status == "failed" for c in r.checks if c.suite == "dfs"), bug


def test_the_regressions_directory_exists() -> None:
    d = ROOT / "corpus" / "regressions"
    assert d.is_dir() and (d / "README.md").is_file()
    entries = sorted(d.glob("*.json"))
    assert entries  # the gate's regressions suite has something to check
    for path in entries:  # every entry is a faithful-model finding the model no longer has
        rec = load(path)
        assert rec.bugs == [], path
        assert check(rec).status == "fixed", path
        bug = rec.origin.get("regression_of")
        if bug:  # ... and that the catalog bug it came from brings back
            with injected([bug]):
                assert check(rec).reproduced, path


def test_ci_workflows_run_the_gate_and_the_nightly() -> None:
    wf = (ROOT / ".github" / "workflows" / "migfuzz.yml").read_text()
    assert ".venv/bin/migfuzz gate --junit gate.xml" in wf and "make install" in wf
    assert ".venv/bin/migfuzz nightly --hours 6 --db nightly.sqlite --report nightly-report" in wf
    cf = (ROOT / ".github" / "workflows" / "cflite.yml").read_text()
    for needle in ("google/clusterfuzzlite/actions/build_fuzzers@v1",
                   "google/clusterfuzzlite/actions/run_fuzzers@v1", "language: python",
                   "code-change", "batch"):
        assert needle in cf, needle
