"""The pre-merge gate: ``migfuzz gate``, a bounded, deterministic verdict on one commit.

    part         what runs                                              fails when
    known        corpus/known/<bug>.json, twice: faithful model          a finding without the
                 (recorded decisions, then no preemption) and with       bug; no detection (or
                 <bug> injected (exact replay)                           another one) with it
    regressions  corpus/regressions/*.json, replayed like ``repro``      any finding: it
                 (exact, continued, re-searched)                         reproduces, or another
    dfs          every schedule with <= 2 preemptions of each            any finding
                 stress.scenarios.TINY scenario (DFSScheduler)
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
replays are exact, DFS order is fixed, and the stress part runs a fixed number of runs per
seed, computed by :func:`stress_plan` from the budget and the number of executions the
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

import argparse
import dataclasses
import json
import math
import sys
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from stress import DEFAULT_MAX_STEPS, Outcome
from stress.run import run_scenario
from stress.scenarios import TINY, TINY_BOUND, canonical
from stress.schedulers import DFSScheduler
from stress.workload import Scenario, load_scenario_file
from target.fixes import FIXES, UpstreamFix, without

from . import __version__
from ._args import add_fix_arguments, fixes_of
from ._errors import FindingFileError, UsageError
from .bugs import catalog, check_bugs, check_fixes, injected
from .campaign import Campaign, CampaignConfig, HarnessError, caused_by_ctrl_c, default_jobs
from .findings import FindingRecord, FindingStore, load, model_commit, now, write_atomic
from .refresh import refind, replay_drift
from .replay import ContinueScheduler, check, replay_schedule, run_traced, trace_hash
from .report import fixes_text, repro_commands
from .strategies import BASE_STRATEGIES, StrategySpec

# -- the fixed plan -----------------------------------------------------------------------------

DEFAULT_BUDGET = 120.0
"""Seconds on the reference machine. Measured: 109 s of wall time for the whole default gate
(2 jobs, on 2 cores shared with other jobs: 109 s of CPU); with ``make install`` it fits a
5-minute CI job with room for a runner twice as slow."""

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

MIN_RUNS_PER_SEED = 25
"""The stress part never shrinks below this, whatever the budget: a gate always stresses."""

DFS_PREEMPTION_BOUND = 2
DFS_MAX_EXECUTIONS = 50_000
"""Per scenario. Bound 2 on the TINY scenarios takes 899 + 3,551 + 1,996 + 1,050 executions,
and migrate-vs-writeback 210 at its bound 1 (``TINY_BOUND``; ~8 s in all), far below this; a
cap that is hit is reported in the summary and the JUnit output (the search is then not
exhaustive), never silently."""

USER_DFS_MAX_EXECUTIONS = 2_000
"""The DFS of a user's scenario (``--scenario``): a scenario file may be far larger than the
TINY ones, whose bound-2 space can run to millions of schedules; this cap keeps the gate's
fixed part to a couple of seconds, and a capped search says so (NOT exhaustive)."""

DFS_EXECUTOR = "direct"  # same decisions and trace as trio (tests/test_executors.py), 2x faster
STRESS_EXECUTOR = "trio"  # the campaign default; the gate exercises both executors

SUITES = ("known", "regressions", "dfs", "flaws", "stress")
CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def stress_plan(budget: float, fixed_executions: int,
                seeds: int = len(GATE_SEEDS)) -> tuple[int, float]:
    """(runs per seed, seconds reserved for the fixed part): a pure function, never the clock.

    Raises:
        ValueError: a budget that is not a positive number, or no seeds.
    """
    if not budget > 0 or math.isinf(budget):
        raise ValueError(f"budget must be a positive number of seconds, got {budget!r}")
    if seeds < 1:
        raise ValueError("the stress part needs at least one seed")
    reserved = fixed_executions / FIXED_EXECUTIONS_PER_SECOND
    total = int(max(0.0, budget - reserved) * STRESS_RUNS_PER_SECOND)
    return max(MIN_RUNS_PER_SEED, total // seeds), reserved


# -- results ------------------------------------------------------------------------------------

PASSED, FAILED, INVALID, ERROR = "passed", "failed", "invalid", "error"
"""Check statuses. ``invalid``: a corpus file that cannot be used (exit 2, like ``repro``);
``error``: a harness error, never a finding (exit 3)."""


@dataclass
class Check:
    """One JUnit test case: one file in one mode, one DFS scenario, one stress seed."""

    suite: str
    name: str
    status: str = PASSED
    message: str = ""  # one line: the signature and the command that reproduces it
    text: str = ""  # the full story (findings, commands, traceback)
    out: list[str] = field(default_factory=list)  # what was done: counts, notes
    properties: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def fail(self, status: str, message: str, *text: str) -> None:
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
    runs_per_seed: int = 0
    reserved: float = 0.0
    seconds: float = 0.0

    def count(self, status: str, suite: str | None = None) -> int:
        return sum(c.status == status and suite in (None, c.suite) for c in self.checks)

    @property
    def exit_code(self) -> int:
        """3 harness error, else 2 unusable corpus file, else 1 failed check, else 0."""
        for status, code in ((ERROR, 3), (INVALID, 2), (FAILED, 1)):
            if self.count(status):
                return code
        return 0


# -- running ------------------------------------------------------------------------------------


class _Gate:
    def __init__(self, cfg: GateConfig, progress: TextIO | None) -> None:
        self.cfg = cfg
        self.progress = progress
        self.result = GateResult(cfg)
        self.store = FindingStore(cfg.out)
        self.bug_flags = "".join(f" --bug {b}" for b in cfg.bugs) + fix_flags(cfg.fixes)

    def log(self, line: str) -> None:
        if self.progress is not None:
            self.progress.write(f"gate: {line}\n")
            self.progress.flush()

    @contextmanager
    def check(self, suite: str, name: str) -> Iterator[Check]:
        """A check that turns an exception into a harness error (Ctrl-C stays Ctrl-C)."""
        c = Check(suite, name)
        self.result.checks.append(c)
        t = time.monotonic()
        try:
            yield c
        except FindingFileError as exc:
            c.fail(INVALID, str(exc))
        except Exception as exc:
            if caused_by_ctrl_c(exc):
                raise KeyboardInterrupt from exc
            c.fail(ERROR, f"harness error (not a finding): {type(exc).__name__}: {exc}",
                   traceback.format_exc())
        finally:
            c.seconds = time.monotonic() - t
        if c.status != PASSED:
            self.log(f"{suite} {name}: {c.status.upper()}: {c.message}")

    def run(self) -> GateResult:
        t = time.monotonic()
        self.known()
        self.regressions()
        self.dfs()
        self.flaws()
        self.stress()
        self.result.seconds = time.monotonic() - t
        return self.result

    # -- saving what was found -------------------------------------------------------------

    def save(self, scenario: Scenario, outcome: Outcome, *, bugs: Sequence[str], executor: str,
             spec: StrategySpec, origin: dict[str, Any],
             fixes: Sequence[str] | None = None) -> tuple[str, Path]:
        """Write the finding of ``outcome`` as a finding file; (signature, path).

        The caller has injected ``bugs`` and ``fixes`` (default: the gate's). The file's trace
        hash comes from a traced exact replay of the outcome's decisions, which must show the
        same signature (else the file would be useless: HarnessError).
        """
        assert outcome.finding is not None
        rep = replay_schedule(scenario, outcome.schedule, executor=executor,
                              max_steps=self.cfg.max_steps)
        o = rep.outcome
        if o is None or o.finding is None or o.finding.signature != outcome.finding.signature:
            raise HarnessError(f"the exact replay of {outcome.finding.signature} does not "
                               f"reproduce it ({rep.divergence or 'different outcome'})")
        f, stamp = o.finding, now()
        rec = FindingRecord(
            signature=f.signature, kind=f.kind, message=f.message, function=f.function,
            task=f.task, step=f.step, details=f.details, scenario=scenario, strategy=spec,
            executor=executor, schedule=list(outcome.schedule), bugs=sorted(bugs),
            fixes=sorted(self.cfg.fixes if fixes is None else fixes),
            max_steps=self.cfg.max_steps, steps=o.steps, trace_hash=trace_hash(o),
            first_seen=stamp, last_seen=stamp, tool_version=__version__,
            model_commit=model_commit(), origin={"gate": origin},
        )
        merged, _ = self.store.merge(self.store.existing(rec), rec)
        return f.signature, self.store.save(merged)

    # -- known-bug reproducers -------------------------------------------------------------

    def known(self) -> None:
        d = self.cfg.corpus / "known"
        files = sorted(d.glob("*.json"))
        self.result.notes["known"] = [] if files else [f"no reproducers in {d}"]
        cat = catalog()
        for path in files:
            record: FindingRecord | None = None
            problem = ""
            try:
                record = load(path)
                if path.stem not in cat:
                    raise FindingFileError(str(path), f"{path.stem!r} is not a catalog bug "
                                           f"(known: {', '.join(sorted(cat))})")
                if record.bugs != [path.stem]:
                    raise FindingFileError(str(path), f"records bugs {record.bugs}, "
                                           f"not [{path.stem!r}]")
            except FindingFileError as exc:
                record, problem = None, str(exc)
            for mode in ("faithful", "injected"):
                with self.check("known", f"{path.stem}[{mode}]") as c:
                    if record is None:
                        c.fail(INVALID, problem)
                    elif mode == "faithful":
                        self.known_faithful(c, path, record)
                    else:
                        self.known_injected(c, path, record, cat[path.stem].expected_kinds)

    def known_faithful(self, c: Check, path: Path, rec: FindingRecord) -> None:
        """Clean without the bug: the recorded decisions while they apply, then no preemption
        (the faithful model may need a different number of decisions)."""
        with injected([], self.cfg.fixes):
            out = run_traced(rec.scenario, ContinueScheduler(rec.schedule),
                             executor=rec.executor, max_steps=rec.max_steps)
            self.result.fixed_executions += 1
            c.out.append(f"{path}: {len(rec.schedule)} recorded decisions, then no preemption, "
                         f"on the faithful model{self.fixes_note()}: {out.steps} steps, "
                         f"{'clean' if out.finding is None else out.finding.signature}")
            if out.finding is None:
                return
            sig, saved = self.save(rec.scenario, out, bugs=[], executor=rec.executor,
                                   spec=StrategySpec("continue", 0, {"from": str(path)}),
                                   origin={"part": "known", "file": str(path)})
            c.fail(FAILED, f"{sig} on the faithful model: {repro_commands(str(saved))[0]}",
                   f"{path} must be clean without its bug; the faithful model finds {sig}.",
                   *_reproduce(saved))

    def known_injected(self, c: Check, path: Path, rec: FindingRecord,
                       kinds: Sequence[str]) -> None:
        """Detected with the bug: the exact replay shows the recorded signature, or, when the
        model drifted under the saved schedule, a deterministic re-search finds the bug again
        (a pass with a warning and the refreshed file: a harmless refactor must not block a
        merge). Fails only when the bug cannot be re-found."""
        drift = replay_drift(rec, kinds, self.cfg.fixes)
        self.result.fixed_executions += 1
        cmd = repro_commands(str(path))[0]
        c.out.append(f"{path}: exact replay of {len(rec.schedule)} decisions with "
                     f"{', '.join(rec.bugs)}: {drift or rec.signature}")
        if drift is None:
            return
        fresh = refind(rec, str(path), self.cfg.fixes)
        if fresh is not None:
            self.pass_refreshed(c, "known", path, drift, fresh,
                                f" (or run: migfuzz repro --refresh {path})")
            return
        if drift.startswith("diverges"):
            c.fail(FAILED, f"{rec.signature} no longer replays ({drift}) and the re-search "
                   f"does not find {rec.bugs[0]}: {cmd}",
                   "The model changed under the reproducer and the bug is no longer found "
                   "by DFS of its scenario nor by its strategy on the catalog scenario.")
        elif drift == "ends cleanly":
            c.fail(FAILED, f"{rec.signature} not detected with {rec.bugs[0]} injected: {cmd}",
                   "The exact replay ends cleanly and the re-search does not find the bug: "
                   "the bug's override or an oracle changed.")
        else:
            c.fail(FAILED, f"{drift}, expected {rec.signature} (kinds "
                   f"{', '.join(kinds)}): {cmd}")

    def pass_refreshed(self, c: Check, suite: str, path: Path, drift: str,
                       fresh: FindingRecord, hint: str = "") -> None:
        """A drifted reproducer re-found: the check passes with a warning, and the refreshed
        file goes to ``<out>/refreshed`` (known) or ``<out>/refreshed-flaws`` (flaws)."""
        sub = "refreshed" if suite == "known" else "refreshed-flaws"
        out = Path(self.cfg.out) / sub / path.name
        write_atomic(out, fresh.dumps())
        c.properties.update(drift="re-found", refreshed=str(out))
        warning = (f"drift, re-found: {path.stem} {drift}; re-found as {fresh.signature} "
                   f"by {fresh.strategy.describe()}; refreshed file {out}{hint}")
        c.out.append(f"warning: {warning}")
        self.result.notes.setdefault(suite, []).append(warning)
        self.log(f"{suite} {c.name}: {warning}")

    # -- regressions -----------------------------------------------------------------------

    def regressions(self) -> None:
        d = self.cfg.corpus / "regressions"
        files = sorted(d.glob("*.json"))
        self.result.notes["regressions"] = [] if files else [f"no regression entries in {d}"]
        for path in files:
            with self.check("regressions", path.name) as c:
                self.regression(c, path, load(path))

    def regression(self, c: Check, path: Path, rec: FindingRecord) -> None:
        """Must not reproduce, nor show any other finding, on the (bug-injected) model."""
        if rec.bugs:
            raise FindingFileError(str(path), f"records bugs {rec.bugs}: a regression entry is "
                                   "a finding of the faithful model (bug reproducers belong "
                                   "in corpus/known/)")
        with injected(self.cfg.bugs, self.cfg.fixes):
            v = check(rec)
            runs = [("exact replay", v.first.outcome), ("continued run", v.continued),
                    ("re-search", v.research)]
            self.result.fixed_executions += 2 + sum(o is not None for _, o in runs[1:])
            c.out.append(f"{path}: {rec.signature}: {v.status}")
            c.out += v.notes
            if not v.deterministic:
                raise HarnessError("; ".join(n for n in v.notes if "NON-DETERMINISM" in n))
            found = next(((how, o) for how, o in runs if o is not None and o.finding), None)
            if found is None:
                return
            how, o = found
            assert o.finding is not None
            sig, saved = self.save(rec.scenario, o, bugs=self.cfg.bugs, executor=v.executor,
                                   spec=StrategySpec("regression", 0, {"from": str(path)}),
                                   origin={"part": "regressions", "file": str(path)})
        what = ("still reproduces" if v.reproduced else f"the {how} ends with another finding")
        c.fail(FAILED, f"{sig}: {what}: {repro_commands(str(saved))[0]}",
               f"regression {path} ({rec.signature}), {how}{self.bugs_note()}.",
               *v.notes, *_reproduce(saved))

    # -- DFS -------------------------------------------------------------------------------

    def dfs(self) -> None:
        self.result.properties["dfs"] = {
            "preemption_bound": str(DFS_PREEMPTION_BOUND),
            "max_executions": str(DFS_MAX_EXECUTIONS), "executor": DFS_EXECUTOR,
            "bugs": ",".join(self.cfg.bugs), "fixes": ",".join(self.cfg.fixes),
        }
        for name in self.cfg.scenarios:
            with self.check("dfs", name) as c:
                self.dfs_one(c, name, canonical(name), DFS_MAX_EXECUTIONS,
                             TINY_BOUND.get(name, DFS_PREEMPTION_BOUND))
        user = self.cfg.user_scenario
        if user is not None:
            self.result.properties["dfs"]["user_max_executions"] = str(USER_DFS_MAX_EXECUTIONS)
            with self.check("dfs", f"scenario:{user.name}") as c:
                self.dfs_one(c, user.name, user, USER_DFS_MAX_EXECUTIONS)

    def dfs_one(self, c: Check, name: str, scenario: Scenario, cap: int,
                bound: int = DFS_PREEMPTION_BOUND) -> None:
        sched = DFSScheduler(bound, max_executions=cap)
        n = 0
        out: Outcome | None = None
        with injected(self.cfg.bugs, self.cfg.fixes):
            while sched.new_execution():
                n += 1
                out = run_scenario(scenario, sched, executor=DFS_EXECUTOR,
                                   max_steps=self.cfg.max_steps)
                if out.finding is not None:
                    break
            self.result.fixed_executions += n
            found = None if out is None else out.finding
            capped = found is None and not sched.exhausted
            c.properties.update(schedules=str(n), exhausted=str(sched.exhausted).lower(),
                                capped=str(capped).lower())
            how = ("exhausted" if sched.exhausted else
                   f"CAPPED at max_executions={cap}: the bound-"
                   f"{bound} search is NOT exhaustive" if capped else
                   "stopped at the first finding")
            c.out.append(f"{n:,} schedule{'s' if n != 1 else ''} explored (preemption bound "
                         f"{bound}, {how}){self.bugs_note()}")
            self.log(f"dfs {name}: {c.out[-1]}")
            if out is None or found is None:
                return
            sig, saved = self.save(
                scenario, out, bugs=self.cfg.bugs, executor=DFS_EXECUTOR,
                spec=StrategySpec("dfs", 0, {"preemption_bound": bound,
                                             "execution": n}),
                origin={"part": "dfs", "scenario": name, "execution": n})
        c.fail(FAILED, f"{sig}: {repro_commands(str(saved))[0]}",
               f"DFS execution {n} of {name}{self.bugs_note()} finds {sig}.",
               *_reproduce(saved))

    # -- stress ----------------------------------------------------------------------------

    def stress(self) -> None:
        cfg, r = self.cfg, self.result
        r.runs_per_seed, r.reserved = stress_plan(cfg.budget, r.fixed_executions,
                                                  len(cfg.seeds))
        members = BASE_STRATEGIES
        r.properties["stress"] = {
            "budget_seconds": f"{cfg.budget:g}",
            "fixed_executions": str(r.fixed_executions),
            "fixed_seconds_reserved": f"{r.reserved:.3f}",
            "runs_per_second_calibration": str(STRESS_RUNS_PER_SECOND),
            "runs_per_seed": str(r.runs_per_seed),
            "seeds": ",".join(map(str, cfg.seeds)),
            "strategy": f"portfolio({','.join(members)})",
            "scenarios": cfg.scenario_file or "mixed",
            "executor": STRESS_EXECUTOR, "jobs": str(cfg.jobs), "bugs": ",".join(cfg.bugs),
            "fixes": ",".join(cfg.fixes),
        }
        self.log(f"stress: {len(cfg.seeds)} seeds x {r.runs_per_seed:,} runs "
                 f"(fixed by the budget, not by the clock), {cfg.jobs} job(s)")
        for seed in cfg.seeds:
            self.log(f"stress seed-{seed}: {r.runs_per_seed:,} runs")
            with self.check("stress", f"seed-{seed}") as c:
                self.stress_one(c, seed, members)

    def stress_one(self, c: Check, seed: int, members: tuple[str, ...]) -> None:
        cfg, runs = self.cfg, self.result.runs_per_seed
        user = cfg.user_scenario
        s = Campaign(CampaignConfig(
            seed=seed, runs=runs, strategy="portfolio", executor=STRESS_EXECUTOR,
            jobs=cfg.jobs, bugs=cfg.bugs, fixes=cfg.fixes, out=cfg.out,
            scenario=None if user is None else user.name,
            scenario_data=cfg.scenario_data, max_steps=cfg.max_steps,
            exitfirst=True, members=members), progress=self.progress).run()
        if s.interrupted:
            raise KeyboardInterrupt
        where = f" --scenario {cfg.scenario_file}" if cfg.scenario_file else ""
        rerun = f"migfuzz stress --seed {seed} --runs {runs} -x{where}{self.bug_flags}"
        c.properties.update(runs=str(s.runs), runs_planned=str(runs))
        c.out.append(f"{s.runs:,} of {runs:,} runs (seed {seed}){self.bugs_note()}, "
                     f"{s.decisions:,} decisions, {len(s.findings)} finding(s)")
        c.out += [f"warning: {w}" for w in s.warnings]
        if s.error is not None:
            e = s.error
            c.fail(ERROR, f"harness error (not a finding) in run {e['run']} "
                   f"({e['strategy']}, {e['scenario']}): {e['error']}", f"rerun: {rerun}",
                   str(e.get("traceback", "")))
            return
        if s.findings:
            first = s.findings[0]
            lines = [f"{e.record.signature} (run {e.record.origin.get('run')}): "
                     f"{repro_commands(str(e.path))[0]}" for e in s.findings]
            c.fail(FAILED, f"{first.record.signature}: {repro_commands(str(first.path))[0]}",
                   *lines[1:], f"stopped at the first finding; rerun the seed: {rerun}",
                   *_reproduce(first.path))

    # -- known flaws of V2 as posted -------------------------------------------------------

    def flaws(self) -> None:
        d = self.cfg.corpus / "flaws"
        files = {p.stem: p for p in sorted(d.glob("*.json"))}
        self.result.notes["flaws"] = [
            f"{p}: not the reproducer of an upstream fix (known: {', '.join(FIXES)})"
            for name, p in files.items() if name not in FIXES]
        for name, fix in FIXES.items():
            path = d / f"{name}.json"
            record: FindingRecord | None = None
            try:
                if not path.exists():
                    raise FindingFileError(
                        str(path), f"no reproducer of the flaw {name}: make one with migfuzz "
                        f"stress --scenario {fix.scenario}{fix_flags(without(name))} -x, then "
                        "migfuzz minimize (corpus/README.md)")
                record = load(path)
                problem = ""
            except FindingFileError as exc:
                problem = str(exc)
            for mode in ("without-fix", "fixed"):
                with self.check("flaws", f"{name}[{mode}]") as c:
                    if record is None:
                        c.fail(INVALID, problem)
                    elif mode == "without-fix":
                        self.flaw_detected(c, path, record, fix)
                    else:
                        self.flaw_fixed(c, path, record, fix)

    def flaw_detected(self, c: Check, path: Path, rec: FindingRecord, fix: UpstreamFix) -> None:
        """Detected with every fix but F's: the exact replay shows one of F's kinds."""
        others = without(fix.name)
        with injected(rec.bugs, others):
            rep = replay_schedule(rec.scenario, rec.schedule, executor=rec.executor,
                                  max_steps=rec.max_steps)
        self.result.fixed_executions += 1
        f = None if rep.outcome is None else rep.outcome.finding
        c.out.append(f"{path}: exact replay of {len(rec.schedule)} decisions with every fix "
                     f"but {fix.name}: {rep.signature or rep.divergence or 'clean'}")
        redo = (f"re-find and re-minimize it: migfuzz stress --scenario {fix.scenario}"
                f"{fix_flags(others)} -x, then migfuzz minimize")
        cmd = f"migfuzz repro {path}"
        if rep.divergence is not None:
            # Drift (a harmless refactor moves the saved decisions): re-find the flaw as the
            # known part re-finds a bug, with the same fixes, and pass with a warning.
            fresh = refind(rec, str(path), others, scenario_name=fix.scenario,
                           strategy="random")
            if fresh is not None and fresh.kind in fix.finding_kinds:
                self.pass_refreshed(c, "flaws", path, f"diverges ({rep.divergence})", fresh)
                return
            c.fail(FAILED, f"{fix.name}: the reproducer no longer replays ({rep.divergence}) "
                   f"and the re-search does not find the flaw: {cmd}",
                   f"The model changed under the reproducer (drift): {redo}.")
        elif f is None:
            c.fail(FAILED, f"{fix.name}: the flaw is not detected without its fix: {cmd}",
                   "The exact replay ends cleanly: the model no longer has the flaw of V2 as "
                   "posted, or an oracle stopped seeing it.")
        elif f.kind not in fix.finding_kinds:
            c.fail(FAILED, f"{fix.name}: detected as {f.signature}, expected one of "
                   f"{', '.join(fix.finding_kinds)}: {cmd}")

    def flaw_fixed(self, c: Check, path: Path, rec: FindingRecord, fix: UpstreamFix) -> None:
        """Clean with every fix: the recorded decisions while they apply, then no preemption
        (the fix may change the number of decisions the run needs)."""
        every = sorted(FIXES)
        with injected(rec.bugs, every):
            out = run_traced(rec.scenario, ContinueScheduler(rec.schedule),
                             executor=rec.executor, max_steps=rec.max_steps)
            self.result.fixed_executions += 1
            c.out.append(f"{path}: {len(rec.schedule)} recorded decisions, then no preemption, "
                         f"with every fix: {out.steps} steps, "
                         f"{'clean' if out.finding is None else out.finding.signature}")
            if out.finding is None:
                return
            sig, saved = self.save(rec.scenario, out, bugs=rec.bugs, executor=rec.executor,
                                   spec=StrategySpec("continue", 0, {"from": str(path)}),
                                   origin={"part": "flaws", "file": str(path)}, fixes=every)
        c.fail(FAILED, f"{sig} with every fix applied: {repro_commands(str(saved))[0]}",
               f"{path} must be clean with {fix.name}'s fix (and every other); the fixed "
               f"model finds {sig}: the fix is broken, or another flaw shows.",
               *_reproduce(saved))

    def bugs_note(self) -> str:
        return f", bugs injected: {', '.join(self.cfg.bugs)}" if self.cfg.bugs else ""

    def fixes_note(self) -> str:
        return f" (fixes: {fixes_text(self.cfg.fixes)})"


def fix_flags(fixes: Sequence[str]) -> str:
    """The command-line options that apply ``fixes``."""
    if fixes and set(fixes) == set(FIXES):
        return " --fixes all"
    return "".join(f" --fix {x}" for x in fixes)


def _reproduce(path: Path) -> list[str]:
    return ["reproduce:", *(f"  {cmd}" for cmd in repro_commands(str(path)))]


def run_gate(cfg: GateConfig, progress: TextIO | None = None) -> GateResult:
    """Run every part of the gate; the result says what passed and what did not.

    Raises:
        UsageError: an unknown bug, a corpus directory that does not exist, a bad budget.
    """
    bugs = tuple(check_bugs(cfg.bugs))
    fixes = tuple(check_fixes(cfg.fixes))
    if not cfg.corpus.is_dir():
        raise UsageError(f"--corpus {cfg.corpus}: no such directory")
    try:
        stress_plan(cfg.budget, 0, len(cfg.seeds))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return _Gate(dataclasses.replace(cfg, bugs=bugs, fixes=fixes), progress).run()


# -- reports ------------------------------------------------------------------------------------


def _xml_text(s: str) -> str:
    """XML 1.0 cannot hold most control characters, even escaped (a traceback might)."""
    return "".join(ch if ch in "\t\n\r" or ord(ch) >= 0x20 else f"\\x{ord(ch):02x}" for ch in s)


def junit_xml(r: GateResult) -> str:
    """One testsuite per part, one testcase per check; failures name signature and command."""
    root = ET.Element("testsuites", name="migfuzz gate", tests=str(len(r.checks)),
                      failures=str(r.count(FAILED)),
                      errors=str(r.count(ERROR) + r.count(INVALID)), time=f"{r.seconds:.3f}")
    for suite in SUITES:
        checks = [c for c in r.checks if c.suite == suite]
        ts = ET.SubElement(root, "testsuite", name=f"migfuzz.gate.{suite}",
                           tests=str(len(checks)), failures=str(r.count(FAILED, suite)),
                           errors=str(r.count(ERROR, suite) + r.count(INVALID, suite)),
                           skipped="0", time=f"{sum(c.seconds for c in checks):.3f}")
        props = r.properties.get(suite, {})
        if props:
            pe = ET.SubElement(ts, "properties")
            for k, v in props.items():
                ET.SubElement(pe, "property", name=k, value=_xml_text(v))
        for c in checks:
            tc = ET.SubElement(ts, "testcase", classname=f"migfuzz.gate.{suite}", name=c.name,
                               time=f"{c.seconds:.3f}")
            if c.properties:
                pe = ET.SubElement(tc, "properties")
                for k, v in c.properties.items():
                    ET.SubElement(pe, "property", name=k, value=_xml_text(v))
            if c.status != PASSED:
                tag = "failure" if c.status == FAILED else "error"
                kind = {FAILED: "finding", INVALID: "invalid-input", ERROR: "harness-error"}
                el = ET.SubElement(tc, tag, message=_xml_text(c.message), type=kind[c.status])
                el.text = _xml_text(c.text)
            if c.out:
                ET.SubElement(tc, "system-out").text = _xml_text("\n".join(c.out))
        notes = r.notes.get(suite, [])
        if notes:
            ET.SubElement(ts, "system-out").text = _xml_text("\n".join(notes))
    ET.indent(root)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(root, encoding="unicode") + "\n")


def verdicts(xml_text: str) -> list[tuple[str, str, str]]:
    """(classname, name, passed|failure|error|skipped) per testcase: what must not vary
    between two gates of one commit (timings and messages may)."""
    out = []
    for tc in ET.fromstring(xml_text).iter("testcase"):
        status = next((t for t in ("failure", "error", "skipped") if tc.find(t) is not None),
                      "passed")
        out.append((tc.get("classname", ""), tc.get("name", ""), status))
    return out


def format_summary(r: GateResult, junit: str | None = None) -> str:
    cfg = r.config
    by = {s: [c for c in r.checks if c.suite == s] for s in SUITES}

    def tally(suite: str) -> str:
        cs = by[suite]
        bad = len(cs) - r.count(PASSED, suite)
        return f"{len(cs)} check{'s' if len(cs) != 1 else ''}, " + (
            f"{bad} NOT PASSED" if bad else "all passed")

    injected_into = " (into the regressions, dfs and stress parts)" if cfg.bugs else ""
    lines = ["", "migfuzz gate summary",
             f"  bugs injected  {', '.join(cfg.bugs) or 'none'}{injected_into}",
             f"  fixes          {fixes_text(cfg.fixes)} (every part but flaws)",
             f"  known          {tally('known')} (each reproducer without and with its bug)"]
    lines += [f"                 {n}" for n in r.notes.get("known", [])]
    lines.append(f"  regressions    {tally('regressions')}")
    lines += [f"                 {n}" for n in r.notes.get("regressions", [])]
    drifted = [c.name for c in by["regressions"] if any("DRIFT" in o for o in c.out)]
    if drifted:
        lines.append(f"                 DRIFT (recorded schedule no longer applies; refresh "
                     f"the entry): {', '.join(drifted)}")
    lines.append(f"  dfs            {tally('dfs')}, preemption bound {DFS_PREEMPTION_BOUND}, "
                 f"executor {DFS_EXECUTOR}")
    for c in by["dfs"]:
        lines.append(f"                 {c.name}: {c.out[0] if c.out else c.message}")
    lines.append(f"  flaws          {tally('flaws')} (each known flaw of V2 detected without "
                 "its upstream fix, gone with every fix)")
    lines += [f"                 {n}" for n in r.notes.get("flaws", [])]
    total = sum(int(c.properties.get("runs", "0")) for c in by["stress"])
    lines.append(f"  stress         {tally('stress')}: {len(cfg.seeds)} seeds x "
                 f"{r.runs_per_seed:,} runs planned, {total:,} run ({cfg.jobs} job(s), "
                 f"executor {STRESS_EXECUTOR}, stop at a seed's first finding)")
    if cfg.scenario_file:
        lines.append(f"                 every run runs the scenario file {cfg.scenario_file}, "
                     "under every strategy of the portfolio")
    fixed = f"{r.reserved:.1f} s for the {r.fixed_executions:,} executions before it"
    lines.append(
        f"                 runs fixed by the budget, not the clock: ({cfg.budget:g} s - {fixed})"
        f" x {STRESS_RUNS_PER_SECOND} runs/s, split over the seeds" if r.reserved < cfg.budget
        else f"                 the budget ({cfg.budget:g} s) is below the fixed part ({fixed}):"
        f" the minimum of {MIN_RUNS_PER_SEED} runs per seed")
    bad = [c for c in r.checks if c.status != PASSED]
    if bad:
        lines += ["", "not passed:"]
        for c in bad:
            lines.append(f"  {c.status.upper():7} {c.suite}/{c.name}: {c.message}")
    verdict = {0: "PASS", 1: "FAIL (findings)", 2: "FAIL (unusable corpus file)",
               3: "FAIL (harness error)"}[r.exit_code]
    lines += ["", f"result: {verdict}: {len(r.checks)} checks, {r.count(PASSED)} passed, in "
              f"{r.seconds:.1f} s" + (f"; JUnit: {junit}" if junit else "")]
    return "\n".join(lines)


# -- the command --------------------------------------------------------------------------------


def configure_parser(p: argparse.ArgumentParser, *, seconds: Callable[[str], float],
                     count: Callable[[str], int]) -> None:
    """The ``gate`` options; ``seconds``/``count`` are the CLI's validating types."""
    p.add_argument("--budget", type=seconds, default=DEFAULT_BUDGET, metavar="SECONDS",
                   help=f"size of the gate as wall time on the reference machine (default "
                        f"{DEFAULT_BUDGET:g}); converted into a fixed number of stress runs "
                        f"({STRESS_RUNS_PER_SECOND}/s), never compared with the clock, so the "
                        "verdict does not depend on the machine or --jobs")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report (atomically)")
    p.add_argument("--bug", action="append", default=[], metavar="NAME",
                   help="inject a catalog bug into the regression, dfs and stress parts "
                        "(repeatable): the gate must then fail")
    add_fix_arguments(p, default="all")
    p.add_argument("--jobs", type=count, default=None, metavar="N",
                   help=f"stress worker processes (default: os.cpu_count() = {default_jobs()})")
    p.add_argument("--corpus", default=str(CORPUS), metavar="DIR",
                   help="corpus with known/, regressions/ and flaws/ (default: the project's "
                        "corpus/)")
    p.add_argument("--out", default="findings", metavar="DIR",
                   help="directory for finding files of what the gate finds (default "
                        "./findings)")
    p.add_argument("--scenario", metavar="FILE",
                   help="a scenario file (JSON, docs/scenarios.md): the dfs part explores it "
                        f"too (preemption bound {DFS_PREEMPTION_BOUND}, at most "
                        f"{USER_DFS_MAX_EXECUTIONS:,} schedules) and the stress part runs it "
                        "in every run, instead of the mixed scenarios")


def cmd_gate(a: argparse.Namespace) -> int:
    user = None if a.scenario is None else load_scenario_file(a.scenario)  # names the field
    cfg = GateConfig(budget=a.budget, bugs=tuple(check_bugs(a.bug)), fixes=tuple(fixes_of(a)),
                     jobs=a.jobs or default_jobs(), corpus=Path(a.corpus), out=a.out,
                     scenario_file=a.scenario, scenario_data=None if user is None else user.dumps())
    if not cfg.corpus.is_dir():
        raise UsageError(f"--corpus {cfg.corpus}: no such directory")
    junit = Path(a.junit) if a.junit else None
    for what, d in (("--out", Path(a.out)), ("--junit", junit.parent if junit else None)):
        try:  # fail now, not after minutes of work
            if d is not None:
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{what}: cannot create {d}: {exc.strerror or exc}") from None
    print(f"migfuzz gate: budget {cfg.budget:g} s, bugs {', '.join(cfg.bugs) or 'none'}, "
          f"fixes {fixes_text(cfg.fixes)}, "
          f"{'scenario ' + a.scenario + ', ' if a.scenario else ''}"
          f"{cfg.jobs} job(s), corpus {cfg.corpus} -> {cfg.out}/", file=sys.stderr)
    try:
        result = run_gate(cfg, progress=sys.stderr)
    except (UsageError, KeyboardInterrupt):
        raise
    except Exception:  # a bug in the gate itself: exit 3, with the traceback
        traceback.print_exc()
        print("migfuzz: error: harness error in the gate (not a finding)", file=sys.stderr)
        return 3
    if junit is not None:
        try:
            write_atomic(junit, junit_xml(result))
        except OSError as exc:
            print(f"migfuzz: error: --junit {junit}: cannot write: {exc.strerror or exc}",
                  file=sys.stderr)
            print(format_summary(result))
            return 3
    print(format_summary(result, str(junit) if junit else None))
    return result.exit_code
