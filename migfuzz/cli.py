"""The ``migfuzz`` command line.

    migfuzz stress     run a stress campaign, save findings (exit 0 clean or only known flaws,
                       1 a finding no known flaw explains)
    migfuzz repro      replay finding files (exit 1 still reproduces, 0 no longer)
    migfuzz minimize   shrink a finding file (exit 0 written, 1 does not reproduce)
    migfuzz scenarios  list the canonical scenarios
    migfuzz bugs       list the catalog of injectable historical bugs
    migfuzz fixes      list the upstream fixes of V2's real flaws (--fix NAME, --fixes all)
    migfuzz fuzz       run an atheris fuzz target; crashes become finding files
    migfuzz gate       pre-merge gate: replays, bounded DFS, fixed stress (exit 0 pass, 1 fail)
    migfuzz nightly    time-boxed stress + fuzzing with a SQLite history and an HTML report
    migfuzz report     write a night's HTML report again from the nightly's history

Exit status 2 is a usage or input error: a bad option, an unknown scenario / strategy /
executor / bug / fix, a missing or invalid finding file. Such errors print ``migfuzz: error: ...``
and never a traceback; outputs (``--out``, ``--db``, ``--report``, ``--junit``, ``-o``) are
checked before any work starts. Exit status 3 is a harness error (a bug in migfuzz or the
model's Python, never a finding of the modelled kernel: one line, the traceback in a log file)
or an environment failure during a run (disk full, file size limit: what was saved stays).
130: interrupted (Ctrl-C), whatever was found before. A reader closing the pipe (``| head``)
does not change the status.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import os
import sqlite3
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

from stress.schedule import ScheduleFormatError
from stress.workload import ScenarioError

from . import __version__, gate, nightly
from ._errors import UsageError
from ._errors import print_error as _err
from ._paths import database_file, writable_dir, writable_file
from .commands import bugs, fixes, fuzz, minimize, report, repro, scenarios, stress


class Command(Protocol):
    """What a subcommand module exposes: the CLI is a table of them (:data:`COMMANDS`)."""

    HELP: str
    DESCRIPTION: str | None

    def configure(self, p: argparse.ArgumentParser) -> None: ...

    def run(self, a: argparse.Namespace) -> int: ...


COMMANDS: dict[str, Command] = {
    "stress": stress, "repro": repro, "minimize": minimize, "scenarios": scenarios,
    "bugs": bugs, "fixes": fixes, "fuzz": fuzz, "gate": gate, "nightly": nightly,
    "report": report,
}
"""Every subcommand, in the order ``migfuzz --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="migfuzz",
        description="Fuzzing and concurrency stress testing of a model of Linux page "
                    "migration (Swapless V2, 2006).",
    )
    p.add_argument("--version", action="version", version=f"migfuzz {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for name, command in COMMANDS.items():
        command.configure(sub.add_parser(name, help=command.HELP,
                                         description=command.DESCRIPTION))
    return p


USER_ERRORS = (UsageError, ScenarioError, ScheduleFormatError)
"""Input errors: a clear message and exit 2, never a traceback."""

WRITE_ERRNOS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded",
                errno.EFBIG: "file size limit reached", errno.EROFS: "read-only file system"}
"""Environment failures during a run: what was saved stays, the run ends with exit 3."""


def check_outputs(a: argparse.Namespace) -> None:
    """Every output the command will write, tried before any work starts (exit 2 if not)."""
    cmd = a.command
    if cmd in ("stress", "fuzz", "gate", "nightly"):
        out = writable_dir(a.out, "--out")
        if cmd == "nightly":
            database_file(a.db or str(out / "history.sqlite"), "--db")
            writable_dir(a.report or str(out / "report"), "--report")
        if cmd == "gate" and a.junit:
            writable_file(a.junit, "--junit")
    elif cmd == "report":
        writable_dir(a.out, "--out")
    elif cmd == "minimize":
        if Path(a.out).is_dir() or a.out.endswith(os.sep):
            writable_dir(a.out, "-o")
        else:
            writable_file(a.out, "-o")


class PipeSafeStdout:
    """``sys.stdout`` that survives its reader going away (``migfuzz repro F | head``).

    The command goes on and returns its real exit status (1: reproduces): ending it at the
    first failed write would turn "still reproduces" into 0. Output after that goes nowhere.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False

    def _lost_reader(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._lost_reader()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._lost_reader()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def harness_error(exc: BaseException) -> int:
    """Exit 3 for a bug of ours (or of the model's Python): one line, traceback to a log."""
    text = "".join(traceback.format_exception(exc))
    try:
        fd, log = tempfile.mkstemp(prefix="migfuzz-harness-error-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"migfuzz {__version__} {' '.join(sys.argv)}\n{text}")
        where = f"traceback in {log}"
    except OSError:
        where = "no log: cannot write one either"
    _err(f"harness error (a bug in migfuzz, not a finding): {type(exc).__name__}: "
         f"{_one_line(exc)} ({where})")
    return 3


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (argparse exits 2 itself on bad options).

    0/1 are the commands' verdicts, 2 bad input, 3 a harness or environment failure (never
    1, which means "found"), 130 Ctrl-C.
    """
    args = build_parser().parse_args(argv)
    stdout = sys.stdout
    sys.stdout = PipeSafeStdout(stdout)
    try:
        check_outputs(args)
        return COMMANDS[args.command].run(args)
    except USER_ERRORS as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except OSError as exc:
        why = WRITE_ERRNOS.get(exc.errno or 0)
        if why is None:
            return harness_error(exc)
        _err(f"{why}: {exc.filename or 'writing output'}: the run stopped; what was "
             "saved before is intact (files are written atomically)")
        return 3
    except sqlite3.Error as exc:
        _err(f"history database: {exc}")
        return 3
    except Exception as exc:
        return harness_error(exc)
    finally:
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            sys.stdout.flush()
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
