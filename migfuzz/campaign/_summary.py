"""What a campaign found and did: an entry per signature, and the summary (``--json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..findings import FindingRecord, model_commit
from ._messages import Migrations, WorkerError
from ._plan import CampaignConfig, migration_rates


@dataclass
class Entry:
    """What the parent knows about one signature during the campaign."""

    record: FindingRecord
    path: Path
    order: tuple[tuple[int, int, int], int]
    new: bool
    hits: int = 0
    by_strategy: dict[str, int] = field(default_factory=dict)
    dirty: bool = False
    flushed: float = 0.0
    pending: int = 0  # hits counted here and not yet added to the file


@dataclass
class Summary:
    config: CampaignConfig
    runs: int = 0
    decisions: int = 0
    seconds: float = 0.0
    by_strategy: dict[str, int] = field(default_factory=dict)
    findings: list[Entry] = field(default_factory=list)
    interrupted: bool = False
    error: WorkerError | None = None
    warnings: list[str] = field(default_factory=list)
    op_counts: dict[str, int] = field(default_factory=dict)
    migrations: Migrations = field(default_factory=dict)
    move_pages: dict[str, int] = field(default_factory=dict)  # status -> count

    @property
    def rate(self) -> float:
        return self.runs / self.seconds if self.seconds > 0 else 0.0

    @property
    def new_findings(self) -> list[Entry]:
        """The findings no known flaw of V2 explains (``migfuzz.flaws``)."""
        return [e for e in self.findings if e.record.known_flaw is None]

    @property
    def exit_code(self) -> int:
        """3 harness error; 1 a finding no known flaw explains; else 0 (known flaws of V2 as
        posted are reported with their labels, but are not a failure of the run)."""
        if self.error is not None:
            return 3
        return 1 if self.new_findings else 0

    def to_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "tool_version": __version__,
            "model_commit": model_commit(),
            "seed": c.seed, "runs_requested": c.runs, "seconds_requested": c.seconds,
            "strategy": c.strategy, "executor": c.executor, "jobs": c.jobs, "cluster": c.cluster,
            "scenario": c.scenario or "mixed", "bugs": list(c.bugs), "fixes": list(c.fixes),
            "out": c.out,
            "max_steps": c.max_steps,
            "runs": self.runs, "decisions": self.decisions, "seconds": round(self.seconds, 3),
            "schedules_per_second": round(self.rate, 1), "by_strategy": self.by_strategy,
            "op_counts": self.op_counts,
            "migration": migration_rates(self.migrations),
            "move_pages_status": self.move_pages,
            "interrupted": self.interrupted,
            "error": None if self.error is None else self.error.to_json(),
            "warnings": self.warnings,
            "findings": [
                {"signature": e.record.signature, "kind": e.record.kind, "key": e.record.key,
                 "file": str(e.path), "new": e.new, "hits": e.hits,
                 "total_hits": e.record.hits, "by_strategy": e.by_strategy,
                 "tasks": e.record.size()[0], "ops": e.record.size()[1],
                 "decisions": e.record.size()[2], "repro": f"migfuzz repro {e.path}",
                 "known_flaw": (None if e.record.known_flaw is None
                                else e.record.known_flaw.to_json())}
                for e in self.findings
            ],
            "exit_code": self.exit_code,
        }
