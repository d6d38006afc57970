"""What every fuzz target shares: bug injection, running one input, raising its finding.

A finding of the model is raised as :class:`FuzzFinding`, the one exception type libFuzzer
sees from these targets; it carries everything needed to write a finding file (scenario,
the decisions actually taken, the finding). Any other exception is a harness error and
propagates as itself.

Bugs are injected for the life of the process from ``MIGFUZZ_BUGS`` (comma-separated catalog
names), on top of the upstream fixes named in ``MIGFUZZ_FIXES`` (``target.fixes``;
comma-separated, ``all`` for every one; unset: V2 as posted): libFuzzer's -fork/-jobs modes
re-run the target script in child processes, which inherit the environment but no Python
state.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from stress import Finding, Outcome
from stress.run import run_scenario
from stress.schedulers import Scheduler
from stress.workload import Scenario

from . import _coverage

MAX_STEPS = 20_000  # well above any faithful run of a decoded scenario; livelocks end sooner


class FuzzFinding(Exception):
    """A finding of the model, raised from ``TestOneInput``."""

    def __init__(self, finding: Finding, scenario: Scenario, schedule: list[int],
                 target: str) -> None:
        super().__init__(f"{finding.signature}: {finding.message}")
        self.finding = finding
        self.scenario = scenario
        self.schedule = schedule
        self.target = target


_injected: Any = None


def inject_from_env() -> list[str]:
    """Apply the fixes named in MIGFUZZ_FIXES, then the bugs named in MIGFUZZ_BUGS (a bug's
    override wins over a fix of the same function), for the rest of the process; returns the
    bug names."""
    global _injected
    names = [n for n in os.environ.get("MIGFUZZ_BUGS", "").split(",") if n]
    fixes = [n for n in os.environ.get("MIGFUZZ_FIXES", "").split(",") if n]
    if (names or fixes) and _injected is None:
        from target.bugs import inject, lookup
        from target.fixes import lookup as lookup_fixes

        _injected = inject([*lookup_fixes(fixes), *lookup(names)])
        _injected.__enter__()
    return names


def execute(
    target: str,
    scenario: Scenario,
    scheduler: Scheduler,
    *,
    feedback: bool = True,
) -> Outcome:
    """Run one decoded input; report its interleaving features; raise its finding."""
    scheduler.new_execution()
    trace = feedback and _coverage.enabled
    outcome = run_scenario(scenario, scheduler, trace=trace, max_steps=MAX_STEPS)
    if trace and outcome.events is not None:
        _coverage.report(_coverage.features(outcome.events))
    if outcome.finding is not None:
        raise FuzzFinding(outcome.finding, scenario, outcome.schedule, target)
    return outcome


def _families(chosen: str, target: str) -> frozenset[str]:
    """The families ``MIGFUZZ_FEEDBACK_FAMILIES`` names (comma-separated); an unknown one is a
    one-line error, exit 2: a misspelt family would otherwise report nothing of it, silently
    turning an ablation into another one."""
    names = frozenset(n for n in chosen.split(",") if n)
    unknown = sorted(names - _coverage.FAMILIES)
    if unknown:
        print(f"{target}: MIGFUZZ_FEEDBACK_FAMILIES: no feature family "
              f"{', '.join(map(repr, unknown))} (one of: {', '.join(sorted(_coverage.FAMILIES))})",
              file=sys.stderr)
        sys.exit(2)
    return names


def fuzz_main(test_one_input: Callable[[bytes], None],
              custom_mutator: Callable[[bytes, int, int], bytes] | None = None) -> None:
    """The common ``main`` of the targets: bugs from the environment, the feedback switches,
    then libFuzzer.

    ``--no-interleaving-feedback`` turns tracing and feedback off (plain code coverage, at
    plain speed); ``--feedback-trace-only`` traces and computes the features but does not
    report them (the control of ``test_feedback_reaches_libfuzzer``: same code runs, only
    libFuzzer's view differs). ``custom_mutator`` replaces libFuzzer's mutations (atheris's
    ``custom_mutator``)."""
    import atheris

    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    # libFuzzer's -fork mode starts its workers by executing argv[0]. Under `python -m`
    # that is the module's .py file, which cannot be executed; `migfuzz fuzz --jobs N`
    # passes an executable wrapper that runs this target in the same interpreter instead.
    argv0 = os.environ.get("MIGFUZZ_ARGV0")
    if argv0:
        sys.argv[0] = argv0
    inject_from_env()
    if "--no-interleaving-feedback" in sys.argv:
        sys.argv.remove("--no-interleaving-feedback")
        _coverage.enabled = False
    else:
        if "--feedback-trace-only" in sys.argv:
            sys.argv.remove("--feedback-trace-only")
            _coverage.reporting = False
        _coverage.setup()
        chosen = os.environ.get("MIGFUZZ_FEEDBACK_FAMILIES")
        if chosen:
            _coverage.families = _families(chosen, name)
    if custom_mutator is None:
        atheris.Setup(sys.argv, test_one_input)
    else:
        atheris.Setup(sys.argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
