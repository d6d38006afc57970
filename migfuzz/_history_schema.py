"""The history database's schema (``migfuzz.history``), and the values of its status columns.

The schema only grows (a table, a nullable column), applied whenever a database is opened.
"""

from __future__ import annotations

import enum


class NightStatus(enum.StrEnum):
    """``nights.status``."""

    RUNNING = "running"  # (or died: the next night marks it killed)
    DONE = "done"
    INTERRUPTED = "interrupted"  # a signal stopped it; what was found is recorded
    KILLED = "killed"  # its process died; the next night recovered its runs


class RunStatus(enum.StrEnum):
    """``runs.status``."""

    RUNNING = "running"
    OK = "ok"  # ended, nothing found
    FINDINGS = "findings"
    INTERRUPTED = "interrupted"  # stopped early (a signal, or the deadline overrun)
    ERROR = "error"  # a harness error, or a file in its directory that does not reproduce
    KILLED = "killed"  # the nightly died before it ended


SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nights (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    ended TEXT,
    budget_s REAL NOT NULL,
    jobs INTEGER NOT NULL,
    bugs TEXT NOT NULL,
    status TEXT NOT NULL,
    out_dir TEXT NOT NULL,
    report TEXT,
    model_commit TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    pid INTEGER,
    fixes TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    night INTEGER NOT NULL REFERENCES nights(id),
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    seed INTEGER NOT NULL,
    bugs TEXT NOT NULL,
    jobs INTEGER NOT NULL,
    budget_s REAL NOT NULL,
    started TEXT NOT NULL,
    ended TEXT,
    seconds REAL,
    execs INTEGER NOT NULL DEFAULT 0,
    exec_per_s REAL,
    coverage INTEGER,
    features INTEGER,
    restarts INTEGER NOT NULL DEFAULT 0,
    findings INTEGER NOT NULL DEFAULT 0,
    hits INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    note TEXT,
    out_dir TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS findings (
    key TEXT PRIMARY KEY,
    signature TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    bugs TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    first_night INTEGER NOT NULL,
    first_run INTEGER NOT NULL,
    hits INTEGER NOT NULL,
    file TEXT NOT NULL,
    corpus_match TEXT,
    reported_night INTEGER,
    known_flaw TEXT
);
CREATE TABLE IF NOT EXISTS sightings (
    run INTEGER NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL REFERENCES findings(key),
    file TEXT NOT NULL,
    hits INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (run, key)
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    run INTEGER NOT NULL REFERENCES runs(id),
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    key TEXT,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS migrations (
    run INTEGER NOT NULL REFERENCES runs(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    attempted INTEGER NOT NULL,
    moved INTEGER NOT NULL,
    PRIMARY KEY (run, kind, name)
);
CREATE INDEX IF NOT EXISTS runs_night ON runs(night);
CREATE INDEX IF NOT EXISTS sightings_key ON sightings(key);
CREATE INDEX IF NOT EXISTS files_run ON files(run);
"""
