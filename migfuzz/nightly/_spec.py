"""The files of a run directory: ``run.json`` (what the child runs: :class:`RunSpec`, written
by the parent), and ``status.json`` / ``result.json`` (the numbers the child reports, read
back as plain JSON objects: they are the edge where numbers become rows of the history)."""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .._errors import UsageError


class RunKind(enum.StrEnum):
    STRESS = "stress"  # a stress campaign (target "portfolio")
    FUZZ = "fuzz"  # a fuzz target under libFuzzer


@dataclass(frozen=True)
class RunSpec:
    """``run.json``: one run of a night, as the parent planned it and the child runs it."""

    run: int  # its row in the history database
    night: int
    kind: RunKind
    target: str  # "portfolio" for stress, else the fuzz target
    seconds: float
    runs: int | None  # --runs: exactly this many schedules / executions instead of seconds
    jobs: int
    bugs: tuple[str, ...]
    fixes: tuple[str, ...]
    seed: int
    db: str  # the history database, where a stress child commits each finding
    out_dir: str
    corpus: str  # the fuzz target's persistent corpus
    parent: int  # the nightly's pid: the child dies with it
    started: float  # time.time() when the parent started it
    cluster: str | None = None  # a stress run's Dask scheduler (--cluster), or local jobs

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(kind=str(self.kind), bugs=list(self.bugs), fixes=list(self.fixes))
        return d

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    @classmethod
    def from_json(cls, data: Any, source: str) -> RunSpec:
        """Check every field's type; :class:`UsageError` naming ``source`` and the first bad
        field (a ``run.json`` from before ``fixes`` existed has none: no fixes)."""
        if not isinstance(data, dict):
            raise UsageError(f"{source}: not a run spec: the top level is not a JSON object")
        data = {"fixes": [], "cluster": None, **data}
        names = [f.name for f in fields(cls)]
        extra = sorted(set(data) - set(names))
        if extra:
            raise UsageError(f"{source}: unknown field {extra[0]!r} in a run spec")
        for name in names:
            if name not in data:
                raise UsageError(f"{source}: field {name!r} is missing")
            problem = _check(name, data[name])
            if problem:
                raise UsageError(f"{source}: field {name!r} {problem}, got {data[name]!r:.60}")
        return cls(**{**data, "kind": RunKind(data["kind"]), "bugs": tuple(data["bugs"]),
                      "fixes": tuple(data["fixes"]), "seconds": float(data["seconds"]),
                      "started": float(data["started"])})

    @classmethod
    def load(cls, path: str | Path) -> RunSpec:
        """Read ``path``; :class:`UsageError` for a file that is missing, not JSON, or not a
        run spec, never a traceback."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise UsageError(f"{path}: not valid JSON: {exc}") from None
        return cls.from_json(data, str(path))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_CHECKS: dict[str, tuple[str, Any]] = {
    "int": ("must be an integer", _is_int),
    "count": ("must be an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "number": ("must be a number >= 0", lambda v: (_is_int(v) or isinstance(v, float))
               and v >= 0),
    "str": ("must be a string", lambda v: isinstance(v, str)),
    "names": ("must be a list of strings",
              lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "kind": (f"must be one of {', '.join(RunKind)}", lambda v: v in set(RunKind)),
    "runs": ("must be null or an integer >= 1", lambda v: v is None or (_is_int(v) and v >= 1)),
    "address": ("must be null or a string", lambda v: v is None or isinstance(v, str)),
}
_FIELD_CHECK = {"run": "int", "night": "int", "kind": "kind", "target": "str",
                "seconds": "number", "runs": "runs", "jobs": "count", "bugs": "names",
                "fixes": "names", "seed": "int", "db": "str", "out_dir": "str",
                "corpus": "str", "parent": "int", "started": "number",
                "cluster": "address"}


def _check(name: str, value: Any) -> str:
    problem, ok = _CHECKS[_FIELD_CHECK[name]]
    return "" if ok(value) else str(problem)


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object a child wrote (status, result), or {} if it is not there (yet) or not
    one: the parent reads them while the child may be rewriting them."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
