"""Finding files: one versioned JSON document per distinct signature, and the store of them.

The format is documented field by field in ``corpus/README.md``; :data:`FORMAT_VERSION` is
bumped on any change a reader of the previous version would misread. A file is *self-contained*:
scenario, recorded schedule, executor, injected bugs and step bound are everything
``migfuzz repro`` needs, and the tool version, model commit and trace hash are what it needs to
tell a finding that no longer reproduces because the model was fixed from one whose replay
*drifted* because the model changed.

The store (:class:`FindingStore`) is a directory of such files, keyed like Hypothesis's example
database by a hash of the deduplication key, so that re-hitting a known signature updates one
file (hit count, last seen, and the smaller reproducer) instead of adding another.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import functools
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stress import Outcome
from stress.workload import Scenario, ScenarioError, execution_task_names, schema_error

from . import __version__
from ._errors import FindingFileError
from ._files import parse_json as parse_json
from ._files import pretty_json as pretty_json
from ._files import read_bounded as read_bounded
from ._files import write_atomic as write_atomic
from ._finding_schema import FORMAT as FORMAT
from ._finding_schema import FORMAT_VERSION as FORMAT_VERSION
from ._finding_schema import MAX_FILE_BYTES as MAX_FILE_BYTES
from ._finding_schema import MAX_STEPS as MAX_STEPS
from ._finding_schema import SAFE_NAME as SAFE_NAME
from ._finding_schema import Finding as _Finding
from .strategies import StrategySpec, decode, encode

_PROJECT = Path(__file__).resolve().parent.parent


@functools.cache
def model_commit() -> str:
    """``git rev-parse HEAD`` of the model, ``+dirty`` if target/ or stress/ has local changes;
    ``"unknown"`` outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_PROJECT, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "target", "stress"], cwd=_PROJECT,
            capture_output=True, timeout=10,
        ).returncode
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty == 1 else "") if head else "unknown"


def trace_hash(outcome: Outcome) -> str:
    """``sha256:`` + the first 32 hex digits of the hash of the outcome's trace key (of a
    traced run: ``migfuzz.replay``)."""
    return "sha256:" + hashlib.sha256(repr(outcome.trace_key).encode()).hexdigest()[:32]


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def dedup_key(signature: str, bugs: list[str], fixes: list[str] | tuple[str, ...] = ()) -> str:
    """What makes two findings "the same": the signature, within one model variant (the
    injected bugs and the applied upstream fixes)."""
    key = signature if not bugs else f"{signature} +bugs:{','.join(sorted(bugs))}"
    return key if not fixes else f"{key} +fixes:{','.join(sorted(fixes))}"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def file_name(kind: str, key: str) -> str:
    """``<kind>-<16 hex digits of sha256(key)>.json``: stable, collision-free in practice.

    ``kind`` is checked here too, not only on load: this name is joined onto a directory, and
    whatever built the record, no name may leave it."""
    if not re.fullmatch(SAFE_NAME, kind):
        raise ValueError(f"finding kind {kind!r} is not a safe file name")
    return f"{kind}-{key_hash(key)}.json"


def _jsonable(value: Any) -> Any:
    """Details as JSON will give them back (tuples become lists; anything odd its repr)."""
    return json.loads(json.dumps(value, default=repr, sort_keys=True))


@dataclass(frozen=True)
class KnownFlaw:
    """A known flaw of V2 as posted that explains a finding, decided by execution
    (``migfuzz.flaws``): with its upstream fix added the finding is gone."""

    fix: str  # the ``--fix`` name
    label: str  # UpstreamFix.label(): "known flaw of V2 as posted: NAME, fixed upstream by ..."
    how: str = ""  # how it was decided: the replay, or the re-run seeds

    def to_json(self) -> dict[str, str]:
        return {"fix": self.fix, "label": self.label, "how": self.how}

    @classmethod
    def from_json(cls, v: Any, bad: Callable[[str], Exception]) -> KnownFlaw | None:
        if v is None:
            return None
        if not isinstance(v, dict) or not all(
                isinstance(v.get(k, ""), str) for k in ("fix", "label", "how")) or not v.get("fix"):
            raise bad("field 'known_flaw' must be null or an object with strings 'fix', "
                      "'label' and 'how'")
        return cls(v["fix"], v.get("label", ""), v.get("how", ""))


