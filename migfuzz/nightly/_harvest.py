"""Recording what a run directory holds: every finding file and fuzz artifact, replayed
before it is recorded (``migfuzz nightly``'s docstring: a file is a claim), and the known
findings of the corpus that make a finding not new."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .._errors import FindingFileError
from ..findings import FindingRecord, FindingStore, load
from ..flaws import explain
from ..fuzz import artifact_record
from ..history import (
    History,
    RunRow,
)
from ..replay import check
from ._plan import (
    RESERVED,
    ROOT,
)
from ._spec import RunKind, _read_json

# -- known findings in the corpus -------------------------------------------------------------

class CorpusIndex:
    """The committed findings: ``corpus/known`` (a reproducer per catalog bug) and
    ``corpus/regressions`` (minimized findings kept as regression tests)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or ROOT / "corpus"
        self.entries: list[tuple[str, str, frozenset[str], str]] = []
        for sub in ("known", "regressions"):
            d = self.root / sub
            if not d.is_dir():
                continue
            for f in sorted(d.rglob("*.json")):
                try:
                    rec = load(f)
                except FindingFileError:
                    continue
                rel = f.relative_to(self.root.parent) if f.is_relative_to(
                    self.root.parent) else f
                self.entries.append((rec.key, rec.signature, frozenset(rec.bugs), str(rel)))

    def match(self, rec: FindingRecord) -> str | None:
        """The corpus file that explains ``rec``: the same key, else the same signature found
        with a subset of ``rec``'s bugs (the known reproducer of a bug injected tonight)."""
        for key, _, _, path in self.entries:
            if key == rec.key:
                return path
        bugs = set(rec.bugs)
        for _, sig, ebugs, path in self.entries:
            if sig == rec.signature and ebugs <= bugs:
                return path
        return None


# -- recording what a run directory holds -----------------------------------------------------

@dataclass
class Harvest:
    """What one rescan of a run directory recorded."""

    files: list[str] = field(default_factory=list)  # finding files and artifacts read now
    new_keys: list[str] = field(default_factory=list)  # keys the database did not have
    rejected: list[str] = field(default_factory=list)  # "FILE: why": not loaded / reproduced

    def add(self, other: Harvest) -> None:
        self.files += other.files
        self.new_keys += other.new_keys
        self.rejected += other.rejected


_REPLAYED: dict[str, str | None] = {}
"""Verdicts of :func:`replay_problem` by the record's content without its counters: a
campaign rewrites its file at every flush of a new hit count, which needs no new replay."""


def replay_problem(rec: FindingRecord, source: str) -> str | None:
    """Why ``rec`` is not a finding, judged as ``migfuzz repro`` would (two exact replays with
    its bugs and fixes; a drifted schedule re-searched): None when it reproduces.

    A finding file in a run directory is only a claim: a stray or edited file, or one whose
    finding the model no longer shows, must not reach the history as a finding. Raises
    :class:`FindingFileError` for a file that is corrupt in a way only a replay shows (a
    padded schedule)."""
    content = replace(rec, hits=1, first_seen="", last_seen="", known_flaw=None).dumps()
    if content not in _REPLAYED:
        v = check(rec, None, source)
        _REPLAYED[content] = None if v.reproduced else (
            f"does not reproduce ({v.status}): " + " ".join(" ".join(v.notes).split())[:300])
    return _REPLAYED[content]


def _cannot_replay(hist: History, run: RunRow, path: Path, st: os.stat_result,
                   exc: Exception, got: Harvest, warn: Callable[[str], None] | None,
                   status: str) -> None:
    """A file whose replay raised (a harness error): recorded as such, never as a finding."""
    why = f"{type(exc).__name__}: {exc}"
    hist.note_file(path, run.id, st.st_mtime_ns, st.st_size, None, f"{status}: {why}")
    got.rejected.append(f"{path}: cannot replay: {why}")
    if warn:
        warn(f"{path}: cannot replay: {why}")


