"""Every catalog bug has a committed, minimized reproducer in corpus/known/<bug>.json, and it
flips: detected with the expected kind when the bug is injected, clean without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from migfuzz.bugs import injected
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
    with injected(rec.bugs):
        rep = replay_schedule(rec.scenario, rec.schedule, executor=rec.executor,
                              max_steps=rec.max_steps)
    assert rep.divergence is None and rep.outcome is not None
    finding = rep.outcome.finding
    assert finding is not None and finding.signature == rec.signature
    assert finding.kind in CATALOG[name].expected_kinds


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_reproducer_clean_without_the_bug(name: str) -> None:
    """The faithful model on the same scenario, following the recorded decisions for as
    long as they apply and then running without preemption, finds nothing."""
    rec = load(KNOWN / f"{name}.json")
    out = run_traced(rec.scenario, ContinueScheduler(rec.schedule), executor=rec.executor,
                     max_steps=rec.max_steps)
    assert out.finding is None, out.finding
