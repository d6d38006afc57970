"""Model mutants for tests: a function's source with a statement changed, compiled in its own
module's globals, so a test can monkeypatch it in without editing the tree (the same change
bench/mutation.py makes to a copy of target/)."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any


def mutant(fn: Callable[..., Any], *edits: tuple[str, str], count: int | None = None,
           first_only: bool = False) -> Any:
    """``fn`` with each ``(old, new)`` edit applied in turn. Each ``old`` must occur in the
    source (exactly ``count`` times if given), so a refactor of the model that moves the
    code makes the test fail instead of silently testing the unmutated function."""
    src = inspect.getsource(fn)
    for old, new in edits:
        found = src.count(old)
        assert found if count is None else found == count, (fn.__qualname__, old, found)
        src = src.replace(old, new, 1 if first_only else -1)
    namespace = dict(vars(sys.modules[fn.__module__]))
    exec(src, namespace)
    return namespace[fn.__name__]
