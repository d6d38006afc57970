"""A night's summary: what ran, what was found, the rates compared; its text and JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .. import __version__
from .._term import ProgressState
from ..campaign import migration_rates
from ..history import (
    RATE_MIN_ATTEMPTS,
    RATE_MIN_DROP,
    RATE_Z,
    RateComparison,
    RunRow,
    RunStatus,
)
from ..report import migration_lines
from ._harvest import Harvest
from ._spec import RunKind


@dataclass
class NightSummary:
    night: int
    db: Path
    report: Path | None
    runs: list[RunRow] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    known: int = 0
    flaws: list[str] = field(default_factory=list)  # "signature: label" per known flaw
    recovered: Harvest = field(default_factory=Harvest)
    rejected: list[str] = field(default_factory=list)  # "FILE: why" (Harvest.rejected)
    interrupted: bool = False
    report_error: str | None = None
    migrations: dict[str, tuple[int, int]] = field(default_factory=dict)  # tonight, summed
    rates: list[RateComparison] = field(default_factory=list)  # against the previous night

    @property
    def drops(self) -> list[RateComparison]:
        return [c for c in self.rates if c.dropped]

    @property
    def exit_code(self) -> int:
        """3 harness error or a file that is not a finding (:attr:`rejected`), 1 new
        findings, else 0. A drop of a migration rate is flagged but is not a failure (module
        docstring)."""
        if self.report_error or self.rejected or any(
                r.status == RunStatus.ERROR for r in self.runs):
            return 3
        return 1 if self.new else 0

    def to_json(self) -> dict[str, Any]:
        by: dict[str, int] = {}
        for r in self.runs:
            by[r.status] = by.get(r.status, 0) + 1
        return {
            "tool_version": __version__, "night": self.night, "db": str(self.db),
            "report": None if self.report is None else str(self.report),
            "report_error": self.report_error, "interrupted": self.interrupted,
            "runs": [{"id": r.id, "kind": r.kind, "target": r.target, "seed": r.seed,
                      "status": r.status, "execs": r.execs, "seconds": r.seconds,
                      "findings": r.findings, "hits": r.hits, "note": r.note}
                     for r in self.runs],
            "runs_by_status": dict(sorted(by.items())),
            "new": self.new, "known": self.known, "known_flaws": self.flaws,
            "recovered_files": len(self.recovered.files),
            "rejected": self.rejected,
            "migration": migration_rates({k: list(v) for k, v in self.migrations.items()}),
            "rate_comparisons": [c.to_json() for c in self.rates],
            "rate_drops": [c.to_json() for c in self.drops],
            "exit_code": self.exit_code,
        }


def format_night(s: NightSummary) -> str:
    by: dict[str, int] = {}
    for r in s.runs:
        by[r.status] = by.get(r.status, 0) + 1
    stress = sum(r.execs for r in s.runs if r.kind == RunKind.STRESS)
    fuzz = sum(r.execs for r in s.runs if r.kind == RunKind.FUZZ)
    lines = ["", f"migfuzz nightly: night {s.night}",
             f"  runs       {len(s.runs)} ("
             + ", ".join(f"{v} {k}" for k, v in sorted(by.items())) + ")",
             f"  execs      {stress:,} stress schedules, {fuzz:,} fuzz executions",
             f"  findings   {len(s.new)} new, {s.known} known"
             + (f" ({len(s.flaws)} known flaw(s) of V2 as posted)" if s.flaws else "")
             + (f" ({len(s.recovered.files)} file(s) of a killed night recorded at the "
                "start)" if s.recovered.files else ""),
             f"  history    {s.db}",
             f"  report     {s.report or 'NOT WRITTEN: ' + str(s.report_error)}"]
    lines += [f"  known flaw {f}" for f in s.flaws]
    lines += migration_lines({k: list(v) for k, v in s.migrations.items()}, "migrated  ")
    compared = [c for c in s.rates if c.z is not None]
    if s.rates:
        lines.append(f"  rates      {len(compared)} series compared with the previous night "
                     f"(drop: -{RATE_MIN_DROP:.0%} or more, z <= -{RATE_Z:g}, "
                     f">= {RATE_MIN_ATTEMPTS} pages each night): {len(s.drops)} dropped")
    lines += [f"  RATE DROP  {c.text()}" for c in s.drops]
    if s.rejected:
        lines.append(f"  not findings: {len(s.rejected)} file(s) in the run directories did "
                     "not load or did not reproduce (recorded as invalid, not as findings):")
        lines += [f"    {r}" for r in s.rejected]
    if s.interrupted:
        lines.append("  interrupted: the runs were stopped early; everything found is saved")
    for r in s.runs:
        if r.status == RunStatus.ERROR:
            lines.append(f"  HARNESS ERROR in run {r.id} ({r.kind} {r.target}): {r.note}")
    return "\n".join(lines)


def night_progress(runs: Sequence[RunRow], hits: Sequence[int], *,
                   elapsed: float, seconds: float, planned: int | None) -> ProgressState:
    """What the live display shows of a night so far: its runs' schedules and executions (as
    of their latest status), its findings (``hits``: per key, its hits tonight), and the
    time left of the budget, or with ``--runs`` the runs done of the ``planned`` ones."""
    ended = sum(r.ended is not None for r in runs)
    return ProgressState(
        elapsed, sum(r.execs for r in runs if r.kind == RunKind.STRESS), len(hits), sum(hits),
        done=float(ended) if planned is not None else min(elapsed, seconds),
        total=float(planned) if planned is not None else seconds,
        left=None if planned is not None else max(0.0, seconds - elapsed),
        execs=sum(r.execs for r in runs if r.kind == RunKind.FUZZ))


def print_night_rich(s: NightSummary, console: Console) -> None:
    """The summary on a terminal: the same lines, then the night's runs as a table."""
    console.print(format_night(s), markup=False, highlight=False)
    t = Table(title="runs", title_justify="left")
    for col in ("run", "kind", "target", "execs", "exec/s", "findings", "hits", "status"):
        t.add_column(col, justify="right" if col in ("run", "execs", "exec/s", "findings",
                                                      "hits") else "left")
    for r in s.runs:
        t.add_row(str(r.id), r.kind, r.target, f"{r.execs:,}",
                  "" if r.exec_per_s is None else f"{r.exec_per_s:,.1f}", str(r.findings),
                  f"{r.hits:,}", r.status)
    console.print(t)
