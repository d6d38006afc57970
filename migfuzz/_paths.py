"""Output paths checked before any work starts, and the one-line messages for the failures.

A campaign that runs for an hour and then cannot write its report, or writes its first finding
into a read-only directory, has wasted the hour: every output a command will write (``--out``,
``--db``, ``--report``, ``--junit``, ``minimize -o``) is tried for real (a file created and
removed; ``os.access`` does not see read-only mounts and is always true for root) first.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ._errors import UsageError

SQLITE_MAGIC = b"SQLite format 3\0"


def _try_write(directory: Path, flag: str, path: str) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=".migfuzz-probe-", dir=directory)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write there: {exc.strerror or exc}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def writable_dir(path: str, flag: str, shown: str | None = None) -> Path:
    """Check ``path`` is, or can be created as, a directory a file can be written in.

    Nothing is left behind: a missing directory is not created here (the command creates it
    when it writes), its nearest existing ancestor is probed instead, so a command that then
    fails on another argument has written nothing. Messages name ``shown`` (default ``path``).
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{flag} {shown}: {p} is not a directory" if shown else
                         f"{flag} {path}: exists and is not a directory")
    path = shown or path
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{flag} {path}: cannot create the directory: {probe} is not a "
                         "directory")
    _try_write(probe, flag, path)
    return p


def writable_file(path: str, flag: str) -> Path:
    """Check ``path`` can be (re)written atomically: not a directory, its directory writable
    (the parent is created if missing, as the writer would)."""
    p = Path(path)
    if p.is_dir() or path.endswith(os.sep):
        raise UsageError(f"{flag} {path}: is a directory; give a file name")
    writable_dir(str(p.parent), flag, shown=path)
    return p


def database_file(path: str, flag: str) -> Path:
    """A SQLite database to open or create: writable, and if it exists, a database."""
    p = writable_file(path, flag)
    if p.exists():
        try:
            with open(p, "rb") as f:
                head = f.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise UsageError(f"{flag} {path}: cannot read: {exc.strerror or exc}") from None
        if head and head != SQLITE_MAGIC:
            raise UsageError(f"{flag} {path}: exists and is not a SQLite database")
    return p
