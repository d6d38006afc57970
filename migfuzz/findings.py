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
import functools
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from stress.workload import Scenario, ScenarioError

from . import __version__
from ._errors import FindingFileError
from .strategies import SCHEDULE_CODEC, SCHEDULE_JSON, StrategySpec, decode, encode

FORMAT = "migfuzz-finding"
FORMAT_VERSION = 1

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
    """``<kind>-<16 hex digits of sha256(key)>.json``: stable, collision-free in practice."""
    return f"{kind}-{key_hash(key)}.json"


def pretty_json(value: Any, indent: str = "") -> str:
    """JSON with objects indented and lists of scalars on one line (an op, a prefault store,
    a schedule read as one row each), so that a finding file reads well in a diff."""
    inner = indent + "  "
    if isinstance(value, dict) and all(not isinstance(v, (dict, list)) for v in value.values()):
        flat = json.dumps(value)
        if len(flat) <= 72:
            return flat
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {pretty_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value:
        if all(not isinstance(v, (dict, list)) for v in value):
            return json.dumps(value)
        items = [inner + pretty_json(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    return json.dumps(value)


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

    @classmethod
    def from_json(cls, d: Any, source: str = "<finding>") -> FindingRecord:
        """Validate and load; :class:`FindingFileError` naming ``source`` and the problem."""

        def bad(problem: str) -> FindingFileError:
            return FindingFileError(source, problem)

        if not isinstance(d, dict):
            raise bad("not a finding file: the top level is not a JSON object")
        if d.get("format") != FORMAT:
            raise bad(f"not a finding file: 'format' is {d.get('format')!r}, not {FORMAT!r}")
        version = d.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise bad("'format_version' is missing or not an integer")
        if version > FORMAT_VERSION:
            raise bad(f"written by a newer migfuzz (format version {version}; this one reads "
                      f"up to {FORMAT_VERSION})")
        if version < 1:
            raise bad(f"unknown format version {version}")

        def get(name: str, typ: type | tuple[type, ...]) -> Any:
            if name not in d:
                raise bad(f"field {name!r} is missing")
            v = d[name]
            if (isinstance(v, bool) and typ is int) or not isinstance(v, typ):
                want = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
                raise bad(f"field {name!r} must be {want}, not {type(v).__name__}")
            return v

        strategy = get("strategy", dict)
        sname, sseed = strategy.get("name"), strategy.get("seed")
        if not isinstance(sname, str) or not (sseed is None or isinstance(sseed, int)):
            raise bad("field 'strategy' must have a string 'name' and an integer 'seed'")
        params = strategy.get("params", {})
        if not isinstance(params, dict):
            raise bad("field 'strategy.params' must be an object")
        try:
            scenario = Scenario.from_json(get("scenario", dict))
        except ScenarioError as exc:
            raise bad(f"invalid scenario: {exc}") from None
        encoding = get("schedule_encoding", str)
        if encoding not in (SCHEDULE_CODEC, SCHEDULE_JSON):
            raise bad(f"unknown schedule encoding {encoding!r}")
        try:
            schedule = decode(encoding, d.get("schedule"))
        except ValueError as exc:
            raise bad(f"invalid schedule: {exc}") from None
        ntasks = len(scenario.tasks)
        if any(t >= ntasks for t in schedule):
            raise bad(f"invalid schedule: a decision names a task beyond the scenario's {ntasks}")
        decisions = d.get("decisions", len(schedule))
        if decisions != len(schedule):
            raise bad(f"schedule has {len(schedule)} decisions, but 'decisions' says "
                      f"{decisions}: truncated or edited?")
        bugs = get("bugs", list)
        if not all(isinstance(b, str) for b in bugs):
            raise bad("field 'bugs' must be a list of bug names")
        fixes = d.get("fixes", [])  # absent in files older than target/fixes: none applied
        if not isinstance(fixes, list) or not all(isinstance(x, str) for x in fixes):
            raise bad("field 'fixes' must be a list of fix names")
        known_flaw = KnownFlaw.from_json(d.get("known_flaw"), bad)
        executor = get("executor", str)
        if executor not in ("direct", "trio"):
            raise bad(f"unknown executor {executor!r}")
        max_steps = get("max_steps", int)
        if max_steps < 1:
            raise bad("field 'max_steps' must be positive")
        hits = get("hits", int)
        return cls(
            signature=get("signature", str),
            kind=get("kind", str),
            message=get("message", str),
            function=get("function", str),
            task=get("task", str),
            step=get("step", int),
            details=get("details", dict),
            scenario=scenario,
            strategy=StrategySpec(sname, sseed if sseed is not None else 0, dict(params)),
            executor=executor,
            schedule=schedule,
            bugs=list(bugs),
            max_steps=max_steps,
            steps=get("steps", int),
            trace_hash=get("trace_hash", str),
            hits=hits,
            first_seen=get("first_seen", str),
            last_seen=get("last_seen", str),
            tool_version=get("tool_version", str),
            model_commit=get("model_commit", str),
            origin=get("origin", dict),
            fixes=sorted(fixes),
            known_flaw=known_flaw,
        )


def load(path: str | os.PathLike[str]) -> FindingRecord:
    """Read one finding file; :class:`FindingFileError` for any problem, never a traceback."""
    p = str(path)
    try:
        with open(p, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise FindingFileError(p, "no such file") from None
    except IsADirectoryError:
        raise FindingFileError(p, "is a directory, not a finding file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FindingFileError(p, f"cannot read: {exc}") from None
    if not text.strip():
        raise FindingFileError(p, "empty file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FindingFileError(p, f"not valid JSON (truncated or corrupt?): {exc}") from None
    return FindingRecord.from_json(data, p)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new, never half.

    The temp file is in the same directory because ``os.replace`` is atomic only within one
    file system; a campaign interrupted (Ctrl-C, OOM kill, power loss) mid-write must not leave
    a truncated finding that ``repro`` would reject, and re-hits rewrite files constantly.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class FindingStore:
    """A directory of finding files, one per deduplication key.

    ``record`` is idempotent in content (saving the same finding twice only adds to ``hits``).
    Writes are atomic (:func:`write_atomic`). One process writes a store at a time: a campaign's
    worker processes send their findings to the parent, which is the only writer.
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

    def merge(self, old: FindingRecord | None, new: FindingRecord) -> tuple[FindingRecord, bool]:
        """The record to keep: the smaller reproducer, with the hits of both.

        Returns (record, replaced) where ``replaced`` says the reproducer itself changed.
        """
        if old is None:
            return new, True
        hits = old.hits + new.hits
        if new.size() < old.size():
            return replace(new, hits=hits, first_seen=old.first_seen or new.first_seen), True
        return replace(old, hits=hits, last_seen=new.last_seen or old.last_seen), False

    def save(self, record: FindingRecord) -> Path:
        path = self.path_for(record)
        write_atomic(path, record.dumps())
        return path
