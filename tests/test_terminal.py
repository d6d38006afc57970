"""What stress and nightly show while they run: rich progress on a terminal, plain lines in a
log or under CI (migfuzz._term). No test reads the wall clock: campaigns get a fake one."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from migfuzz._term import ProgressState, RichProgress, on_terminal, plain_line
from migfuzz.campaign import Campaign, CampaignConfig, _worker
from migfuzz.history import RunRow, RunStatus
from migfuzz.nightly._summary import NightSummary, format_night, night_progress, print_night_rich
from migfuzz.report import print_summary_rich
from target.fixes import FIXES

ROOT = Path(__file__).resolve().parent.parent


class _Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _clock(after_start: float) -> Callable[[], float]:
    """0 at the campaign's start, then ``after_start`` for ever: every progress shows the same
    elapsed time, whatever the machine's speed."""
    calls = iter([0.0])
    return lambda: next(calls, after_start)


@pytest.fixture(autouse=True)
def _one_progress_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's progress messages are paced by its clock: only its last one, here."""
    monkeypatch.setattr(_worker, "PROGRESS_EVERY", float("inf"))


def _campaign(tmp_path: Path, stream: io.StringIO, bugs: tuple[str, ...] = ()) -> Campaign:
    cfg = CampaignConfig(seed=1, runs=12, jobs=1, bugs=bugs, fixes=tuple(FIXES),
                         out=str(tmp_path / "f"), members=("random",), strategy="random")
    return Campaign(cfg, progress=stream, clock=_clock(4.0))


# the first line at once (at the first message: the worker's only one), then the final one
PLAIN = ("[    4.0s] 12 schedules  3/s  findings 0 (hits 0)\n"
         "[    4.0s] 12 schedules  3/s  findings 0 (hits 0)\n")


@pytest.mark.slow
def test_plain_lines_when_not_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.delenv("CI", raising=False)
    log = io.StringIO()
    summary = _campaign(tmp_path, log).run()
    assert summary.runs == 12 and summary.seconds == 4.0  # the campaign's clock is the fake
    assert log.getvalue() == PLAIN  # the first line at once, the last one; nothing redrawn


@pytest.mark.slow
def test_plain_lines_on_a_terminal_under_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    monkeypatch.setenv("CI", "true")
    tty = _Tty()
    _campaign(tmp_path, tty).run()
    assert tty.getvalue() == PLAIN


@pytest.mark.slow
def test_rich_progress_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("COLUMNS", "160")
    tty = _Tty()
    _campaign(tmp_path, tty, bugs=("page-lock-under-anon-vma",)).run()
    out = tty.getvalue()
    assert "\x1b[" in out and "[    4.0s]" not in out  # drawn, not logged
    last = out.rsplit("\r", 1)[-1]
    assert "stress" in last and "12 schedules" in last and "3/s" in last
    assert "0:00:00 left" in last and "findings" in last and "(hits " in last


def test_rich_display_shows_the_fields() -> None:
    buf = io.StringIO()
    con = Console(file=buf, force_terminal=True, width=160, color_system=None)
    view = RichProgress(buf, title="night 3", clock=lambda: 0.0, console=con)
    view.show(ProgressState(elapsed=100.0, schedules=12_345, findings=2, hits=31, done=100.0,
                            total=3825.0, left=3725.0, execs=678))
    view.log("nightly: run 4: ok")
    view.close()
    out = buf.getvalue()
    for field in ("night 3", "12,345 schedules", "123/s", "678 fuzz execs",
                  "findings 2 (hits 31)", "1:02:05 left", "nightly: run 4: ok"):
        assert field in out, field


def test_plain_line_format_and_who_counts_as_a_terminal() -> None:
    st = ProgressState(elapsed=12.25, schedules=4_321, findings=3, hits=1_000, done=0,
                       total=None, left=None)
    assert plain_line(st) == "[   12.2s] 4,321 schedules  353/s  findings 3 (hits 1000)"
    assert on_terminal(_Tty(), {}) and not on_terminal(io.StringIO(), {})
    for ci in ("true", "1", "yes"):
        assert not on_terminal(_Tty(), {"CI": ci})
    assert on_terminal(_Tty(), {"CI": "false"}) and on_terminal(_Tty(), {"CI": ""})


