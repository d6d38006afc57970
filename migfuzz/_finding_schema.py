"""The schema of a finding file (format ``corpus/README.md``): exact types, bounds, safe names.

Exact types (pydantic strict mode: no "1" for 1, no 1.9, no true for an integer), unknown
keys rejected, and every size bounded (corpus/README.md, "Bounds"). The fields that reach a
file name or a catalog lookup (kind, bugs, fixes, strategy name) are restricted to a safe
alphabet, so no file can name a path outside the directory it is written into.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from target.kernel import FINDING_KINDS

FORMAT = "migfuzz-finding"
FORMAT_VERSION = 1
"""Bumped on any change a reader of the previous version would misread."""

MAX_FILE_BYTES = 4 << 20
"""A finding file is a few kB; anything much larger is not one (and is not read whole)."""

MAX_STEPS = 1_000_000
"""Bound of ``max_steps`` (and ``--max-steps``): 20 x the default step bound."""

SAFE_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""The alphabet of every name that can reach a path: no '/', '.', '..', or NUL."""

_SafeName = Annotated[str, Field(pattern=SAFE_NAME)]
_Text = Annotated[str, Field(max_length=2000)]
_Count = Annotated[int, Field(ge=0, le=MAX_STEPS)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Strategy(_Strict):
    name: _SafeName
    seed: Annotated[int, Field(ge=0, le=2**64)] = 0
    params: Annotated[dict[_SafeName, Annotated[str, Field(max_length=500)] | int | bool],
                      Field(max_length=16)] = {}

    @model_validator(mode="after")
    def _rebuildable(self) -> _Strategy:
        # random, pct, pos, cpct and surw are rebuilt on drift (make_scheduler): their parameters
        # must be exactly what the scheduler takes, within bounds.
        pct = {"depth": (1, 16), "max_steps_hint": (1, MAX_STEPS)}
        allowed: dict[str, dict[str, tuple[int, int]]] = {
            "random": {}, "pct": pct, "pos": {}, "cpct": pct}
        if self.name == "surw":
            return self._surw()
        spec = allowed.get(self.name)
        if spec is None:
            return self
        for k, v in self.params.items():
            if k not in spec:
                raise ValueError(f"{self.name} takes no parameter {k!r}")
            lo, hi = spec[k]
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"{self.name} parameter {k} must be an integer in [{lo}, {hi}]")
        return self

    def _surw(self) -> _Strategy:
        for k, v in self.params.items():
            if k != "estimates":
                raise ValueError(f"surw takes no parameter {k!r}")
            if not isinstance(v, str) or not re.fullmatch(r"[0-9]{1,6}(,[0-9]{1,6})*", v):
                raise ValueError("surw parameter estimates must be comma-separated counts")
        return self


class Finding(_Strict):
    format: Literal["migfuzz-finding"]
    format_version: Annotated[int, Field(ge=1, le=FORMAT_VERSION)]
    tool_version: Annotated[str, Field(max_length=64)]
    model_commit: Annotated[str, Field(max_length=80)]
    key: _Text
    signature: _Text
    kind: Annotated[str, Field(pattern=SAFE_NAME)]
    message: _Text
    function: Annotated[str, Field(max_length=200)]
    task: Annotated[str, Field(max_length=200)]
    step: _Count
    details: dict[str, Any]
    scenario: dict[str, Any]  # Scenario.from_json checks it (stress.workload's schema)
    strategy: _Strategy
    executor: Literal["direct", "trio"]
    schedule_encoding: Literal["stress.schedule", "json-list"]
    schedule: Any  # strategies.decode checks it against schedule_encoding
    decisions: _Count  # required: what tells a truncated or padded schedule
    bugs: Annotated[list[_SafeName], Field(max_length=64)]
    fixes: Annotated[list[_SafeName], Field(max_length=64)] = []  # absent in old files
    known_flaw: dict[str, Any] | None = None  # KnownFlaw.from_json checks it
    max_steps: Annotated[int, Field(ge=1, le=MAX_STEPS)]
    steps: _Count
    trace_hash: Annotated[str, Field(max_length=80)]
    digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{32}$")] | None = None  # (older files)
    first_seen: Annotated[str, Field(max_length=40)]
    last_seen: Annotated[str, Field(max_length=40)]
    hits: Annotated[int, Field(ge=0, le=2**53)]
    origin: dict[str, Any]

    @field_validator("schedule")
    @classmethod
    def _bounded(cls, schedule: Any) -> Any:
        if isinstance(schedule, (str, list)) and len(schedule) > 8 * MAX_STEPS:
            raise ValueError(f"longer than {MAX_STEPS} decisions can be")
        return schedule

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in FINDING_KINDS:
            raise ValueError(f"unknown finding kind {kind!r}")
        return kind


