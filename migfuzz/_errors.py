"""The service layer's error types: what the CLI turns into ``migfuzz: error: ...`` + exit 2,
and the one walker of exception chains that decides what an escaped exception really is."""

from __future__ import annotations

import sys
from typing import TypeVar

E = TypeVar("E", bound=BaseException)


class UsageError(ValueError):
    """Bad input from the user: an option, a name, a file. Exit status 2, never a traceback."""


class FindingFileError(UsageError):
    """A finding file that is missing, unreadable or not a valid finding; names the file."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class HarnessError(Exception):
    """Something other than a finding went wrong in a run (a recorded schedule that does not
    reproduce its finding, a non-deterministic replay): never reported as a finding."""


def find_cause(exc: BaseException, kind: type[E]) -> E | None:
    """The first ``kind`` in ``exc``'s chain: itself, its ``__cause__`` and ``__context__``,
    and the members of every exception group on the way (depth first, each once).

    What escapes a model task is wrapped: the executors turn anything that is not a kernel
    finding into ``StressInternalError`` (a scheduler's ``ScheduleDivergence``, a Ctrl-C that
    landed inside a model step), and trio may wrap that in an exception group. Every caller
    that asks "is this really a divergence / an interruption?" asks here, so that they cannot
    disagree on where to look.
    """
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, kind):
            return e
        nxt = [e.__cause__, e.__context__]
        if isinstance(e, BaseExceptionGroup):
            nxt += e.exceptions
        todo.extend(reversed([n for n in nxt if n is not None]))
    return None


def caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether ``exc`` wraps a KeyboardInterrupt: an interruption, not a harness error."""
    return find_cause(exc, KeyboardInterrupt) is not None


def print_error(msg: str) -> None:
    """``migfuzz: error: MSG`` on stderr: how every command reports bad input (then exit 2)."""
    print(f"migfuzz: error: {msg}", file=sys.stderr)
