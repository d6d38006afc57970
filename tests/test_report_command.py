"""``migfuzz report``: a night's report written again from the history database alone."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from migfuzz.cli import main
from migfuzz.findings import load, write_atomic
from migfuzz.history import History
from migfuzz.report_html import write_report

ROOT = Path(__file__).resolve().parent.parent
KNOWN = ROOT / "corpus" / "known"
BUG = "page-lock-under-anon-vma"


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _night(h: History, tmp: Path, hits: int, execs: int) -> int:
    """A night whose stress run saw the page-lock inversion (``hits`` times)."""
    night = h.start_night(budget_s=600, jobs=1, bugs=[BUG], out_dir=str(tmp),
                          model_commit="test", tool_version="test")
    run = h.start_run(night=night, kind="stress", target="portfolio", seed=night, bugs=[BUG],
                      jobs=1, budget_s=600, out_dir=str(tmp))
    h.record_migrations(run, {"strategy:random": [200 * night, 150 * night]})
    rec = load(KNOWN / f"{BUG}.json")
    path = tmp / f"run{night}" / rec.file_name()
    path.parent.mkdir()
    write_atomic(path, rec.dumps())
    h.record_finding(run, path, rec, hits=hits)
    h.update_run(run, execs=execs, seconds=60.0, exec_per_s=execs / 60, status="findings")
    h.end_night(night, "done")
    return night


@pytest.mark.slow
def test_a_nights_report_is_the_same_after_later_nights(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """Night 1's page, written again after night 2 (more hits, another file, another trend
    point), is byte for byte what night 1 wrote: the article, its replay and diagrams, the
    copy of its file; and index.html is left alone, night 1 not being the latest."""
    db = tmp_path / "h.sqlite"
    with History(db) as h:
        first = _night(h, tmp_path, hits=3, execs=600)
        _, new, shown = write_report(h, first, tmp_path / "then")
        h.mark_reported(shown, first)
        h.set_report(first, str(tmp_path / "then" / "index.html"))
        assert len(new) == 1
        _night(h, tmp_path, hits=40, execs=9000)
    then = _files(tmp_path / "then")
    assert "findings/" + load(KNOWN / f"{BUG}.json").file_name() in then

    assert main(["report", "--db", str(db), "--out", str(tmp_path / "again"),
                 "--night", str(first)]) == 0
    assert "night 1: 1 new, 0 known finding(s)" in capsys.readouterr().out
    again = _files(tmp_path / "again")
    assert set(again) == set(then) - {"index.html"}
    for name, data in again.items():
        assert data == then[name], name

    # the latest night's, with its index.html and a link back to night 1's page
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "latest")]) == 0
    index = (tmp_path / "latest" / "index.html").read_text(encoding="utf-8")
    assert index == (tmp_path / "latest" / "night-0002.html").read_text(encoding="utf-8")
    assert '<a href="night-0001.html">night 1</a>' in index and "night 2" in index


@pytest.mark.slow
def test_regenerated_report_equals_what_a_tiny_nightly_wrote(tmp_path: Path) -> None:
    """A real nightly (5 runs per run, no clock), its report directory deleted, written again
    by ``migfuzz report`` from its history: the same files, the same bytes."""
    out = tmp_path / "n"
    night = subprocess.run(
        [sys.executable, "-m", "migfuzz.cli", "nightly", "--runs", "5", "--jobs", "1",
         "--bug", BUG, "--fixes", "all", "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert night.returncode in (0, 1), night.stdout + night.stderr
    wrote = _files(out / "report")
    assert {"index.html", "night-0001.html"} <= set(wrote)
    subprocess.run(["rm", "-r", str(out / "report")], check=True)
    again = subprocess.run(
        [sys.executable, "-m", "migfuzz.cli", "report", "--db", str(out / "history.sqlite"),
         "--out", str(out / "report"), "--night", "latest"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert _files(out / "report") == wrote


@pytest.mark.slow
def test_bad_database_or_night_is_one_line_and_exit_2(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    not_db = tmp_path / "notes.txt"
    not_db.write_text("hello")
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE t (x)")
    with History(tmp_path / "empty.sqlite"):
        pass
    with History(tmp_path / "h.sqlite") as h:
        _night(h, tmp_path, hits=1, execs=10)
    out = str(tmp_path / "out")
    cases = [
        (["--db", str(tmp_path / "missing.sqlite")], "missing.sqlite: no such file"),
        (["--db", str(not_db)], "notes.txt: not a SQLite database"),
        (["--db", str(other)], "other.sqlite: not a migfuzz history database"),
        (["--db", str(tmp_path / "empty.sqlite")], "empty.sqlite: no night recorded yet"),
        (["--db", str(tmp_path / "h.sqlite"), "--night", "7"], "--night 7: no such night"),
        (["--db", str(tmp_path / "h.sqlite"), "--night", "first"],
         "--night first: no such night"),
    ]
    for args, problem in cases:
        assert main(["report", *args, "--out", out]) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and problem in err, err
    with sqlite3.connect(other) as c:  # a foreign database is left as it was
        assert [r[0] for r in c.execute("SELECT name FROM sqlite_master")] == ["t"]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