DIGESTED = ("signature", "kind", "message", "function", "task", "step", "details", "scenario",
            "strategy", "executor", "bugs", "fixes", "max_steps", "steps", "trace_hash")
"""The fields a finding file's ``digest`` covers (with its decoded schedule)."""


@dataclass
class FindingRecord:
    """The contents of one finding file (see ``corpus/README.md`` for each field)."""

    signature: str
    kind: str
    message: str
    function: str
    task: str
    step: int
    details: dict[str, Any]
    scenario: Scenario
    strategy: StrategySpec
    executor: str
    schedule: list[int]
    bugs: list[str]
    max_steps: int
    steps: int
    trace_hash: str
    hits: int = 1
    first_seen: str = ""
    last_seen: str = ""
    tool_version: str = __version__
    model_commit: str = "unknown"
    origin: dict[str, Any] = field(default_factory=dict)
    fixes: list[str] = field(default_factory=list)  # upstream fixes applied (target.fixes)
    known_flaw: KnownFlaw | None = None  # the known flaw of V2 that explains it, if one does

    @classmethod
    def from_outcome(cls, scenario: Scenario, outcome: Outcome, *, strategy: StrategySpec,
                     executor: str, bugs: Sequence[str], fixes: Sequence[str], max_steps: int,
                     origin: dict[str, Any], stamp: str = "",
                     commit: str = "unknown") -> FindingRecord:
        """The record of ``outcome``'s finding: the one way an outcome becomes a file's
        contents (campaign, gate and fuzz all come through ``replay.confirm_record``, which
        makes ``outcome`` the traced exact replay whose hash the file keeps)."""
        f = outcome.finding
        if f is None:
            raise ValueError("an outcome without a finding has no finding record")
        return cls(
            signature=f.signature, kind=f.kind, message=f.message, function=f.function,
            task=f.task, step=f.step, details=f.details, scenario=scenario, strategy=strategy,
            executor=executor, schedule=list(outcome.schedule), bugs=sorted(bugs),
            fixes=sorted(fixes), max_steps=max_steps, steps=outcome.steps,
            trace_hash=trace_hash(outcome), first_seen=stamp, last_seen=stamp,
            model_commit=commit, origin=origin,
        )

    @property
    def key(self) -> str:
        return dedup_key(self.signature, self.bugs, self.fixes)

    def file_name(self) -> str:
        return file_name(self.kind, self.key)

    def size(self) -> tuple[int, int, int]:
        """(tasks, operations, decisions): the smaller reproducer wins (shortlex)."""
        tasks, ops = self.scenario.size()
        return tasks, ops, len(self.schedule)

    def to_json(self) -> dict[str, Any]:
        body = self._body()
        out: dict[str, Any] = {}
        for k, v in body.items():
            out[k] = v
            if k == "trace_hash":  # the digest next to the trace hash it covers
                out["digest"] = self.digest(body)
        return out

    def _body(self) -> dict[str, Any]:
        encoding, data = encode(self.schedule)
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tool_version": self.tool_version,
            "model_commit": self.model_commit,
            "key": self.key,
            "signature": self.signature,
            "kind": self.kind,
            "message": self.message,
            "function": self.function,
            "task": self.task,
            "step": self.step,
            "details": _jsonable(self.details),
            "scenario": self.scenario.to_json(),
            "strategy": self.strategy.to_json(),
            "executor": self.executor,
            "schedule_encoding": encoding,
            "schedule": data,
            "decisions": len(self.schedule),
            "bugs": sorted(self.bugs),
            "fixes": sorted(self.fixes),
            "known_flaw": None if self.known_flaw is None else self.known_flaw.to_json(),
            "max_steps": self.max_steps,
            "steps": self.steps,
            "trace_hash": self.trace_hash,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "hits": self.hits,
            "origin": _jsonable(self.origin),
        }

    def dumps(self) -> str:
        return pretty_json(self.to_json()) + "\n"

    def digest(self, body: dict[str, Any] | None = None) -> str:
        """``sha256:`` + 32 hex digits over what a replay uses and a verdict compares: the
        finding, scenario, strategy, executor, decisions, bugs, fixes and bounds, and the trace
        hash (not the counters, dates, origin or label, which migfuzz itself rewrites). Any
        other change to a file migfuzz wrote is an edit, and reads as corrupt."""
        d = self._body() if body is None else body
        content = {k: d[k] for k in DIGESTED}
        content["schedule"] = list(self.schedule)  # whatever its encoding
        text = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]

    @classmethod
    def from_json(cls, d: Any, source: str = "<finding>") -> FindingRecord:
        """Validate and load; :class:`FindingFileError` naming ``source`` and the first bad
        field. The checks are :class:`_Finding`'s (types, bounds, safe names) and then
        :func:`_check_integrity`'s (the fields agree with each other)."""

        def bad(problem: str) -> FindingFileError:
            return FindingFileError(source, problem)

        if not isinstance(d, dict):
            raise bad("not a finding file: the top level is not a JSON object")
        if d.get("format") != FORMAT:
            raise bad(f"not a finding file: 'format' is {_short(d.get('format'))}, "
                      f"not {FORMAT!r}")
        version = d.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise bad("field format_version: missing or not an integer")
        if version > FORMAT_VERSION:
            raise bad(f"written by a newer migfuzz (format version {version}; this one reads "
                      f"up to {FORMAT_VERSION})")
        try:
            m = _Finding.model_validate(d)
        except ValidationError as exc:
            raise bad(schema_error(exc)) from None
        try:
            scenario = Scenario.from_json(m.scenario)
        except ScenarioError as exc:
            raise bad(str(exc)) from None
        try:
            schedule = decode(m.schedule_encoding, m.schedule)
        except ValueError as exc:
            raise bad(f"field schedule: {exc}") from None
        rec = cls(
            signature=m.signature, kind=m.kind, message=m.message, function=m.function,
            task=m.task, step=m.step, details=m.details, scenario=scenario,
            strategy=StrategySpec(m.strategy.name, m.strategy.seed, dict(m.strategy.params)),
            executor=m.executor, schedule=schedule, bugs=list(m.bugs), max_steps=m.max_steps,
            steps=m.steps, trace_hash=m.trace_hash, hits=m.hits, first_seen=m.first_seen,
            last_seen=m.last_seen, tool_version=m.tool_version, model_commit=m.model_commit,
            origin=m.origin, fixes=sorted(m.fixes),
            known_flaw=KnownFlaw.from_json(m.known_flaw, bad),
        )
        problem = _check_integrity(rec, m)
        if problem:
            raise bad(problem)
        return rec


