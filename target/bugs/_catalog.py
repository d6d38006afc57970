"""The catalog's machinery: a :class:`HistoricalBug` and how an override is injected.

An override replaces one model function by a buggy version of it. Model modules import
functions by name (``from .rmap import try_to_unmap``), so replacing the attribute in the
defining module is not enough: :func:`inject` replaces every reference to the original
function in every model, catalog and fix module, and puts them all back on exit. Nothing in
the model knows the catalog exists; the faithful code has no "if bug:" branches.

Each override is a whole copy of the faithful function with the bug's lines marked ``BUG``, so
it reads like the patch that introduced it, beside the function it replaces. The copies repeat
the faithful code on purpose: factoring their common lines into shared helpers would hide
exactly the lines (which lock is held when, which reference is taken where) that differ.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class HistoricalBug:
    """One injectable bug.

    Attributes:
        name: the ``--bug`` name.
        year: when the code (or the design) was current.
        reference: upstream commit or mailing-list thread.
        breaks: the invariant it breaks (reference A.21 numbering).
        expected_kinds: finding kinds a detection may have.
        scenario: the canonical scenario that shows it.
        strategy: the scheduling strategy that shows it best ("random", "pct").
        overrides: ``"module:function"`` -> buggy replacement.
        depth: the least preemption bound at which exhaustive DFS of ``scenario`` shows it
            (0: some run-to-completion order shows it, no race needed). Measured, never
            guessed: ``migfuzz bugs --measure`` re-measures and compares; a slow test asserts it.
        model_check: ``"module:function"`` of a model-side check the kernel of the time did
            not have that shows this bug earlier ("" if none).
        depth_without_check: ``depth`` with ``model_check`` made a no-op (None: not found
            by DFS up to bound 3, 50,000 executions per bound).
        history: "upstream" (the bug was in a posted or merged kernel) or "mutation" (a
            faithful mutation of the code's history: a check or step the code has, removed).
        fixes: upstream fixes of V2's real flaws (``target.fixes`` names, or "all") applied
            under the bug wherever it is measured or reproduced: its scenario also shows those
            flaws, which would otherwise be found first ("": V2 as posted).
    """

    name: str
    year: int
    reference: str
    breaks: str
    summary: str
    expected_kinds: tuple[str, ...]
    scenario: str
    strategy: str
    overrides: dict[str, Callable[..., Any]]
    depth: int
    model_check: str = ""
    depth_without_check: int | None = None
    history: str = "upstream"
    fixes: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """"sequential" (depth 0), "race" (1 preemption) or "deep race" (2 or more)."""
        return "sequential" if self.depth == 0 else "race" if self.depth == 1 else "deep race"

    def inject(self) -> contextlib.AbstractContextManager[None]:
        return inject([self])


_PATCHED = ("target.mm", "target.bugs", "target.fixes")


class Overriding(Protocol):
    """Anything made of whole-function overrides: a catalog bug, an upstream fix."""

    @property
    def overrides(self) -> dict[str, Callable[..., Any]]: ...


def _resolve(target: str) -> tuple[Any, str, Any]:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return module, attr, getattr(module, attr)


class ConflictingOverridesError(ValueError):
    """Two bugs replace the same function: only one of the two could be applied."""


def check_conflicts(bugs: Iterable[Any]) -> None:
    """Raise :class:`ConflictingOverridesError` if two of ``bugs`` replace one function
    (objects without ``overrides``, such as tests' planted bugs, replace nothing here)."""
    owner: dict[str, str] = {}
    for bug in bugs:
        for target in getattr(bug, "overrides", {}):
            other = owner.setdefault(target, bug.name)
            if other != bug.name:
                raise ConflictingOverridesError(
                    f"bugs {other} and {bug.name} both replace {target}; inject one at a time")


@contextlib.contextmanager
def inject(bugs: Iterable[Overriding]) -> Iterator[None]:
    """Apply every override of ``bugs`` (catalog bugs or upstream fixes) for the duration of
    the block; a later one replacing a function an earlier one replaced wins.

    Raises:
        ConflictingOverridesError: two *catalog bugs* replace the same function (checked
            before anything is applied: the second override would silently win). Fixes may
            share a function: a later fix's override is written on top of the earlier one
            (``target.fixes``), and a bug applied after the fixes wins by design.
    """
    bugs = list(bugs)
    check_conflicts([b for b in bugs if isinstance(b, HistoricalBug)])
    saved: list[tuple[Any, str, Any]] = []
    try:
        for bug in bugs:
            for target, replacement in bug.overrides.items():
                _, _, original = _resolve(target)
                for name, module in list(sys.modules.items()):
                    # Overrides call the model by name too: replace there as well, so a bug
                    # and a fix of neighbouring functions see each other.
                    if not name.startswith(_PATCHED) or module is None:
                        continue
                    if name == getattr(replacement, "__module__", None):
                        continue  # the override's own module may delegate to the original
                    for attr, value in list(vars(module).items()):
                        if value is original:
                            saved.append((module, attr, value))
                            setattr(module, attr, replacement)
        yield
    finally:
        for module, attr, value in reversed(saved):
            setattr(module, attr, value)
