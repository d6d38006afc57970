"""``migfuzz report``: write the report of any night again, from the history database alone.

The page is the one ``migfuzz nightly`` wrote that night (:func:`migfuzz.report_html.render`
leaves out what later nights added): the same ``night-NNNN.html``, ``findings/`` copies of
the new findings' files (read where the history says they are), and ``index.html`` when the
night is the latest one. Nothing is written to the database.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from .._errors import UsageError
from .._paths import SQLITE_MAGIC

HELP = "write the HTML report of a night again from the nightly's history database"
DESCRIPTION: str | None = (
    "Regenerate the static report of a night (--night ID, or latest) from the history "
    "database a nightly wrote (--db), into --out: the page that night wrote, and index.html "
    "when it is the latest night.")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, metavar="PATH",
                   help="the history database (migfuzz nightly --db)")
    p.add_argument("--out", required=True, metavar="DIR", help="the report's directory")
    p.add_argument("--night", default="latest", metavar="ID|latest",
                   help="which night (default: the latest)")


def history_file(path: str) -> Path:
    """An existing migfuzz history database, or a UsageError naming what is wrong with it.
    Read only: a file that is not one is never given the history's tables."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--db {path}: no such file" if not p.exists() else
                         f"--db {path}: not a file")
    try:
        with open(p, "rb") as f:
            if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise UsageError(f"--db {path}: not a SQLite database")
        db = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        try:
            db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            db.execute("SELECT id, report FROM nights LIMIT 1").fetchall()
        finally:
            db.close()
    except OSError as exc:
        raise UsageError(f"--db {path}: cannot read: {exc.strerror or exc}") from None
    except sqlite3.Error as exc:
        raise UsageError(f"--db {path}: not a migfuzz history database ({exc})") from None
    return p.resolve()


def run(a: argparse.Namespace) -> int:
    from ..history import History
    from ..report_html import write_report

    db = history_file(a.db)
    with History(db) as h:
        ids = [int(n["id"]) for n in h.nights()]
        if not ids:
            raise UsageError(f"--db {a.db}: no night recorded yet")
        if a.night == "latest":
            night = ids[-1]
        elif not a.night.isdigit() or int(a.night) not in ids:
            raise UsageError(f"--night {a.night}: no such night in {a.db} (nights "
                             f"{ids[0]}..{ids[-1]}, or latest)")
        else:
            night = int(a.night)
        page, new, shown = write_report(h, night, a.out, index=night == ids[-1])
    print(f"night {night}: {len(new)} new, {len(shown) - len(new)} known finding(s) -> {page}")
    return 0