def _check_integrity(rec: FindingRecord, m: _Finding) -> str:
    """Why the fields of a finding file disagree with each other ("" if they agree).

    A file edited by hand (or by a bad merge) must read as corrupt, never replay as some
    other finding or as "fixed": the key is recomputed from the signature and bugs, the
    signature from the kind and function, the schedule against its length and the scenario,
    and (files written since it exists) everything a replay uses against the ``digest``.
    """
    if not rec.signature.startswith(f"{rec.kind} in {rec.function}"):
        return (f"field signature: {_short(rec.signature)} does not match kind {rec.kind!r} "
                f"and function {_short(rec.function)}: edited?")
    if len(set(rec.bugs)) != len(rec.bugs):
        return "field bugs: a bug is named twice"
    key = dedup_key(rec.signature, rec.bugs, rec.fixes)
    if m.key != key:
        return (f"field key: {_short(m.key)} is not the key of signature, bugs and fixes "
                f"({_short(key)}): edited?")
    ntasks = len(execution_task_names(rec.scenario))  # the interrupt actor's tid included
    if any(t >= ntasks for t in rec.schedule):
        return f"field schedule: a decision names a task beyond the scenario's {ntasks}"
    if m.decisions != len(rec.schedule):
        return (f"field decisions: the schedule has {len(rec.schedule)} decisions, but "
                f"'decisions' says {m.decisions}: truncated or edited?")
    if len(rec.schedule) > rec.max_steps:
        return f"field schedule: {len(rec.schedule)} decisions exceed max_steps {rec.max_steps}"
    if m.digest is not None and m.digest != rec.digest():
        return ("field digest: the file was edited after migfuzz wrote it (its finding, "
                "scenario, strategy, schedule, bugs, fixes or bounds no longer match the "
                f"digest {m.digest}): corrupt, so no verdict")
    return ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_finding(data: Any) -> bool:
    """Whether parsed JSON claims to be a finding file (then it must be a valid one)."""
    return isinstance(data, dict) and data.get("format") == FORMAT


