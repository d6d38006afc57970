"""The plan of a campaign: its configuration, and the input of each run (a pure function of
(seed, run)); the migration tallies it reports."""

from __future__ import annotations

import functools
import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from stress import DEFAULT_MAX_STEPS
from stress.run import run_scenario
from stress.scenarios import CANONICAL, canonical, generate
from stress.schedulers import RandomScheduler, SURWScheduler
from stress.schedulers.surw import format_estimates
from stress.workload import Scenario

from ..strategies import StrategySpec, spec_for_run
from ._messages import Migrations

T = TypeVar("T")

RUN_STRIDE = 1 << 32


@dataclass(frozen=True)
class CampaignConfig:
    seed: int = 0
    runs: int | None = None
    seconds: float | None = None
    strategy: str = "portfolio"
    executor: str = "trio"
    jobs: int = 1
    scenario: str | None = None  # a canonical name or a SCENARIO_MODES entry; None: mixed
    # A user's scenario file, as its JSON text (plain data, so every worker gets the same):
    # every run runs it; ``scenario`` then holds its name, for the summary.
    scenario_data: str | None = None
    bugs: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()  # upstream fixes applied (expanded: check_fixes)
    out: str = "findings"
    max_steps: int = DEFAULT_MAX_STEPS
    exitfirst: bool = False  # stop at the first finding (a gate's "fail fast")
    members: tuple[str, ...] = ("random",)  # the portfolio, fixed at the start
    # A Dask scheduler's address (``--cluster``): the runs go to its workers in batches
    # (``_cluster``) instead of ``jobs`` local processes. No run depends on it.
    cluster: str | None = None


def run_seed(seed: int, run: int) -> int:
    return seed * RUN_STRIDE + run


SCENARIO_MODES = ("mixed", "generated", "canonical")
"""``--scenario`` values besides a canonical name. ``mixed`` (the default) gives half the runs
to the canonical scenarios, the project's library of known races, and half to generated ones,
which explore combinations nobody wrote down (syzkaller does the same with its seed programs
and generated ones)."""


def _scenario_name(cfg: CampaignConfig, rs: int) -> str | None:
    """The canonical scenario of a run, or None for a generated one."""
    mode = cfg.scenario or "mixed"
    if mode == "generated":
        return None
    if mode not in SCENARIO_MODES:
        return mode
    rng = random.Random(f"scenario:{rs}")
    if mode == "canonical" or rng.random() < 0.5:
        names = sorted(CANONICAL)
        return names[rng.randrange(len(names))]
    return None


def plan_run(cfg: CampaignConfig, run: int) -> tuple[Scenario, StrategySpec]:
    """The input of run ``run``: a pure function of (seed, run, strategy, scenario mode)."""
    rs = run_seed(cfg.seed, run)
    # The probes of a canonical scenario or a scenario file are cached by its name or text;
    # a generated scenario is new at every run (PCT then goes without a hint).
    source: tuple[bool, str] | None
    if cfg.scenario_data is not None:
        scenario = _user_scenario(cfg.scenario_data)
        source = (True, cfg.scenario_data)
    else:
        name = _scenario_name(cfg, rs)
        scenario = canonical(name) if name else generate(rs)
        source = (False, name) if name else None
    key = (cfg.max_steps, cfg.bugs, cfg.fixes)
    hint: int | None = _probe(_probe_decisions, *source, *key) if source else None
    spec = spec_for_run(cfg.strategy, rs, run, cfg.members, hint)
    if spec.name == "surw":
        # For a generated scenario, the probe is one more execution at every run.
        estimates: str = (_probe(probe_estimates, *source, *key) if source
                          else probe_estimates(scenario, cfg.max_steps))
        spec = _with_estimates(spec, estimates)
    return scenario, spec


@functools.cache
def _probe(probe: Callable[[Scenario, int], T], user: bool, text: str, max_steps: int,
           bugs: tuple[str, ...], fixes: tuple[str, ...]) -> T:
    """``probe`` of a scenario file (``user``, by its JSON text) or a canonical scenario (by
    its name). ``bugs`` and ``fixes`` are part of the key: they are injected where it runs."""
    return probe(_user_scenario(text) if user else canonical(text), max_steps)


def _with_estimates(spec: StrategySpec, estimates: str) -> StrategySpec:
    return StrategySpec(spec.name, spec.seed, {**spec.params, "estimates": estimates})


def probe_estimates(sc: Scenario, max_steps: int) -> str:
    """SURW's estimates for ``sc`` (``format_estimates``): each task's interesting events in
    SURW's own first run (a fixed random walk), as shuttle and Fray measure them. Like
    :func:`_probe_decisions`, deterministic and run where the campaign's bugs are injected."""
    sched = SURWScheduler(0)
    sched.new_execution()
    run_scenario(sc, sched, executor="direct", max_steps=max_steps)
    return format_estimates(sched.measured())


@functools.cache
def _user_scenario(data: str) -> Scenario:
    return Scenario.from_json(json.loads(data))


def _probe_decisions(sc: Scenario, max_steps: int) -> int:
    """Decisions of ``sc`` under one fixed random walk: PCT's ``k`` estimate.

    Deterministic, so the same in every worker. Called where the campaign's ``bugs`` and
    ``fixes`` are injected (the cached callers take them as part of their key); a probe that
    hits a finding is still a hint.
    """
    sched = RandomScheduler(0)
    sched.new_execution()
    out = run_scenario(sc, sched, executor="direct", max_steps=max_steps)
    return max(1, len(out.schedule))


def migration_rates(migrations: Migrations) -> dict[str, dict[str, dict[str, float]]]:
    """The --json form: per strategy and per scenario, attempted, moved and the rate."""
    out: dict[str, dict[str, dict[str, float]]] = {"by_strategy": {}, "by_scenario": {}}
    for key, (attempted, moved) in sorted(migrations.items()):
        kind, name = key.split(":", 1)
        out[f"by_{kind}"][name] = {"attempted": attempted, "moved": moved,
                                   "rate": round(moved / attempted, 4) if attempted else 0.0}
    return out



def default_jobs() -> int:
    return os.cpu_count() or 1
