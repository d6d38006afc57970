"""Injecting catalog bugs by name: ``--bug NAME`` and the ``bugs`` field of a finding.

The catalog is ``target.bugs.CATALOG`` (name -> bug object); each bug's ``inject()`` is a
context manager that patches the model for its duration. Bugs are applied *by name* inside the
process that runs the model, so ``--jobs N`` worker processes inject the same bugs as the
parent would, and a finding file replays with exactly the bugs it was found with.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from ._errors import UsageError


def catalog() -> dict[str, Any]:
    """The bug catalog (imported on first use: the CLI's other commands do not need it)."""
    return dict(importlib.import_module("target.bugs").CATALOG)


def check_bugs(names: Sequence[str]) -> list[str]:
    """Validate bug names against the catalog; returns them sorted and deduplicated."""
    cat = catalog()
    for name in names:
        if name not in cat:
            known = ", ".join(sorted(cat))
            raise UsageError(f"unknown bug {name}; known: {known}")
    return sorted(set(names))


@contextmanager
def injected(names: Sequence[str]) -> Iterator[None]:
    """Apply the named bugs for the duration of the block (nothing for an empty list)."""
    if not names:
        yield
        return
    cat = catalog()
    with ExitStack() as stack:
        for name in check_bugs(names):
            stack.enter_context(cat[name].inject())
        yield
