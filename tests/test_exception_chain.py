"""One walker of exception chains (``migfuzz._errors.find_cause``) for both questions the
service asks of what escaped a run: was it a Ctrl-C (campaign, gate) or a schedule divergence
(replay)? trio wraps what escapes a task in an exception group, and the executors wrap it in
``StressInternalError``; both callers must see through both."""

from __future__ import annotations

from pathlib import Path

import pytest

import migfuzz.campaign._worker as campaign_mod
import migfuzz.replay as replay_mod
from migfuzz._errors import find_cause
from migfuzz.cli import main
from stress import StressInternalError
from stress.scenarios import canonical
from stress.schedulers import ScheduleDivergence


def _wrapped(inner: BaseException) -> ExceptionGroup[StressInternalError]:
    """What trio's nursery raises when the executor reports ``inner`` from a model task."""
    try:
        raise StressInternalError("model task raised") from inner
    except StressInternalError as exc:
        return ExceptionGroup("trio nursery", [exc])


def test_find_cause_walks_groups_causes_and_contexts_once() -> None:
    div = ScheduleDivergence("task 2 is not runnable")
    outer = RuntimeError("while cleaning up")
    outer.__context__ = _wrapped(div)
    assert find_cause(outer, ScheduleDivergence) is div
    assert find_cause(outer, KeyboardInterrupt) is None
    loop = ValueError("a")
    loop.__context__ = ValueError("b")
    loop.__context__.__context__ = loop  # a cycle ends the walk, it does not hang it
    assert find_cause(loop, KeyError) is None


def test_a_ctrl_c_inside_an_exception_group_interrupts_the_campaign(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def ctrl_c_in_a_task(*args: object, **kwargs: object) -> object:
        raise _wrapped(KeyboardInterrupt())

    monkeypatch.setattr(campaign_mod, "run_scenario", ctrl_c_in_a_task)
    # 130 (interrupted), not 3: a walker that skips group members calls it a harness error
    assert main(["stress", "--runs", "5", "--jobs", "1", "--executor", "direct",
                 "--scenario", "tiny-migrate-pin", "--out", str(tmp_path)]) == 130


def test_a_divergence_inside_an_exception_group_is_a_divergence(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def diverging(*args: object, **kwargs: object) -> object:
        raise _wrapped(ScheduleDivergence("recorded task 1 is not runnable"))

    monkeypatch.setattr(replay_mod, "run_scenario", diverging)
    rep = replay_mod.replay_schedule(canonical("tiny-migrate-pin"), [1, 0], executor="trio",
                                     max_steps=100)
    assert rep.outcome is None and rep.divergence == "recorded task 1 is not runnable"
