"""Every catalog bug has a committed, minimized reproducer in corpus/known/<bug>.json, and it
flips: detected with the expected kind when the bug is injected, clean without it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migfuzz.bugs import bug_fixes, injected, measure_depth
from migfuzz.findings import load
from migfuzz.replay import ContinueScheduler, replay_schedule, run_traced
from target.bugs import CATALOG

KNOWN = Path(__file__).resolve().parent.parent / "corpus" / "known"


def test_every_catalog_bug_has_a_reproducer() -> None:
    assert sorted(p.stem for p in KNOWN.glob("*.json")) == sorted(CATALOG)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_reproducer_detected_with_the_bug(name: str) -> None:
    rec = load(KNOWN / f"{name}.json")
    assert rec.bugs == [name]
    assert sorted(rec.fixes) == bug_fixes(name)  # measured and reproduced alike
    with injected(rec.bugs, rec.fixes):
        rep = replay_schedule(rec.scenario, rec.schedule, executor=rec.executor,
                              max_steps=rec.max_steps)
    assert rep.divergence is None and rep.outcome is not None
    finding = rep.outcome.finding
    assert finding is not None and finding.signature == rec.signature
    assert finding.kind in CATALOG[name].expected_kinds


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_reproducer_clean_without_the_bug(name: str) -> None:
    """The faithful model on the same scenario (with the same upstream fixes of V2's flaws),
    following the recorded decisions for as long as they apply and then running without
    preemption, finds nothing."""
    rec = load(KNOWN / f"{name}.json")
    with injected([], rec.fixes):
        out = run_traced(rec.scenario, ContinueScheduler(rec.schedule),
                         executor=rec.executor, max_steps=rec.max_steps)
    assert out.finding is None, out.finding


def _depth_params() -> list[tuple[str, bool]]:
    out = [(n, False) for n in sorted(CATALOG)]
    out += [(n, True) for n, b in sorted(CATALOG.items()) if b.model_check]
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("name", "without_check"), _depth_params())
def test_depth_is_what_the_catalog_claims(name: str, without_check: bool) -> None:
    """The catalog's depth is measured: exhaustive preemption-bounded DFS of the bug's
    scenario first shows it at exactly the claimed bound (``migfuzz bugs --measure``)."""
    bug = CATALOG[name]
    r = measure_depth(name, without_check=without_check)
    claim = bug.depth_without_check if without_check else bug.depth
    assert r.bound == claim, (r.bound, r.executions)
    assert r.exhaustive or claim is None  # every lower bound was searched to the end
    assert bug.kind == ("sequential" if bug.depth == 0 else
                        "race" if bug.depth == 1 else "deep race")


def test_migfuzz_bugs_lists_depth_and_kind(capsys: pytest.CaptureFixture[str]) -> None:
    from migfuzz.cli import main

    assert main(["bugs", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(CATALOG)
    for name, r in rows.items():
        assert (r["depth"], r["kind"]) == (CATALOG[name].depth, CATALOG[name].kind)


def test_migfuzz_bugs_measure_compares_with_the_catalog(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from migfuzz.cli import main

    assert main(["bugs", "--measure", "missing-get-new"]) == 0
    assert "missing-get-new: measured depth 0" in capsys.readouterr().out
    wrong = dataclasses.replace(CATALOG["missing-get-new"], depth=2)
    monkeypatch.setitem(CATALOG, "missing-get-new", wrong)
    assert main(["bugs", "--measure", "missing-get-new"]) == 1
    assert "catalog says 2  MISMATCH" in capsys.readouterr().out
    assert main(["bugs", "--measure", "no-such-bug"]) == 2
