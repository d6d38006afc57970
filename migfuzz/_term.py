"""What ``stress`` and ``nightly`` show while they run: a live ``rich`` progress display on a
terminal, the plain progress lines of a log otherwise.

A terminal is the stream's ``isatty()`` with no ``CI`` in the environment (CI systems often
give jobs a pseudo-terminal whose output ends up in a log, where a redrawn display is noise).
Everywhere else the lines are the ones a log has always had, so that scripts reading them keep
working; ``--json`` output is not touched by either.

Nothing here reads a clock: the caller passes the elapsed time in each
:class:`ProgressState` (and the display's own clock, for rich's bookkeeping), so a test can
drive both paths with a fake one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

LOG_EVERY = 10.0  # seconds between plain progress lines in a log


def on_terminal(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """Whether ``stream`` gets the live display: a TTY, and not under ``CI``."""
    ci = (os.environ if env is None else env).get("CI", "")
    if ci.strip().lower() not in ("", "0", "false", "no"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream: not a terminal
        return False


@dataclass(frozen=True)
class ProgressState:
    """One moment of a campaign or a night, as the display shows it."""

    elapsed: float  # seconds since the start
    schedules: int  # stress schedules so far
    findings: int  # distinct signatures (keys) so far
    hits: int
    done: float  # progress towards ``total`` (schedules, seconds or runs)
    total: float | None  # None: open-ended
    left: float | None  # seconds left, if known
    execs: int | None = None  # fuzz executions (nightly), None for stress

    @property
    def rate(self) -> float:
        return self.schedules / self.elapsed if self.elapsed > 0 else 0.0


def plain_line(st: ProgressState) -> str:
    """The progress line of a log (the format ``stress`` has always printed)."""
    return (f"[{st.elapsed:7.1f}s] {st.schedules:,} schedules  {st.rate:,.0f}/s  "
            f"findings {st.findings} (hits {st.hits})")


def _left(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = max(0, round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class PlainProgress:
    """Progress lines in a log: the first at once, then one per LOG_EVERY seconds of the
    caller's clock, and the last one; log lines of the caller go through unchanged."""

    def __init__(self, stream: TextIO, *, lines: bool = True) -> None:
        self.stream = stream
        self.lines = lines  # False: the caller logs its own events, no progress lines
        self._logged: float | None = None

    def show(self, st: ProgressState, *, final: bool = False) -> None:
        if not self.lines:
            return
        if final or self._logged is None or st.elapsed - self._logged >= LOG_EVERY:
            self._logged = st.elapsed
            self.stream.write(plain_line(st) + "\n")
            self.stream.flush()

    def log(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        pass


class RichProgress:
    """The live display: a bar towards the budget, schedules, their rate, the findings so
    far and the time left; the caller's log lines are printed above it."""

    def __init__(self, stream: TextIO, *, title: str, clock: Callable[[], float],
                 console: Console | None = None) -> None:
        self.console = console or Console(file=stream, stderr=False)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.fields[schedules]} schedules"),
            TextColumn("{task.fields[rate]}/s"),
            TextColumn("{task.fields[execs]}"),
            TextColumn("findings [bold]{task.fields[findings]}[/] (hits {task.fields[hits]})"),
            TextColumn("{task.fields[left]} left"),
            console=self.console, auto_refresh=False, get_time=clock, transient=False,
            redirect_stdout=False, redirect_stderr=False)  # (stdout may be --json's)
        self.task = self.progress.add_task(title, total=None, schedules="0", rate="0",
                                           execs="", findings=0, hits=0, left="?")
        self.progress.start()

    def show(self, st: ProgressState, *, final: bool = False) -> None:
        self.progress.update(
            self.task, completed=st.done, total=st.total, schedules=f"{st.schedules:,}",
            rate=f"{st.rate:,.0f}", findings=st.findings, hits=f"{st.hits:,}",
            execs="" if st.execs is None else f"{st.execs:,} fuzz execs",
            left=_left(0.0 if final else st.left))
        self.progress.refresh()

    def log(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False)

    def close(self) -> None:
        self.progress.stop()


def progress_view(stream: TextIO, *, title: str, clock: Callable[[], float],
                  lines: bool = True, env: Mapping[str, str] | None = None,
                  console: Console | None = None) -> PlainProgress | RichProgress:
    """The display for ``stream``: rich on a terminal (or on ``console``), else plain."""
    if console is not None or on_terminal(stream, env):
        return RichProgress(stream, title=title, clock=clock, console=console)
    return PlainProgress(stream, lines=lines)
