"""The parts of the gate that search: the bounded exhaustive part (the ``dfs`` suite, searched
with DPOR since issue 15: every trace of the tiny scenarios within the preemption bound, not
every schedule), and the stress campaigns of its fixed seeds."""

from __future__ import annotations

from stress import Outcome
from stress.run import run_scenario
from stress.scenarios import TINY_BOUND, canonical
from stress.schedulers import DPORScheduler
from stress.workload import Scenario

from ..bugs import injected
from ..campaign import Campaign, CampaignConfig
from ..report import repro_commands
from ..strategies import BASE_STRATEGIES, StrategySpec
from ._base import _GateBase, _reproduce
from ._plan import (
    DFS_EXECUTOR,
    DFS_MAX_EXECUTIONS,
    DFS_PREEMPTION_BOUND,
    ERROR,
    FAILED,
    STRESS_EXECUTOR,
    STRESS_RUNS_PER_SECOND,
    USER_DFS_MAX_EXECUTIONS,
    Check,
    stress_plan,
)


class _SearchParts(_GateBase):
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
        sched = DPORScheduler(bound, max_executions=cap)
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
            self.result.dpor_executions += n
            found = None if out is None else out.finding
            capped = found is None and not sched.exhausted
            c.properties.update(schedules=str(n), exhausted=str(sched.exhausted).lower(),
                                capped=str(capped).lower(), preemption_bound=str(bound))
            how = ("exhausted" if sched.exhausted else
                   f"CAPPED at max_executions={cap}: the bound-"
                   f"{bound} search is NOT exhaustive" if capped else
                   "stopped at the first finding")
            c.out.append(f"{n:,} schedule{'s' if n != 1 else ''} explored (DPOR, preemption "
                         f"bound {bound}, {how}){self.bugs_note()}")
            self.log(f"dfs {name}: {c.out[-1]}")
            if out is None or found is None:
                return
            sig, saved = self.save(
                scenario, out, bugs=self.cfg.bugs, executor=DFS_EXECUTOR,
                spec=StrategySpec("dpor", 0, {"preemption_bound": bound,
                                              "execution": n}),
                origin={"part": "dfs", "scenario": name, "execution": n})
        c.fail(FAILED, f"{sig}: {repro_commands(str(saved))[0]}",
               f"DPOR execution {n} of {name}{self.bugs_note()} finds {sig}.",
               *_reproduce(saved))

    # -- stress ----------------------------------------------------------------------------

    def stress(self) -> None:
        cfg, r = self.cfg, self.result
        r.runs_per_seed, r.reserved = stress_plan(cfg.budget, r.fixed_executions,
                                                  len(cfg.seeds), r.dpor_executions)
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
            c.fail(ERROR, f"harness error (not a finding) in run {e.run} "
                   f"({e.strategy}, {e.scenario}): {e.error}", f"rerun: {rerun}", e.traceback)
            return
        if s.findings:
            first = s.findings[0]
            lines = [f"{e.record.signature} (run {e.record.origin.get('run')}): "
                     f"{repro_commands(str(e.path))[0]}" for e in s.findings]
            c.fail(FAILED, f"{first.record.signature}: {repro_commands(str(first.path))[0]}",
                   *lines[1:], f"stopped at the first finding; rerun the seed: {rerun}",
                   *_reproduce(first.path))