def harvest(hist: History, run: RunRow, corpus: CorpusIndex,
            warn: Callable[[str], None] | None = None) -> Harvest:
    """Record every finding file and crash artifact of ``run``'s directory not yet in the
    database, each replayed first (:func:`replay_problem`; an artifact is replayed to be
    decoded at all): a file that does not load or does not reproduce is recorded in ``files``
    as ``invalid: ...`` and in :attr:`Harvest.rejected`, never as a finding. Idempotent and
    crash-safe: a file's row in ``files`` is written after its finding, so a kill in between
    only means the next harvest records it again (which changes nothing).

    (A stress run's campaign also records each finding it saves, before this harvest: those
    records come from the campaign's own traced replay of the run that found them.)"""
    d = Path(run.out_dir)
    got = Harvest()
    if not d.is_dir():
        return got
    for p in sorted(d.glob("*.json")):
        if p.name in RESERVED:
            continue
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        if hist.file_seen(p, st.st_mtime_ns, st.st_size):
            continue
        try:
            rec = load(p)
            problem = replay_problem(rec, str(p))
        except FindingFileError as exc:
            problem = exc.problem
        except Exception as exc:  # a harness error replaying it: the run is in error
            _cannot_replay(hist, run, p, st, exc, got, warn, "error: cannot replay")
            continue
        if problem is not None:
            hist.note_file(p, run.id, st.st_mtime_ns, st.st_size, None, f"invalid: {problem}")
            got.rejected.append(f"{p}: {problem}")
            if warn:
                warn(f"{p}: not a finding: {problem}")
            continue
        if hist.record_finding(run.id, p, rec, corpus_match=corpus.match(rec)):
            got.new_keys.append(rec.key)
        hist.note_file(p, run.id, st.st_mtime_ns, st.st_size, rec.key, "finding")
        got.files.append(str(p))
    if run.kind == RunKind.FUZZ:
        got.add(_harvest_artifacts(hist, run, corpus, warn))
    return got


def _harvest_artifacts(hist: History, run: RunRow, corpus: CorpusIndex,
                       warn: Callable[[str], None] | None) -> Harvest:
    d = Path(run.out_dir)
    arts = d / f"fuzz-{run.target}" / "artifacts"
    got = Harvest()
    if not arts.is_dir():
        return got
    store = FindingStore(d)
    for a in sorted(arts.iterdir()):
        if a.name.startswith(".") or not a.is_file():
            continue
        st = a.stat()
        if hist.file_seen(a, st.st_mtime_ns, st.st_size):
            continue
        try:
            rec = artifact_record(a.read_bytes(), run.target, run.bugs, str(a),
                                  fixes=run_fixes(run))
        except Exception as exc:
            _cannot_replay(hist, run, a, st, exc, got, warn, "error")
            continue
        got.files.append(str(a))
        if rec is None:  # a libFuzzer timeout / OOM / leak report, not a model finding
            hist.note_file(a, run.id, st.st_mtime_ns, st.st_size, None, "no-finding")
            continue
        path = store.path_for(rec)
        if not path.exists():
            with contextlib.suppress(Exception):  # undecided stays new (label_known_flaws)
                rec.known_flaw = explain(rec)
            store.save_merged(rec, rec.hits)
        if hist.record_finding(run.id, path, rec, hits=1, corpus_match=corpus.match(rec)):
            got.new_keys.append(rec.key)
        with contextlib.suppress(OSError):
            js = path.stat()  # (what it records is recorded: no need to read it back)
            hist.note_file(path, run.id, js.st_mtime_ns, js.st_size, rec.key, "finding")
        hist.note_file(a, run.id, st.st_mtime_ns, st.st_size, rec.key, "artifact")
        hist.count_artifact_hits(run.id, rec.key)
    return got


def run_fixes(run: RunRow) -> list[str]:
    """The upstream fixes ``run`` ran with (its ``run.json``; none for a run from before)."""
    fixes = _read_json(Path(run.out_dir) / "run.json").get("fixes", [])
    return [str(f) for f in fixes] if isinstance(fixes, list) else []


def label_known_flaws(hist: History, night: int,
                      warn: Callable[[str], None] | None = None) -> list[str]:
    """Label the findings of ``night`` that a known flaw of V2 explains and that nothing
    labelled yet (a fuzz crash, the file of a run killed before it labelled); returns the
    labels of every known flaw seen that night."""
    labels: list[str] = []
    keys = [str(r["key"]) for r in hist.night_keys(night)]
    for row in hist.findings(keys):
        if row["known_flaw"] is None and row["corpus_match"] is None:
            try:
                flaw = explain(load(row["file"]))
            except Exception as exc:  # unlabelled is the safe side: it stays new
                if warn:
                    warn(f"{row['file']}: cannot decide whether a known flaw explains it: "
                         f"{type(exc).__name__}: {exc}")
                continue
            if flaw is None:
                continue
            hist.set_known_flaw(str(row["key"]), flaw.label)
            labels.append(f"{row['signature']}: {flaw.label}")
        elif row["known_flaw"] is not None:
            labels.append(f"{row['signature']}: {row['known_flaw']}")
    return labels
