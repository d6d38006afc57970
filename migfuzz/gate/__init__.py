"""The pre-merge gate: ``migfuzz gate``, a bounded, deterministic verdict on one commit.

    part         what runs                                              fails when
    known        corpus/known/<bug>.json, twice: faithful model          a finding without the
                 (recorded decisions, then no preemption) and with       bug; no detection (or
                 <bug> injected (exact replay)                           another one) with it
    regressions  corpus/regressions/*.json, replayed like ``repro``      any finding: it
                 (exact, continued, re-searched)                         reproduces, or another
    dfs          every trace (schedules up to the order of independent  any finding
                 steps) with <= 2 preemptions of each TINY scenario
                 (DPORScheduler: stress/schedulers/dpor.py)
    stress       the default campaign (portfolio, mixed scenarios,       any finding
                 trio executor, exitfirst) from each seed of GATE_SEEDS
    flaws        corpus/flaws/<fix>.json per upstream fix F: exact       not detected (with one
                 replay with every fix but F's (``without(F)``), and     of F's finding kinds)
                 with every fix (recorded decisions, then no             without F's fix; any
                 preemption)                                             finding with all fixes

The model is V2 as posted, with its real flaws (``target.fixes``); every part but ``flaws``
runs with the upstream fixes applied (all of them unless ``--fix`` / ``--fixes`` says
otherwise), so that a known flaw of 2006 does not hide a new bug, and ``flaws`` checks that
each flaw is still found without its fix and gone with it: the gate passes on the V2 model.

``--bug NAME`` injects catalog bugs into the regressions, dfs and stress parts (the known
reproducers inject their own): a gate that still passes with a bug injected is a gate that
cannot see that bug.

**Deterministic: the budget is converted into work, never compared with the clock.** Every
part is a fixed amount of work for a given commit and arguments: the known and regression
replays are exact, the DPOR search order is fixed, and the stress part runs a fixed number of
runs per seed, computed by :func:`stress_plan` from the budget and the number of executions the
earlier parts made (both deterministic) with the calibration constants below. A campaign run
is a pure function of (seed, run), and a campaign with ``runs`` set runs the same runs for
every ``--jobs``, so the same commit gives the same verdict on any machine, loaded or not,
with any ``--jobs``; only the wall time changes (and, with ``--jobs`` > 1, which of a failing
seed's findings is reported first: its workers race to the first one). A wall-clock budget
was rejected: a slow or busy CI machine would run fewer schedules and could pass a commit that
a fast one fails.

``--budget`` is therefore "the wall time on the reference machine": the stress part gets
``(budget - fixed part) * STRESS_RUNS_PER_SECOND`` runs, split evenly over the seeds. A slower
machine takes longer for the same verdict; a faster one (or more cores) takes less.
"""

from __future__ import annotations

from ._command import DESCRIPTION as DESCRIPTION
from ._command import HELP as HELP
from ._command import configure as configure
from ._command import run as run
from ._gate import run_gate as run_gate
from ._plan import CORPUS as CORPUS
from ._plan import DEFAULT_BUDGET as DEFAULT_BUDGET
from ._plan import DFS_EXECUTOR as DFS_EXECUTOR
from ._plan import DFS_MAX_EXECUTIONS as DFS_MAX_EXECUTIONS
from ._plan import DFS_PREEMPTION_BOUND as DFS_PREEMPTION_BOUND
from ._plan import DPOR_EXECUTIONS_PER_SECOND as DPOR_EXECUTIONS_PER_SECOND
from ._plan import ERROR as ERROR
from ._plan import FAILED as FAILED
from ._plan import FIXED_EXECUTIONS_PER_SECOND as FIXED_EXECUTIONS_PER_SECOND
from ._plan import GATE_SEEDS as GATE_SEEDS
from ._plan import INVALID as INVALID
from ._plan import MIN_RUNS_PER_SEED as MIN_RUNS_PER_SEED
from ._plan import PASSED as PASSED
from ._plan import STRESS_EXECUTOR as STRESS_EXECUTOR
from ._plan import STRESS_RUNS_PER_SECOND as STRESS_RUNS_PER_SECOND
from ._plan import SUITES as SUITES
from ._plan import USER_DFS_MAX_EXECUTIONS as USER_DFS_MAX_EXECUTIONS
from ._plan import Check as Check
from ._plan import CheckStatus as CheckStatus
from ._plan import GateConfig as GateConfig
from ._plan import GateResult as GateResult
from ._plan import fix_flags as fix_flags
from ._plan import stress_plan as stress_plan
from ._report import format_summary as format_summary
from ._report import junit_xml as junit_xml
from ._report import verdicts as verdicts
