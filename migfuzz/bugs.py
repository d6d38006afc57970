"""Injecting catalog bugs and upstream fixes by name: ``--bug NAME``, ``--fix NAME`` and the
``bugs`` / ``fixes`` fields of a finding.

The catalog is ``target.bugs.CATALOG`` (name -> bug object) once it exists. A bug object either
has a context manager ``inject()`` or a pair ``enable()`` / ``disable()``. Bugs are applied *by
name* inside the process that runs the model, so ``--jobs N`` worker processes inject the same
bugs as the parent would, and a finding file replays with exactly the bugs it was found with.

Fixes (``target.fixes``) work the same way: the default model is V2 as posted, flaws included;
a fix is the upstream change that removed one flaw. Fixes are applied first and bugs on top,
so a bug's override of a function wins over a fix of the same function (the bug is what the
run is about).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from ._errors import UsageError


def catalog() -> dict[str, Any]:
    """The bug catalog, or an empty dict while ``target.bugs`` has none."""
    try:
        mod = importlib.import_module("target.bugs")
    except ImportError:
        return {}
    cat = getattr(mod, "CATALOG", None)
    return dict(cat) if isinstance(cat, dict) else {}


def check_bugs(names: Sequence[str]) -> list[str]:
    """Validate bug names against the catalog; returns them sorted and deduplicated."""
    cat = catalog()
    for name in names:
        if name not in cat:
            known = ", ".join(sorted(cat)) or "(none yet)"
            raise UsageError(f"unknown bug {name}; known: {known}")
    return sorted(set(names))


def check_fixes(names: Sequence[str]) -> list[str]:
    """Validate fix names (``all`` is every fix); returns them closed under their
    requirements, sorted: the form a finding file records."""
    from target.fixes import UnknownFixError, expand

    try:
        return sorted(expand(names))
    except UnknownFixError as exc:
        raise UsageError(str(exc)) from None


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
            from target.bugs._catalog import inject as inject_overrides
            from target.fixes import lookup

            try:
                chosen = lookup(fixes)
            except ValueError as exc:  # UnknownFixError
                raise UsageError(str(exc)) from None
            stack.enter_context(inject_overrides(chosen))
        for name in check_bugs(names):
            bug = cat[name]
            inject = getattr(bug, "inject", None)
            if inject is not None:
                stack.enter_context(inject())
            elif hasattr(bug, "enable") and hasattr(bug, "disable"):
                bug.enable()
                stack.callback(bug.disable)
            else:
                raise UsageError(f"bug {name}: catalog entry has neither inject() nor "
                                 "enable()/disable()")
        yield