def load(path: str | os.PathLike[str]) -> FindingRecord:
    """Read one finding file; :class:`FindingFileError` for any problem, never a traceback."""
    p = str(path)
    data = read_bounded(p)
    if not data.strip():
        raise FindingFileError(p, "empty file")
    try:
        doc = parse_json(data)
    except ValueError as exc:
        raise FindingFileError(p, f"not valid JSON (truncated or corrupt?): {exc}") from None
    return FindingRecord.from_json(doc, p)


class FindingStore:
    """A directory of finding files, one per deduplication key.

    ``record`` is idempotent in content (saving the same finding twice only adds to ``hits``).
    Writes are atomic (:func:`write_atomic`). A campaign's worker processes send their
    findings to the parent, the campaign's only writer; two campaigns sharing one directory
    go through :meth:`save_merged`, a read-merge-write under a lock on the directory, so
    neither loses the other's hits or replaces its smaller reproducer.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.warnings: list[str] = []

    def path_for(self, record: FindingRecord) -> Path:
        return self.dir / record.file_name()

    def existing(self, record: FindingRecord) -> FindingRecord | None:
        path = self.path_for(record)
        if not path.exists():
            return None
        try:
            return load(path)
        except FindingFileError as exc:
            # Keep the evidence: move the unreadable file aside instead of overwriting it.
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            self.warnings.append(f"{exc}; moved aside to {aside.name}")
            return None

    def save(self, record: FindingRecord) -> Path:
        """Write ``record`` as it is (atomically): the primitive under :meth:`save_merged`,
        which every finder calls; a subclass that must see every write overrides this."""
        path = self.path_for(record)
        write_atomic(path, record.dumps())
        return path

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """An exclusive ``flock`` on ``DIR/.lock`` (advisory: every writer of ours takes it).
        Released by the kernel if the holder dies, so a killed campaign never wedges one."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def save_merged(self, record: FindingRecord, new_hits: int, *,
                    replaces: FindingRecord | None = None) -> tuple[FindingRecord, bool]:
        """Merge ``record`` into the file on disk as it is *now* and write the result.

        ``new_hits`` are the hits this writer has counted since its last save; the file's
        count (which other writers may have raised meanwhile) is added to them. The smaller
        reproducer wins, the file's on a tie, unless the file still holds ``replaces``: a
        record of this writer's that ``record`` beats in the writer's own order (a campaign's
        lower run on a tie of size), so the campaign's choice does not depend on which of its
        workers reported first. Returns (what was written, whether a file existed before).
        """
        with self.locked():
            old = self.existing(record)
            if old is None:
                merged = replace(record, hits=new_hits)
            else:
                mine = replaces is not None and (old.origin, old.schedule) == (
                    replaces.origin, replaces.schedule)
                smaller = record.size() < old.size() or (mine and record.size() == old.size())
                keep = record if smaller else old
                merged = replace(keep, hits=old.hits + new_hits,
                                 first_seen=min(filter(None, (old.first_seen,
                                                              record.first_seen)), default=""),
                                 last_seen=max(old.last_seen, record.last_seen),
                                 # a label decided by execution is kept, whoever decided it
                                 known_flaw=record.known_flaw or old.known_flaw)
            self.save(merged)
        return merged, old is not None
