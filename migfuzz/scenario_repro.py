"""``migfuzz repro --scenario FILE``: a user's scenario file run under one strategy and seed,
and what it finds saved, replayed and minimized in one go.

    migfuzz repro --scenario FILE [--strategy S] [--seed N] [--runs N] [--out DIR]

The runs are those of ``migfuzz stress --scenario FILE --strategy S --seed N --runs N -x
--jobs 1`` (run k is a pure function of the seed and k, so the same command finds the same
thing), stopped at the first finding. That finding is saved like any campaign's (the file
carries the scenario, so ``repro FILE`` needs nothing else), replayed twice as ``repro``
replays a file, and minimized into ``OUT/minimized/``. Exit 1: a finding (it reproduces);
0: none in the runs; 2: a bad file or option.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from stress.workload import load_scenario_file

from .campaign import Campaign, CampaignConfig
from .findings import load, write_atomic
from .minimize import NotReproducible, minimize
from .replay import Verdict, check
from .report import format_summary, format_verdict, repro_commands
from .strategies import BASE_STRATEGIES, check_strategy

DEFAULT_RUNS = 200
"""Enough for the race of a small scenario under random or PCT (tests/test_scenario_files.py
finds gup-vs-fork's lost write within it); a user looking for a rarer one gives --runs."""


@dataclass
class ScenarioRepro:
    """What one ``repro --scenario`` found: nothing, or the saved file, its replay verdict
    and the minimized file."""

    runs: int
    found: Path | None = None
    verdict: Verdict | None = None
    minimized: Path | None = None
    before: str = ""
    after: str = ""
    not_minimized: str = ""  # why, when minimization could not keep the finding


def repro_scenario(path: str, *, strategy: str, seed: int, runs: int, executor: str,
                   bugs: tuple[str, ...], fixes: tuple[str, ...], out: str, max_steps: int,
                   search_runs: int) -> ScenarioRepro:
    """Run ``path``'s scenario ``runs`` times from ``seed``; save, replay and minimize the
    first finding.

    Raises:
        ScenarioError: the file is not a valid scenario (naming the field).
        UsageError: an unknown strategy.
    """
    check_strategy(strategy)
    sc = load_scenario_file(path)
    cfg = CampaignConfig(
        seed=seed, runs=runs, strategy=strategy, executor=executor, jobs=1,
        scenario=sc.name, scenario_data=sc.dumps(), bugs=bugs, fixes=fixes, out=out,
        max_steps=max_steps, exitfirst=True, members=BASE_STRATEGIES)
    summary = Campaign(cfg, progress=sys.stderr).run()
    if summary.interrupted:
        raise KeyboardInterrupt
    print(format_summary(summary), file=sys.stderr)
    result = ScenarioRepro(summary.runs)
    if not summary.findings:
        return result
    entry = summary.findings[0]
    result.found = entry.path
    rec = load(entry.path)
    result.verdict = check(rec, None, str(entry.path))
    try:
        small, before, after = minimize(
            rec, source=str(entry.path), search_runs=search_runs, seed=seed,
            log=lambda s: print(f"  {s}", file=sys.stderr))
    except NotReproducible as exc:
        result.not_minimized = str(exc)
        return result
    # its own directory: the minimized finding has the same key, hence the same file name
    result.minimized = Path(out) / "minimized" / small.file_name()
    write_atomic(result.minimized, small.dumps())
    result.before, result.after = str(before), str(after)
    return result


def format_scenario_repro(r: ScenarioRepro, path: str, *, timeline: bool = True,
                          tail: int | None = None, width: int | None = None) -> str:
    """The saved finding's replay (as ``repro FILE`` prints it), then the minimized file."""
    if r.found is None or r.verdict is None:
        return f"{path}: no finding in {r.runs:,} runs"
    lines = [f"{path}: {r.verdict.record.signature} (run {r.verdict.record.origin.get('run')})",
             format_verdict(r.verdict, str(r.found), timeline=timeline, tail=tail,
                            width=width), ""]
    if r.minimized is not None:
        lines += [f"minimized: {r.before} -> {r.after}", f"wrote {r.minimized}",
                  "reproduce:", *(f"  {c}" for c in repro_commands(str(r.minimized)))]
    else:
        lines.append(f"not minimized: {r.not_minimized}")
    return "\n".join(lines)
