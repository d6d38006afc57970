"""An upstream fix of a real flaw of the 2006 code, applied the way catalog bugs are injected.

A *flaw* is in the V2 code as posted, so the faithful model has it; its *fix* is the upstream
change that removed it, as a whole-function override (``target.bugs._catalog.inject``): the
fixed function beside the faithful one, the changed lines marked ``FIX``. No model function
has an ``if fix:`` branch.

Two fixes of one function are written in history order: the later one's override is the
function as it stood after *both* changes and names the earlier fix in ``requires``, so any
set of fixes that can be applied is closed under ``requires`` (:func:`closure`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from target.bugs import inject


@dataclass(frozen=True)
class UpstreamFix:
    """One real flaw of V2 as posted and the upstream change that fixed it.

    Attributes:
        name: the ``--fix`` name.
        title: the upstream commit or patch title.
        commit: commit id or mailing-list reference.
        date: when it went upstream (YYYY-MM).
        breaks: the invariant the flaw breaks (reference A.21 numbering where it has one).
        summary: one line on the flaw.
        finding_kinds: the kinds its detection has.
        scenario: the canonical scenario that shows it.
        needs: what a run needs to meet it (world options, operations), for the docs.
        overrides: ``"module:function"`` -> fixed replacement.
        requires: fixes whose change this override already contains (same function, earlier).
    """

    name: str
    title: str
    commit: str
    date: str
    breaks: str
    summary: str
    finding_kinds: tuple[str, ...]
    scenario: str
    needs: str
    overrides: dict[str, Callable[..., Any]]
    requires: tuple[str, ...] = field(default=())

    def inject(self) -> contextlib.AbstractContextManager[None]:
        return inject([self])

    def label(self) -> str:
        """How a finding this flaw explains is labelled in reports."""
        return (f"known flaw of V2 as posted: {self.name}, fixed upstream by "
                f"\"{self.title}\" ({self.commit}, {self.date})")


def closure(names: Iterable[str], fixes: dict[str, UpstreamFix]) -> list[str]:
    """``names`` plus every fix they require, in an order where requirements come first."""
    out: list[str] = []

    def visit(name: str) -> None:
        if name in out:
            return
        for req in fixes[name].requires:
            visit(req)
        out.append(name)

    for name in sorted(names):
        visit(name)
    return out


def without(name: str, fixes: dict[str, UpstreamFix]) -> list[str]:
    """Every fix except ``name`` and those that require it: the model in which the flaw
    ``name`` is the only one left that these fixes address."""
    dropped = {name}
    changed = True
    while changed:
        changed = False
        for fix in fixes.values():
            if fix.name not in dropped and dropped.intersection(fix.requires):
                dropped.add(fix.name)
                changed = True
    return [n for n in closure(fixes, fixes) if n not in dropped]
