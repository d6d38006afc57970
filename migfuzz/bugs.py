"""Injecting catalog bugs by name: ``--bug NAME`` and the ``bugs`` field of a finding.

The catalog is ``target.bugs.CATALOG`` (name -> bug object) once it exists. A bug object either
has a context manager ``inject()`` or a pair ``enable()`` / ``disable()``. Bugs are applied *by
name* inside the process that runs the model, so ``--jobs N`` worker processes inject the same
bugs as the parent would, and a finding file replays with exactly the bugs it was found with.
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
    """Validate bug names against the catalog; returns them sorted and deduplicated.

    Raises:
        UsageError: an unknown name, or two bugs that replace the same model function (only
            one of them could be in effect).
    """
    cat = catalog()
    for name in names:
        if name not in cat:
            known = ", ".join(sorted(cat)) or "(none yet)"
            raise UsageError(f"unknown bug {name}; known: {known}")
    chosen = sorted(set(names))
    try:
        importlib.import_module("target.bugs").check_conflicts([cat[n] for n in chosen])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return chosen


@contextmanager
def injected(names: Sequence[str]) -> Iterator[None]:
    """Apply the named bugs for the duration of the block (nothing for an empty list)."""
    if not names:
        yield
        return
    cat = catalog()
    with ExitStack() as stack:
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
