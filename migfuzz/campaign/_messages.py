"""What a campaign's workers tell its parent: four frozen messages, one per thing that happens.

They cross a ``multiprocessing`` queue (pickled) or, with ``--jobs 1``, a function call; a
worker's counters travel whole in every :class:`Progress` (not as increments), so a lost or
late message can only make the parent's totals stale, never wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..findings import FindingRecord

Migrations = dict[str, list[int]]
"""``strategy:<name>`` / ``scenario:<name>`` -> [pages attempted, pages moved] by the runs'
``migrate`` operations (stress.workload.MigrationStats); generated scenarios count as one."""


@dataclass(frozen=True)
class Progress:
    """A worker's counters so far: every ``PROGRESS_EVERY`` seconds, and as its last word
    (``done``) when its share of the runs ends or it is told to stop."""

    worker: int
    runs: int = 0
    decisions: int = 0
    by_strategy: dict[str, int] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)  # operations run, by kind
    migrations: Migrations = field(default_factory=dict)
    move_pages: dict[str, int] = field(default_factory=dict)  # move_pages statuses
    done: bool = False


@dataclass(frozen=True)
class WorkerError:
    """A worker's last word when a run raised something other than a finding (a harness
    error: the campaign stops and reports it with what reproduces it)."""

    progress: Progress
    run: int
    strategy: str
    scenario: str
    error: str
    traceback: str = ""

    def to_json(self) -> dict[str, str | int]:
        return {"run": self.run, "strategy": self.strategy, "scenario": self.scenario,
                "error": self.error, "traceback": self.traceback}


@dataclass(frozen=True)
class Hit:
    """Run ``run`` hit the signature of ``key`` again, not with a smaller reproducer than the
    worker sent before."""

    worker: int
    run: int
    key: str
    strategy: str


@dataclass(frozen=True)
class Found(Hit):
    """Run ``run`` found ``key`` with a smaller reproducer than the worker sent before: the
    record (with the hash of its traced exact replay) for the parent to write."""

    record: FindingRecord


Message = Progress | WorkerError | Found | Hit


def _add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(a.keys() | b.keys())}


def add_progress(a: Progress, b: Progress) -> Progress:
    """The counters of ``a`` and ``b`` together, as worker ``a.worker`` (not done): a cluster
    campaign folds each batch's last word into one total, however many batches it runs."""
    migrations = {k: list(v) for k, v in a.migrations.items()}
    for k, (attempted, moved) in b.migrations.items():
        tally = migrations.setdefault(k, [0, 0])
        tally[0] += attempted
        tally[1] += moved
    return Progress(a.worker, a.runs + b.runs, a.decisions + b.decisions,
                    _add(a.by_strategy, b.by_strategy), _add(a.ops, b.ops), migrations,
                    _add(a.move_pages, b.move_pages))
