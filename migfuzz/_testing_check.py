"""Test helpers that fail a test with a finding's timeline and its ``migfuzz repro`` command
(``migfuzz.testing`` re-exports them; docs/testing.md).

:func:`check_scenario` runs a scenario for N schedules under a strategy, exactly the runs of
``migfuzz stress --scenario FILE --strategy S --seed N --runs N -x --jobs 1`` (a campaign,
in-process); :func:`check_schedule` runs one drawn pair of ``scenarios()``/``schedules()``.
A finding is saved as any finding is (``replay.confirm_record``, ``FindingStore``), replayed
as ``migfuzz repro FILE`` replays it, and raised as :class:`ScenarioFailed`, an
``AssertionError``: pytest, unittest and Hypothesis all treat it as a failed test, and
Hypothesis shrinks on it. Inside Hypothesis only the final (shrunk) example writes a file:
the examples tried while shrinking fail with the signature alone, so that shrinking costs
one run per example, not three replays and a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from stress import DEFAULT_MAX_STEPS
from stress.executors import EXECUTORS
from stress.scenarios import canonical
from stress.workload import Scenario, load_scenario_file

from ._errors import HarnessError, UsageError
from ._testing_draw import Preemptions, run_schedule
from .bugs import check_bugs, check_fixes, injected
from .campaign import Campaign, CampaignConfig
from .findings import FindingRecord, FindingStore, load
from .replay import check, confirm_record
from .report import format_verdict
from .strategies import BASE_STRATEGIES, StrategySpec, check_strategy

TIMELINE_TAIL = 60  # events of the timeline a failure shows (the end: where it broke)


class ScenarioFailed(AssertionError):
    """A finding: the message has its timeline and the commands that replay ``path``."""

    def __init__(self, message: str, path: Path | None = None,
                 record: FindingRecord | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.record = record


ScenarioFailed.__module__ = "migfuzz.testing"  # how a failing test names it: the public name


def _scenario(scenario: Scenario | str | os.PathLike[str]) -> Scenario:
    """A scenario, a scenario file's path, or a canonical scenario's name."""
    if isinstance(scenario, Scenario):
        return scenario
    if os.path.exists(scenario):
        return load_scenario_file(os.fspath(scenario))
    return canonical(os.fspath(scenario))


def _check_executor(executor: str) -> None:
    if executor not in EXECUTORS:  # stress.executors.get_executor's check, as a UsageError
        raise UsageError(f"unknown executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")


def _out(out: str | os.PathLike[str] | None) -> Path:
    return Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="migfuzz-"))


def _failure(path: Path, headline: str) -> ScenarioFailed:
    """The failure of the finding saved at ``path``: replayed as ``migfuzz repro`` does, its
    report and timeline, and the commands that replay it (``format_verdict`` ends with
    them: ``report.repro_commands``)."""
    record = load(path)
    verdict = check(record, None, str(path))
    text = format_verdict(verdict, str(path), tail=TIMELINE_TAIL, width=150)
    return ScenarioFailed(f"{headline}\n{text}", path, record)


def check_scenario(scenario: Scenario | str | os.PathLike[str], strategy: str = "pct", *,
                   runs: int = 200, seed: int = 0, bugs: Sequence[str] = (),
                   fixes: Sequence[str] = ("all",), out: str | os.PathLike[str] | None = None,
                   executor: str = "direct", max_steps: int = DEFAULT_MAX_STEPS) -> None:
    """Run ``scenario`` (a Scenario, a scenario file, or a canonical name) ``runs`` times
    under ``strategy`` (``migfuzz stress --strategy``'s: random, pct, pos, cpct, surw, dpor,
    portfolio) from ``seed``, with the catalog
    ``bugs`` on top of the upstream ``fixes`` (default all: ``()`` is V2 as posted, whose
    known flaws then fail the test too, labelled); fail at the first finding.

    The finding file goes into ``out`` (pytest's ``tmp_path``, say; default a new temporary
    directory).

    Raises:
        ScenarioFailed: a finding, with its timeline and ``migfuzz repro FILE``.
        UsageError (a ValueError): an unknown strategy, bug, fix or executor, a bad scenario.
        HarnessError: a run went wrong in migfuzz itself (never a finding of the model).
    """
    __tracebackhide__ = True  # pytest: the failure is the finding, not this frame
    sc = _scenario(scenario)
    check_strategy(strategy)
    _check_executor(executor)
    directory = _out(out)
    cfg = CampaignConfig(seed=seed, runs=runs, strategy=strategy, executor=executor, jobs=1,
                         scenario=sc.name, scenario_data=sc.dumps(),
                         bugs=tuple(check_bugs(bugs)), fixes=tuple(check_fixes(fixes)),
                         out=str(directory), max_steps=max_steps, exitfirst=True,
                         members=BASE_STRATEGIES)
    summary = Campaign(cfg).run()
    if summary.error is not None:
        raise HarnessError(f"{sc.name}: run {summary.error.run} ({summary.error.strategy}): "
                           f"{summary.error.error}")
    if not summary.findings:
        if out is None:
            with contextlib.suppress(OSError):
                directory.rmdir()
        return
    entry = summary.findings[0]
    raise _failure(entry.path, f"{entry.record.signature} in scenario {sc.name}, run "
                   f"{entry.record.origin.get('run')} of {runs} ({strategy} from seed "
                   f"{seed}; bugs: {', '.join(cfg.bugs) or 'none'})")


def _final_example() -> bool:
    """Whether a Hypothesis test is running its final (shrunk) example, or none runs."""
    try:
        from hypothesis.control import current_build_context, currently_in_test_context
        return not currently_in_test_context() or bool(current_build_context().is_final)
    except Exception:  # an interface of Hypothesis changed: then every example is final
        return True


def check_schedule(scenario: Scenario, schedule: Preemptions | None = None, *,
                   bugs: Sequence[str] = (), fixes: Sequence[str] = ("all",),
                   out: str | os.PathLike[str] | None = None, executor: str = "direct",
                   max_steps: int = DEFAULT_MAX_STEPS) -> None:
    """One run of ``scenario`` under ``schedule`` (drawn by ``schedules(scenario)``), with
    ``bugs`` and ``fixes`` as for :func:`check_scenario`; fail if it finds something.

    Raises:
        ScenarioFailed: a finding (with its timeline and ``migfuzz repro FILE`` when this is
            not an example Hypothesis is shrinking).
        UsageError (a ValueError): an unknown bug or fix.
    """
    __tracebackhide__ = True
    _check_executor(executor)
    bugs, fixes = check_bugs(bugs), check_fixes(fixes)
    schedule = schedule or Preemptions(len(scenario.tasks))
    outcome = run_schedule(scenario, schedule, bugs=bugs, fixes=fixes, executor=executor,
                           max_steps=max_steps)
    if outcome.finding is None:
        return
    signature = outcome.finding.signature
    if not _final_example():
        raise ScenarioFailed(f"{signature} (shrinking)")
    preemptions = schedule.data().hex()
    with injected(bugs, fixes):
        record = confirm_record(
            scenario, outcome.schedule, strategy=StrategySpec("preempt", 0,
                                                              {"preemptions": preemptions}),
            executor=executor, bugs=bugs, fixes=fixes, max_steps=max_steps,
            signature=signature, what=f"{scenario.name} under {schedule}",
            origin={"testing": "check_schedule", "preemptions": preemptions})
    store = FindingStore(_out(out))
    store.save_merged(record, 1)
    raise _failure(store.path_for(record), f"{signature} in scenario {scenario.name} under "
                   f"{len(schedule.switches)} preemptions (bugs: {', '.join(bugs) or 'none'})")
