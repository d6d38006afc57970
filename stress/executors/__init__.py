"""Executors: how control moves between model tasks. Decisions live in ``Execution``.

* ``direct``: steps the model coroutines from one plain loop; the fastest, for fuzzing.
* ``trio``: every model task is a trio task, parked and woken through ``trio.lowlevel``;
  for the stress service, where model tasks live beside real trio machinery.

Both take the same arguments and return the same :class:`~stress._execution.Outcome` for the
same scheduler decisions (tests/test_executors.py checks that over many seeds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .._execution import ModelTask, Outcome
from ..schedulers import Scheduler
from .direct import run_direct as run_direct
from .trio import run_trio as run_trio

Executor = Callable[..., Outcome]

EXECUTORS: dict[str, Executor] = {"direct": run_direct, "trio": run_trio}


def get_executor(name: str) -> Executor:
    try:
        return EXECUTORS[name]
    except KeyError:
        raise ValueError(
            f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}"
        ) from None


__all__ = ["EXECUTORS", "Executor", "ModelTask", "Scheduler", "Sequence", "get_executor"]
