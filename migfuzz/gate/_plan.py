"""The gate's fixed plan (its calibration constants and the conversion of the budget into
work) and its results: a check per JUnit test case, with a status."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stress import DEFAULT_MAX_STEPS
from stress.scenarios import TINY
from stress.workload import Scenario
from target.fixes import FIXES

# -- the fixed plan -----------------------------------------------------------------------------

DEFAULT_BUDGET = 120.0
"""Seconds on the reference machine. Measured: 82 s of wall time for the whole default gate
(``migfuzz gate --jobs 2``, 2026-12-01 at 12358f1, the 2-core VM otherwise idle: 143 s of
CPU, 4 seeds x 8,963 stress runs after the exhaustive part's 6,062 DPOR executions); with
``make install`` it fits a 5-minute CI job with room for a runner twice as slow."""

GATE_SEEDS = (1, 2, 3, 4)
"""The stress part's campaign seeds: fixed, so the same commit runs the same schedules. One
JUnit test case each; ``migfuzz stress --seed S --runs R -x`` re-runs one."""

STRESS_RUNS_PER_SECOND = 400
"""Calibration: schedules per second of the default campaign (portfolio, mixed scenarios, trio
executor) on the reference machine, a 2-core Xeon VM running other jobs: measured 440/s for
``migfuzz stress --runs 20000`` with 1 or 2 jobs (the other jobs left one core free), rounded
down. An idle 2-core runner does about twice that with ``--jobs 2``. Changing it changes
which schedules the gate runs: re-measure it when the model's speed changes a lot, in a
commit of its own."""

FIXED_EXECUTIONS_PER_SECOND = 1000
"""Calibration: executions per second of the known, regression and DFS parts (tiny scenarios,
direct executor, one process): measured ~1,450/s, rounded down. Only used to take the
fixed part's share out of the budget (:func:`stress_plan`)."""

DPOR_EXECUTIONS_PER_SECOND = 200
"""Calibration: executions per second of the exhaustive part (DPOR, direct executor, every
page access recorded: target.mm.types.TracedPage) on the TINY scenarios at their bounds on
the reference machine: measured 6,062 executions in 25.8 s of CPU (235/s, bench/dpor.md),
rounded down. A DPOR execution keeps vector clocks and records each page access of each
step, so it costs about four of the other fixed parts' executions (1,000/s)."""

MIN_RUNS_PER_SEED = 25
"""The stress part never shrinks below this, whatever the budget: a gate always stresses."""

DFS_PREEMPTION_BOUND = 2
DFS_MAX_EXECUTIONS = 50_000
"""Per scenario. DPOR on the TINY scenarios at their bounds (``TINY_BOUND``) takes 257 + 877
+ 4,561 + 358 + 9 executions (about 26 s of CPU, bench/dpor.md), below this; DFS takes 899 +
3,551 + 1,258 + 5,330 on four of them and does not finish swapin-vs-reclaim at bound 3 within
it. A cap that is hit is reported in the summary and the JUnit output (the search is then not
exhaustive), never silently."""

USER_DFS_MAX_EXECUTIONS = 2_000
"""The DFS of a user's scenario (``--scenario``): a scenario file may be far larger than the
TINY ones, whose bound-2 space can run to millions of schedules; this cap keeps the gate's
fixed part to a couple of seconds, and a capped search says so (NOT exhaustive)."""

DFS_EXECUTOR = "direct"  # same decisions and trace as trio (tests/test_executors.py), 2x faster
STRESS_EXECUTOR = "trio"  # the campaign default; the gate exercises both executors

SUITES = ("known", "regressions", "dfs", "flaws", "stress")
CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def stress_plan(budget: float, fixed_executions: int,
                seeds: int = len(GATE_SEEDS), dpor_executions: int = 0) -> tuple[int, float]:
    """(runs per seed, seconds reserved for the fixed part): a pure function, never the clock.

    ``dpor_executions`` of the ``fixed_executions`` are the exhaustive part's, charged at
    :data:`DPOR_EXECUTIONS_PER_SECOND`.

    Raises:
        ValueError: a budget that is not a positive number, or no seeds.
    """
    if not budget > 0 or math.isinf(budget):
        raise ValueError(f"budget must be a positive number of seconds, got {budget!r}")
    if seeds < 1:
        raise ValueError("the stress part needs at least one seed")
    reserved = ((fixed_executions - dpor_executions) / FIXED_EXECUTIONS_PER_SECOND
                + dpor_executions / DPOR_EXECUTIONS_PER_SECOND)
    total = int(max(0.0, budget - reserved) * STRESS_RUNS_PER_SECOND)
    return max(MIN_RUNS_PER_SEED, total // seeds), reserved


# -- results ------------------------------------------------------------------------------------

class CheckStatus(enum.StrEnum):
    """How a check ended. ``invalid``: a corpus file that cannot be used (exit 2, like
    ``repro``); ``error``: a harness error, never a finding (exit 3)."""

    PASSED = "passed"
    FAILED = "failed"
    INVALID = "invalid"
    ERROR = "error"


PASSED, FAILED, INVALID, ERROR = CheckStatus


@dataclass
class Check:
    """One JUnit test case: one file in one mode, one DFS scenario, one stress seed."""

    suite: str
    name: str
    status: CheckStatus = PASSED
    message: str = ""  # one line: the signature and the command that reproduces it
    text: str = ""  # the full story (findings, commands, traceback)
    out: list[str] = field(default_factory=list)  # what was done: counts, notes
    properties: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def fail(self, status: CheckStatus, message: str, *text: str) -> None:
        self.status = status
        self.message = message
        self.text = "\n".join((message, *text))


@dataclass(frozen=True)
class GateConfig:
    budget: float = DEFAULT_BUDGET
    bugs: tuple[str, ...] = ()
    fixes: tuple[str, ...] = tuple(sorted(FIXES))  # every part but ``flaws``
    jobs: int = 1
    corpus: Path = CORPUS
    out: str = "findings"
    scenarios: tuple[str, ...] = TINY  # the DFS part
    seeds: tuple[int, ...] = GATE_SEEDS  # the stress part
    max_steps: int = DEFAULT_MAX_STEPS
    # A user's scenario file (``--scenario``): its path, and its scenario as JSON text. The
    # DFS part explores it beside the TINY scenarios and the stress part runs only it.
    scenario_file: str | None = None
    scenario_data: str | None = None

    @property
    def user_scenario(self) -> Scenario | None:
        return None if self.scenario_data is None else Scenario.from_json(
            json.loads(self.scenario_data))


@dataclass
class GateResult:
    config: GateConfig
    checks: list[Check] = field(default_factory=list)
    properties: dict[str, dict[str, str]] = field(default_factory=dict)  # per suite
    notes: dict[str, list[str]] = field(default_factory=dict)  # per suite
    fixed_executions: int = 0
    dpor_executions: int = 0  # of fixed_executions: the exhaustive part's
    runs_per_seed: int = 0
    reserved: float = 0.0
    seconds: float = 0.0

    def count(self, status: CheckStatus, suite: str | None = None) -> int:
        return sum(c.status == status and suite in (None, c.suite) for c in self.checks)

    @property
    def exit_code(self) -> int:
        """3 harness error, else 2 unusable corpus file, else 1 failed check, else 0."""
        for status, code in ((ERROR, 3), (INVALID, 2), (FAILED, 1)):
            if self.count(status):
                return code
        return 0


def fix_flags(fixes: Sequence[str]) -> str:
    """The command-line options that apply ``fixes``."""
    if fixes and set(fixes) == set(FIXES):
        return " --fixes all"
    return "".join(f" --fix {x}" for x in fixes)