def _run(rid: int, kind: str, execs: int, ended: bool) -> RunRow:
    return RunRow(rid, 1, kind, "portfolio" if kind == "stress" else "fuzz_schedule", 1, [],
                  1, 60.0, "start", "end" if ended else None, 1.0, execs, None, None, None, 0,
                  0, 0, RunStatus.OK, None, "/tmp")


def test_night_progress_counts_a_nights_runs() -> None:
    runs = [_run(1, "stress", 500, True), _run(2, "fuzz", 70, True),
            _run(3, "stress", 250, False)]
    st = night_progress(runs, [5, 2], elapsed=50.0, seconds=600.0, planned=None)
    assert (st.schedules, st.execs, st.findings, st.hits) == (750, 70, 2, 7)
    assert (st.done, st.total, st.left) == (50.0, 600.0, 550.0)
    st = night_progress(runs, [], elapsed=50.0, seconds=0.0, planned=5)
    assert (st.done, st.total, st.left) == (2.0, 5.0, None)  # --runs: runs done of planned


def _in_pty(*args: str) -> tuple[int, str]:
    """``migfuzz ARGS`` as a user runs it in a terminal (no ``CI``): exit code, output."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["COLUMNS"] = "200"
    proc = subprocess.Popen(
        [sys.executable, "-m", "migfuzz.cli", *args],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=ROOT, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the pty
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=300), b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
def test_stress_in_a_pseudo_terminal_draws_progress_and_tables(tmp_path: Path) -> None:
    """The command as a user runs it in a terminal: the live display and the findings table
    reach the pty; the same command in a pipe prints today's lines (other tests)."""
    rc, out = _in_pty("stress", "--runs", "200", "--jobs", "1", "--seed", "1",
                      "--bug", "page-lock-under-anon-vma", "--out", str(tmp_path / "f"))
    assert rc == 1
    assert "200 schedules" in out and "0:00:00 left" in out and "\x1b[" in out
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out)  # without the styles
    assert text.count("┃ signature") == 2  # the new findings' table, the known flaws'
    assert "lock-order-inversion in lock_page" in text
    assert "[    " not in text  # no plain progress line


@pytest.mark.slow
def test_nightly_in_a_pseudo_terminal_draws_progress_and_the_runs_table(
        tmp_path: Path) -> None:
    """``nightly`` in a terminal: its run lines above the live display (the night's title,
    its fuzz executions, nothing left at the end), then the runs as a table."""
    rc, out = _in_pty("nightly", "--runs", "5", "--jobs", "1", "--fixes", "all",
                      "--out", str(tmp_path / "n"))
    assert rc == 0, out
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out)  # without the styles
    assert "\x1b[" in out and "nightly: run 1: stress" in text
    assert re.search(r"night 1 .* fuzz execs .* 0:00:00 left", text), text
    assert "┃ run" in text and "┃ status" in text  # the runs table


def test_summary_tables_on_a_terminal(tmp_path: Path) -> None:
    from migfuzz.campaign import Summary

    cfg = CampaignConfig(runs=1, out=str(tmp_path))
    s = Summary(cfg, 1, 10, 1.0, {"random": 1}, [], False, None, [], {}, {}, {})
    buf = io.StringIO()
    print_summary_rich(s, Console(file=buf, force_terminal=True, width=120, color_system=None))
    assert "migfuzz stress summary" in buf.getvalue() and "┃" not in buf.getvalue()


def test_night_summary_table_on_a_terminal(tmp_path: Path) -> None:
    s = NightSummary(3, tmp_path / "h.sqlite", tmp_path / "index.html",
                     runs=[_run(7, "stress", 4_321, True), _run(8, "fuzz", 55, True)])
    buf = io.StringIO()
    print_night_rich(s, Console(file=buf, force_terminal=True, width=120, color_system=None))
    out = buf.getvalue()
    assert out.startswith(format_night(s))  # the lines a log gets, then the table
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [r.split("│")[1:4] for r in rows] == [
        ["   7 ", " stress ", " portfolio     "], ["   8 ", " fuzz   ", " fuzz_schedule "]]
    assert "4,321" in rows[0] and "ok" in rows[1]
