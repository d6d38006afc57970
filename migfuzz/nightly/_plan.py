"""The plan of a night: lanes of runs for ``--jobs`` processes, and the timing constants
of the supervisor."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

from ..fuzz import TARGETS as FUZZ_TARGETS
from ._spec import RunKind

ROOT = Path(__file__).resolve().parents[2]  # the project (migfuzz/nightly/_plan.py)

DEFAULT_HOURS = 8.0
MIN_RUN_S = 2.0  # a run shorter than this is not started
FILL_MIN_S = 15.0  # a lane idle with at least this much budget left runs another campaign
GRACE_S = 20.0  # a run still alive this long after the deadline gets SIGINT ...
KILL_AFTER_S = 10.0  # ... and this long after that, SIGKILL
POLL_S = 0.2
HARVEST_EVERY = 0.5
STATUS_EVERY = 2.0
FUZZ_OVERHEAD_S = 3.0  # of a run_fuzz call: libFuzzer start-up and the corpus merge
RESERVED = frozenset({"run.json", "status.json", "result.json"})


# -- the plan ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    kind: RunKind
    target: str  # "portfolio" for stress, else the fuzz target
    seconds: float
    jobs: int = 1
    note: str = ""
    runs: int | None = None  # --runs: exactly this many schedules (stress) or libFuzzer
    # executions (fuzz) instead of ``seconds``


@dataclass
class Lane:
    width: int  # processes it uses
    queue: deque[Item]
    busy: bool = False
    done: bool = False
    failed: bool = False


def plan(jobs: int, seconds: float, runs: int | None = None) -> list[Lane]:
    """Lanes of runs for ``jobs`` processes over ``seconds``, or with ``runs`` the same lanes
    with every run bounded by that many schedules or executions (see the module docstring)."""
    lanes = _lanes(jobs, seconds)
    if runs is not None:
        for lane in lanes:
            lane.queue = deque(replace(i, runs=runs) for i in lane.queue)
    return lanes


def _lanes(jobs: int, seconds: float) -> list[Lane]:
    fuzz = list(FUZZ_TARGETS)
    if jobs <= 1:
        items = [Item(RunKind.STRESS, "portfolio", seconds / 2)]
        items += [Item(RunKind.FUZZ, t, seconds / (2 * len(fuzz))) for t in fuzz]
        return [Lane(1, deque(items))]
    if jobs < 2 * len(fuzz):  # a lane per target would leave the stress portfolio under half
        return [Lane(jobs - 1, deque([Item(RunKind.STRESS, "portfolio", seconds, jobs - 1)])),
                Lane(1, deque(Item(RunKind.FUZZ, t, seconds / len(fuzz)) for t in fuzz))]
    stress = jobs - len(fuzz)
    return [Lane(stress, deque([Item(RunKind.STRESS, "portfolio", seconds, stress)]))] + [
        Lane(1, deque([Item(RunKind.FUZZ, t, seconds)])) for t in fuzz]
