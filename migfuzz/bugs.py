"""Injecting catalog bugs and upstream fixes by name: ``--bug NAME``, ``--fix NAME`` and the
``bugs`` / ``fixes`` fields of a finding.

The catalog is ``target.bugs.CATALOG`` (name -> bug object); each bug's ``inject()`` is a
context manager that patches the model for its duration. Bugs are applied *by name* inside the
process that runs the model, so ``--jobs N`` worker processes inject the same bugs as the
parent would, and a finding file replays with exactly the bugs it was found with.

Fixes (``target.fixes``) work the same way: the default model is V2 as posted, flaws included;
a fix is the upstream change that removed one flaw. Fixes are applied first and bugs on top,
so a bug's override of a function wins over a fix of the same function (the bug is what the
run is about).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stress import DEFAULT_MAX_STEPS, Finding, Outcome
from stress.run import run_scenario
from stress.scenarios import canonical
from stress.schedulers import DFSScheduler
from stress.workload import Scenario

from ._errors import UsageError

if TYPE_CHECKING:
    from target.bugs import HistoricalBug


def catalog() -> dict[str, HistoricalBug]:
    """The bug catalog (imported on first use: the CLI's other commands do not need it)."""
    bugs: dict[str, HistoricalBug] = importlib.import_module("target.bugs").CATALOG
    return dict(bugs)


def check_bugs(names: Sequence[str]) -> list[str]:
    """Validate bug names against the catalog; returns them sorted and deduplicated.

    Raises:
        UsageError: an unknown name, or two bugs that replace the same model function (only
            one of them could be in effect).
    """
    cat = catalog()
    for name in names:
        if name not in cat:
            known = ", ".join(sorted(cat))
            raise UsageError(f"unknown bug {name}; known: {known}")
    chosen = sorted(set(names))
    try:
        importlib.import_module("target.bugs").check_conflicts([cat[n] for n in chosen])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return chosen


def check_fixes(names: Sequence[str]) -> list[str]:
    """Validate fix names (``all`` is every fix); returns them closed under their
    requirements, sorted: the form a finding file records."""
    from target.fixes import UnknownFixError, expand

    try:
        return sorted(expand(names))
    except UnknownFixError as exc:
        raise UsageError(str(exc)) from None


def bug_fixes(name: str) -> list[str]:
    """The upstream fixes catalog bug ``name`` is measured and reproduced with (its
    ``fixes``, expanded: the form a finding file records)."""
    fixes = list(getattr(catalog()[name], "fixes", ()))
    return check_fixes(fixes) if fixes else []


@contextmanager
def injected(names: Sequence[str], fixes: Sequence[str] = ()) -> Iterator[None]:
    """Apply the named fixes, then the named bugs, for the duration of the block (nothing for
    empty lists)."""
    if not names and not fixes:
        yield
        return
    cat = catalog() if names else {}
    with ExitStack() as stack:
        if fixes:
            from target.bugs import inject as inject_overrides
            from target.fixes import lookup

            try:
                chosen = lookup(fixes)
            except ValueError as exc:  # UnknownFixError
                raise UsageError(str(exc)) from None
            stack.enter_context(inject_overrides(chosen))
        for name in check_bugs(names):
            stack.enter_context(cat[name].inject())
        yield


# -- depth: the least preemption bound that shows a bug ------------------------------------------


@dataclass(frozen=True)
class DfsResult:
    """The least preemption bound at which exhaustive DFS of a scenario shows a finding."""

    bound: int | None  # None: not found within the bounds tried
    executions: int  # at that bound (or in all bounds tried, if not found)
    outcome: Outcome | None  # the first run that showed it
    exhaustive: bool  # every bound below ``bound`` (all tried, if not found) was exhausted


def least_bound(scenario: Scenario, want: Callable[[Finding], bool], *,
                max_bound: int = 3, max_executions: int = 50_000,
                executor: str = "direct",
                max_steps: int = DEFAULT_MAX_STEPS) -> DfsResult:
    """Exhaustive preemption-bounded DFS of ``scenario`` at bounds 0, 1, ... ``max_bound``
    until a run shows a finding ``want`` accepts (the caller injects the bugs). Bound 0 is every
    run-to-completion order (a task switch only where a task blocks or ends)."""
    total = 0
    exhaustive = True
    for bound in range(max_bound + 1):
        sched = DFSScheduler(bound, max_executions=max_executions)
        n = 0
        while sched.new_execution():
            n += 1
            out = run_scenario(scenario, sched, executor=executor, max_steps=max_steps)
            if out.finding is not None and want(out.finding):
                return DfsResult(bound, n, out, exhaustive)
        total += n
        exhaustive = exhaustive and sched.exhausted
    return DfsResult(None, total, None, exhaustive)


def _noop(*args: Any, **kwargs: Any) -> None:
    """Stands in for a model-side check when a depth is measured without it."""


def measure_depth(name: str, *, without_check: bool = False,
                  max_bound: int = 3) -> DfsResult:
    """The depth of catalog bug ``name``: exhaustive DFS of its scenario, bounds 0, 1, ...,
    until a finding of one of its expected kinds, with the bug's ``fixes`` applied.
    ``without_check``: with its model-side check (``model_check``) made a no-op, as the kernel
    of the time had it."""
    bug = catalog()[name]
    target = getattr(bug, "model_check", "")
    if without_check and not target:
        raise UsageError(f"bug {name} has no model-side check to remove")
    kinds = tuple(bug.expected_kinds)
    scenario = canonical(bug.scenario)
    with ExitStack() as stack:
        if without_check:
            from target.bugs import HistoricalBug, inject

            stack.enter_context(inject([HistoricalBug(
                f"no {target}", 0, "", "", "", (), "", "", {target: _noop}, 0)]))
        stack.enter_context(injected([name], bug_fixes(name)))
        return least_bound(scenario, lambda f: f.kind in kinds, max_bound=max_bound)


def check_depths(names: Sequence[str] | None = None,
                 log: Callable[[str], None] = print) -> int:
    """``migfuzz bugs --measure``: re-measure the depth of catalog bugs ``names`` (default
    all), and without its model-side check, against the catalog's claims; the mismatches."""
    bad = 0
    cat = catalog()
    for name in sorted(names or cat):
        bug = cat[name]
        claims: list[tuple[str, int | None]] = [("", bug.depth)]
        if getattr(bug, "model_check", ""):
            claims.append((f" without {bug.model_check}", bug.depth_without_check))
        for label, claim in claims:
            r = measure_depth(name, without_check=bool(label))
            # A claim of None: not found within the bounds and caps (a capped search may miss it).
            ok = r.bound == claim and (r.exhaustive or claim is None)
            bad += not ok
            log(f"{name}{label}: measured depth {r.bound} ({r.executions:,} executions at that "
                f"bound, lower bounds {'exhausted' if r.exhaustive else 'CAPPED'}); catalog "
                f"says {claim}{'' if ok else '  MISMATCH'}")
    return bad
