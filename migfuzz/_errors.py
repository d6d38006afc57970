"""The service layer's error types: what the CLI turns into ``migfuzz: error: ...`` + exit 2."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user: an option, a name, a file. Exit status 2, never a traceback."""


class FindingFileError(UsageError):
    """A finding file that is missing, unreadable or not a valid finding; names the file."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
