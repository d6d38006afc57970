"""The nightly history: every run and every finding of every night, in one SQLite file.

    nights     one row per ``migfuzz nightly``: budget, jobs, bugs, upstream fixes, status,
               report
    runs       one row per run (a stress campaign or a fuzz target's slot): start, end, kind,
               target / strategy, seed, execs, exec/s, coverage, status, its output directory
    findings   one row per deduplication key (signature + injected bugs + applied fixes):
               first and last seen, total hits, the first finding file, the night it was
               first reported as new, the corpus entry (corpus/known, corpus/regressions) that
               already explains it, and the label of the known flaw of V2 that explains it
    sightings  (run, key): hits of that key in that run, the run's finding file
    files      every finding file and libFuzzer artifact already read (path, size, mtime), so
               a rescan after a crash only reads what is new
    migrations (run, kind, name): the pages a stress run's ``migrate`` operations found on
               their source node and the pages they moved, per strategy and per scenario
               (``migfuzz.campaign.Migrations``, as the campaign counted them)

Durability ("a run killed midway loses nothing it had found"): finding files are written
atomically by the campaigns as they find things; this database is a second, queryable copy.
Every write here is one short transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) in WAL mode
with ``synchronous=FULL``, so a commit survives ``kill -9`` of any process and readers never
block writers. Several processes write (the nightly parent, its stress child); SQLite
serialises them, ``busy_timeout`` makes them wait instead of failing. Every write is
idempotent (upserts keyed by path, (run, key), key), which is what lets the next night's
start simply rescan the output directories of runs that were killed and record whatever
they had written.

Schema changes are additive (a new table, a new nullable column) and applied in place when a
database is opened (:meth:`History._upgrade`), so every older database stays readable; the
nights it recorded simply have no rows in what it lacked (no migration counts before the
``migrations`` table: their charts start later). ``SCHEMA_VERSION`` is raised only by a change
an older migfuzz would misread, which none has been so far: an older migfuzz ignores the
tables it does not know and keeps writing nights that the current one reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import UsageError
from ._history_schema import SCHEMA as _SCHEMA
from ._history_schema import SCHEMA_VERSION as SCHEMA_VERSION
from ._history_schema import NightStatus as NightStatus
from ._history_schema import RunStatus as RunStatus
from .findings import FindingRecord, now
from .rates import RATE_MIN_ATTEMPTS as RATE_MIN_ATTEMPTS
from .rates import RATE_MIN_DROP as RATE_MIN_DROP
from .rates import RATE_Z as RATE_Z
from .rates import NightRates as NightRates
from .rates import RateComparison as RateComparison
from .rates import compare_rates as compare_rates
from .rates import two_proportion_z as two_proportion_z

BUSY_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class RunRow:
    id: int
    night: int
    kind: str
    target: str
    seed: int
    bugs: list[str]
    jobs: int
    budget_s: float
    started: str
    ended: str | None
    seconds: float | None
    execs: int
    exec_per_s: float | None
    coverage: int | None
    features: int | None
    restarts: int
    findings: int
    hits: int
    status: RunStatus
    note: str | None
    out_dir: str

    @classmethod
    def of(cls, row: sqlite3.Row) -> RunRow:
        d = dict(row)
        d["bugs"] = json.loads(d["bugs"])
        d["status"] = RunStatus(d["status"])
        return cls(**d)


class History:
    """One connection to the history database (one per process; never shared across fork)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; each write opens its own.
        self.db = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000,
                                  isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # pragma: no cover - e.g. a file system without mmap
            raise sqlite3.OperationalError(f"{self.path}: cannot use WAL mode ({mode})")
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.execute("PRAGMA foreign_keys = ON")
        with self.tx() as db:
            self._upgrade(db)
        found = self.query("SELECT value FROM meta WHERE name = 'schema'")[0][0]
        if int(found) > SCHEMA_VERSION:
            raise UsageError(f"{self.path}: written by a newer migfuzz (history schema "
                             f"{found}; this one knows up to {SCHEMA_VERSION})")

    @staticmethod
    def _upgrade(db: sqlite3.Connection) -> None:
        """Create what is missing: every table of ``_SCHEMA`` (``CREATE ... IF NOT EXISTS``:
        a database from before the ``migrations`` table gets it, empty) and the columns added
        since the first release."""
        for stmt in _SCHEMA.split(";"):
            if stmt.strip():
                db.execute(stmt)
        db.execute("INSERT OR IGNORE INTO meta(name, value) VALUES ('schema', ?)",
                   (str(SCHEMA_VERSION),))
        # A database from before target/fixes: no flaw known, the nights ran V2 as posted.
        cols = {str(r[1]) for r in db.execute("PRAGMA table_info(findings)")}
        if "known_flaw" not in cols:
            db.execute("ALTER TABLE findings ADD COLUMN known_flaw TEXT")
        if "fixes" not in {str(r[1]) for r in db.execute("PRAGMA table_info(nights)")}:
            db.execute("ALTER TABLE nights ADD COLUMN fixes TEXT")

    def close(self) -> None:
        self.db.close()

    def checkpoint(self) -> None:
        """Fold the WAL into the database file, so that copying that one file (a CI cache)
        copies everything committed so far."""
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; the write lock is taken at once (no upgrade deadlock)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return list(self.db.execute(sql, tuple(args)))

    # -- nights ----------------------------------------------------------------------------

    def start_night(self, *, budget_s: float, jobs: int, bugs: Sequence[str], out_dir: str,
                    model_commit: str, tool_version: str, fixes: Sequence[str] = ()) -> int:
        with self.tx() as db:
            cur = db.execute(
                "INSERT INTO nights(started, budget_s, jobs, bugs, status, out_dir, "
                "model_commit, tool_version, pid, fixes) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                (now(), budget_s, jobs, json.dumps(sorted(bugs)), out_dir, model_commit,
                 tool_version, os.getpid(), json.dumps(sorted(fixes))))
            return int(cur.lastrowid or 0)

    def end_night(self, night: int, status: NightStatus, report: str | None = None) -> None:
        with self.tx() as db:
            db.execute("UPDATE nights SET ended = ?, status = ?, report = COALESCE(?, report) "
                       "WHERE id = ?", (now(), status, report, night))

    def set_report(self, night: int, report: str) -> None:
        with self.tx() as db:
            db.execute("UPDATE nights SET report = ? WHERE id = ?", (report, night))

    def night(self, night: int) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM nights WHERE id = ?", (night,))
        return rows[0] if rows else None

    def nights(self) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM nights ORDER BY id")

    def mark_stale_nights(self, current: int) -> list[int]:
        """Nights still 'running' other than ``current``: their process died (kill -9, power
        loss). The caller holds the nightly lock, so no other nightly is alive."""
        rows = self.query("SELECT id FROM nights WHERE status = 'running' AND id != ?",
                          (current,))
        with self.tx() as db:
            for r in rows:
                ended = db.execute("SELECT MAX(COALESCE(ended, started)) FROM runs "
                                   "WHERE night = ?", (r["id"],)).fetchone()[0]
                db.execute("UPDATE nights SET status = 'killed', ended = COALESCE(?, started) "
                           "WHERE id = ?", (ended, r["id"]))
        return [int(r["id"]) for r in rows]

    # -- runs ------------------------------------------------------------------------------

    def start_run(self, *, night: int, kind: str, target: str, seed: int, bugs: Sequence[str],
                  jobs: int, budget_s: float, out_dir: str) -> int:
        with self.tx() as db:
            cur = db.execute(
                "INSERT INTO runs(night, kind, target, seed, bugs, jobs, budget_s, started, "
                "status, out_dir) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)",
                (night, kind, target, seed, json.dumps(sorted(bugs)), jobs, budget_s, now(),
                 out_dir))
            return int(cur.lastrowid or 0)

    def update_run(self, run: int, **fields: Any) -> None:
        allowed = {"ended", "seconds", "execs", "exec_per_s", "coverage", "features",
                   "restarts", "status", "note", "out_dir"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"unknown run fields {sorted(bad)}")
        if not fields:
            return
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.tx() as db:
            db.execute(f"UPDATE runs SET {cols} WHERE id = ?", (*fields.values(), run))

    def run(self, run: int) -> RunRow | None:
        rows = self.query("SELECT * FROM runs WHERE id = ?", (run,))
        return RunRow.of(rows[0]) if rows else None

    def runs(self, night: int | None = None, status: RunStatus | None = None) -> list[RunRow]:
        sql, args = "SELECT * FROM runs WHERE 1", list[Any]()
        if night is not None:
            sql += " AND night = ?"
            args.append(night)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        return [RunRow.of(r) for r in self.query(sql + " ORDER BY id", args)]

    # -- findings --------------------------------------------------------------------------

    def record_finding(self, run: int, path: str | os.PathLike[str], rec: FindingRecord, *,
                       hits: int | None = None, corpus_match: str | None = None) -> bool:
        """Record that ``run`` has ``rec`` saved at ``path`` with ``hits`` hits so far.

        Idempotent: recording the same file again only raises hits / last seen. Returns True
        when the key was not in the database before (a first sighting, ever).
        """
        p = str(Path(path).resolve())
        h = rec.hits if hits is None else hits
        first = rec.first_seen or now()
        last = rec.last_seen or first
        with self.tx() as db:
            night = db.execute("SELECT night FROM runs WHERE id = ?", (run,)).fetchone()
            if night is None:
                raise ValueError(f"no run {run} in {self.path}")
            existed = db.execute("SELECT 1 FROM findings WHERE key = ?",
                                 (rec.key,)).fetchone() is not None
            if not existed:
                db.execute(
                    "INSERT INTO findings(key, signature, kind, message, bugs, first_seen, "
                    "last_seen, first_night, first_run, hits, file, corpus_match) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    (rec.key, rec.signature, rec.kind, rec.message,
                     json.dumps(sorted(rec.bugs)), first, last, night[0], run, p,
                     corpus_match))
            db.execute(
                "INSERT INTO sightings(run, key, file, hits, first_seen, last_seen) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(run, key) DO UPDATE SET "
                "hits = MAX(hits, excluded.hits), last_seen = MAX(last_seen, excluded.last_seen),"
                " first_seen = MIN(first_seen, excluded.first_seen)",
                (run, rec.key, p, max(1, h), first, last))
            if rec.known_flaw is not None:
                db.execute("UPDATE findings SET known_flaw = ? WHERE key = ? AND known_flaw "
                           "IS NULL", (rec.known_flaw.label, rec.key))
            self._refresh(db, run, rec.key)
        return not existed

    def set_known_flaw(self, key: str, label: str) -> None:
        """The finding ``key`` is a known flaw of V2 as posted (``migfuzz.flaws``): not new."""
        with self.tx() as db:
            db.execute("UPDATE findings SET known_flaw = ? WHERE key = ?", (label, key))

    def count_artifact_hits(self, run: int, key: str) -> None:
        """A fuzz run's hits of ``key``: the number of its crash artifacts with that key."""
        with self.tx() as db:
            n = db.execute("SELECT COUNT(*) FROM files WHERE run = ? AND key = ? "
                           "AND status = 'artifact'", (run, key)).fetchone()[0]
            db.execute("UPDATE sightings SET hits = MAX(hits, ?) WHERE run = ? AND key = ?",
                       (n, run, key))
            self._refresh(db, run, key)

    @staticmethod
    def _refresh(db: sqlite3.Connection, run: int, key: str) -> None:
        db.execute(
            "UPDATE findings SET hits = (SELECT COALESCE(SUM(hits), 0) FROM sightings "
            "WHERE key = ?1), last_seen = (SELECT MAX(last_seen) FROM sightings WHERE key = ?1),"
            " first_seen = MIN(first_seen, (SELECT MIN(first_seen) FROM sightings "
            "WHERE key = ?1)) WHERE key = ?1", (key,))
        db.execute(
            "UPDATE runs SET findings = (SELECT COUNT(*) FROM sightings WHERE run = ?1), "
            "hits = (SELECT COALESCE(SUM(hits), 0) FROM sightings WHERE run = ?1) "
            "WHERE id = ?1", (run,))

    def findings(self, keys: Sequence[str] | None = None) -> list[sqlite3.Row]:
        if keys is None:
            return self.query("SELECT * FROM findings ORDER BY first_seen, key")
        marks = ",".join("?" * len(keys))
        return self.query(f"SELECT * FROM findings WHERE key IN ({marks}) "
                          "ORDER BY first_seen, key", list(keys)) if keys else []

    def night_keys(self, night: int) -> list[sqlite3.Row]:
        """Per key seen by a run of ``night``: its hits that night and its latest file."""
        return self.query(
            "SELECT s.key, SUM(s.hits) AS hits, MAX(s.file) AS file FROM sightings s "
            "JOIN runs r ON r.id = s.run WHERE r.night = ? GROUP BY s.key", (night,))

    def unreported(self, night: int | None = None) -> list[sqlite3.Row]:
        """Findings no report has shown yet (or first shown by ``night``'s report)."""
        return self.query("SELECT * FROM findings WHERE reported_night IS NULL "
                          "OR reported_night = ? ORDER BY first_seen, key", (night,))

    def mark_reported(self, keys: Sequence[str], night: int) -> None:
        with self.tx() as db:
            db.executemany("UPDATE findings SET reported_night = ? WHERE key = ? "
                           "AND reported_night IS NULL", [(night, k) for k in keys])

    def hits_through(self, night: int) -> dict[str, int]:
        """Per key: its hits by the runs of ``night`` and the nights before it."""
        return {str(r[0]): int(r[1]) for r in self.query(
            "SELECT s.key, SUM(s.hits) FROM sightings s JOIN runs r ON r.id = s.run "
            "WHERE r.night <= ? GROUP BY s.key", (night,))}

    def sightings(self, key: str) -> list[sqlite3.Row]:
        return self.query("SELECT s.*, r.night FROM sightings s JOIN runs r ON r.id = s.run "
                          "WHERE s.key = ? ORDER BY s.first_seen", (key,))

    # -- files already read ----------------------------------------------------------------

    def file_seen(self, path: str | os.PathLike[str], mtime_ns: int, size: int) -> bool:
        rows = self.query("SELECT mtime_ns, size FROM files WHERE path = ?",
                          (str(Path(path).resolve()),))
        return bool(rows) and (rows[0]["mtime_ns"], rows[0]["size"]) == (mtime_ns, size)

    def note_file(self, path: str | os.PathLike[str], run: int, mtime_ns: int, size: int,
                  key: str | None, status: str) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO files(path, run, mtime_ns, size, key, status) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
                "mtime_ns = excluded.mtime_ns, size = excluded.size, key = excluded.key, "
                "status = excluded.status",
                (str(Path(path).resolve()), run, mtime_ns, size, key, status))

    def file_errors(self, run: int) -> list[str]:
        """Files of ``run`` that could not be read or replayed (a harness error's trace)."""
        return [f"{Path(r['path']).name}: {r['status']}" for r in self.query(
            "SELECT path, status FROM files WHERE run = ? AND (status LIKE 'error%' "
            "OR status LIKE 'invalid%') ORDER BY path", (run,))]

    # -- trends ----------------------------------------------------------------------------

    def trend_rows(self) -> list[dict[str, Any]]:
        """Per night: exec/s per process by kind/target, max coverage per fuzz target, keys
        seen and keys first seen that night."""
        out: list[dict[str, Any]] = []
        for n in self.nights():
            nid = int(n["id"])
            row: dict[str, Any] = {"night": nid, "started": n["started"], "status": n["status"],
                                   "rate": {}, "coverage": {}}
            for r in self.query(
                    "SELECT CASE WHEN kind = 'stress' THEN 'stress' ELSE target END AS name, "
                    "SUM(execs) AS execs, SUM(seconds * jobs) AS ps, "
                    "MAX(NULLIF(coverage, 0)) AS cov "
                    "FROM runs WHERE night = ? AND seconds > 0 GROUP BY name", (nid,)):
                name = str(r["name"])
                if r["ps"]:
                    row["rate"][name] = float(r["execs"]) / float(r["ps"])
                if r["cov"] is not None:
                    row["coverage"][name] = int(r["cov"])
            row["seen"] = int(self.query(
                "SELECT COUNT(DISTINCT s.key) FROM sightings s JOIN runs r ON r.id = s.run "
                "WHERE r.night = ?", (nid,))[0][0])
            row["new"] = int(self.query(
                "SELECT COUNT(*) FROM findings WHERE first_night = ? AND corpus_match IS NULL "
                "AND known_flaw IS NULL",
                (nid,))[0][0])
            out.append(row)
        return out

    # -- migration rates -------------------------------------------------------------------

    def record_migrations(self, run: int, migrations: Mapping[str, Sequence[int]]) -> None:
        """``run``'s counts so far (``kind:name`` -> [attempted, moved], as the campaign's
        summary has them). A campaign's counts only grow, so the latest report replaces what
        was recorded before: recording a status file and then the result is idempotent."""
        rows = []
        for key, counts in sorted(migrations.items()):
            kind, _, name = key.partition(":")
            rows.append((run, kind, name, int(counts[0]), int(counts[1])))
        with self.tx() as db:
            db.execute("DELETE FROM migrations WHERE run = ?", (run,))
            db.executemany("INSERT INTO migrations(run, kind, name, attempted, moved) "
                           "VALUES (?, ?, ?, ?, ?)", rows)

    def night_migrations(self, night: int) -> dict[str, tuple[int, int]]:
        """``kind:name`` -> (pages attempted, pages moved), summed over ``night``'s runs."""
        return {f"{r['kind']}:{r['name']}": (int(r["a"]), int(r["m"])) for r in self.query(
            "SELECT g.kind, g.name, SUM(g.attempted) AS a, SUM(g.moved) AS m "
            "FROM migrations g JOIN runs r ON r.id = g.run WHERE r.night = ? "
            "GROUP BY g.kind, g.name ORDER BY g.kind, g.name", (night,))}

    def migration_trend(self) -> list[NightRates]:
        """Every night's migration counts, oldest first (empty for a night without any)."""
        return [NightRates(int(n["id"]), str(n["bugs"]), str(n["fixes"] or "[]"),
                           self.night_migrations(int(n["id"]))) for n in self.nights()]
