"""Scheduling strategies by name, replay, and the schedule encoding of finding files.

A strategy run is named by :class:`StrategySpec` (name, seed, parameters): building the
scheduler twice from the same spec gives the same decisions, which is what makes a campaign
deterministic for a given ``--seed``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stress.schedule import decode_schedule, encode_schedule
from stress.schedulers import (
    ConflictPCTScheduler,
    DPORScheduler,
    PCTScheduler,
    POSScheduler,
    RandomScheduler,
    ReplayScheduler,
    ScheduleDivergence,
    Scheduler,
    SURWScheduler,
)

from ._errors import UsageError, find_cause

STRATEGIES = ("random", "pct", "pos", "cpct", "surw", "dpor", "portfolio")
"""What ``--strategy`` accepts; ``portfolio`` alternates the base strategies. ``pos`` is
Partial Order Sampling (stress/schedulers/pos.py), ``cpct`` conflict-aware PCT
(stress/schedulers/cpct.py), ``surw`` selectively uniform random walk
(stress/schedulers/surw.py), ``dpor`` source-set DPOR (stress/schedulers/dpor.py)."""

EXHAUSTIVE = ("dpor",)
"""Strategies whose one run is a search of many executions of its scenario (until the first
finding, the end of the search or ``max_executions``), not one execution."""

DPOR_PREEMPTION_BOUND = 2
DPOR_RUN_EXECUTIONS = 2_000
"""A ``dpor`` run of a campaign: the bound of the gate's exhaustive part, and a cap on the
executions of one run (the gate's cap for a user's scenario), so that a run of a large
generated scenario ends; its seed orders the tasks tried first, so capped runs of one
scenario from different seeds explore different parts of it."""

BASE_STRATEGIES = ("random", "pct")
"""The members of the portfolio. pos, cpct and surw are not among them (bench/strategies.md,
README's "Why this portfolio"): cpct found nothing PCT missed; POS and SURW found more of the
catalog, but beside them PCT, the only strategy that finds some bugs, gets a quarter of the
runs instead of half."""

REBUILDABLE = ("random", "pct", "pos", "cpct", "surw")
"""The strategies :func:`make_scheduler` rebuilds exactly from a finding's spec."""

PCT_LIKE = ("pct", "cpct")
"""The strategies that take PCT's ``depth`` and ``max_steps_hint``."""

PCT_DEPTH = 3


@dataclass(frozen=True)
class StrategySpec:
    """One strategy instance: enough to rebuild the scheduler of a run exactly."""

    name: str
    seed: int
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "params": dict(self.params)}

    def describe(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}(seed={self.seed}{extra})"


def check_strategy(name: str) -> None:
    if name not in STRATEGIES:
        raise UsageError(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")


def spec_for_run(strategy: str, seed: int, run: int, members: Sequence[str] = ("random",),
                 pct_hint: int | None = None) -> StrategySpec:
    """The strategy of run ``run`` of a campaign: fixed, or the portfolio's turn.

    ``members`` is the portfolio, fixed when the campaign starts (a strategy module appearing
    mid-campaign must not change which strategy later runs get). ``pct_hint`` is PCT's
    ``max_steps_hint``: a fresh scheduler per run never learns the number of decisions ``k``
    itself, so the campaign measures it for a canonical scenario and passes it here.
    """
    name = strategy
    if strategy == "portfolio":
        # Not ``run % len(members)``: worker w of N takes runs w, w+N, ..., so with N a
        # multiple of the portfolio size every worker would run one strategy only. A hash of
        # the run index mixes them in every worker and stays a pure function of the run.
        name = members[random.Random(f"portfolio:{run}").randrange(len(members))]
    params: dict[str, Any] = {}
    if name in PCT_LIKE:
        params["depth"] = PCT_DEPTH
        if pct_hint is not None:
            params["max_steps_hint"] = pct_hint
    if name == "dpor":
        params.update(preemption_bound=DPOR_PREEMPTION_BOUND,
                      max_executions=DPOR_RUN_EXECUTIONS)
    return StrategySpec(name, seed, params)


def make_scheduler(spec: StrategySpec) -> Scheduler:
    """A fresh scheduler for ``spec``; the caller calls ``new_execution()``."""
    if spec.name == "random":
        return RandomScheduler(spec.seed)
    if spec.name == "pct":
        return PCTScheduler(spec.seed, **spec.params)
    if spec.name == "cpct":
        return ConflictPCTScheduler(spec.seed, **spec.params)
    if spec.name == "pos":
        return POSScheduler(spec.seed)
    if spec.name == "dpor":
        return DPORScheduler(seed=spec.seed, **spec.params)
    if spec.name == "surw":
        return SURWScheduler(spec.seed, spec.params.get("estimates"))
    raise UsageError(f"cannot rebuild strategy {spec.name!r}")


# -- replay and the schedule codec -------------------------------------------------------------


def replay_scheduler(schedule: Sequence[int]) -> Scheduler:
    """``ReplayScheduler(schedule)``: follows the recorded decisions, raises on divergence."""
    return ReplayScheduler(list(schedule))


def divergence_of(exc: BaseException) -> BaseException | None:
    """The ``ScheduleDivergence`` behind ``exc``, if that is what it is (``find_cause``)."""
    return find_cause(exc, ScheduleDivergence)


SCHEDULE_CODEC = "stress.schedule"
"""``schedule_encoding`` of a finding whose schedule is ``encode_schedule``'s string."""

SCHEDULE_JSON = "json-list"
"""``schedule_encoding`` of a finding whose schedule is a plain JSON list of tids."""


def encode(schedule: Sequence[int]) -> tuple[str, str | list[int]]:
    """(encoding, data) for a finding file: always the codec's string now; the JSON-list
    encoding is still read (decode) so early files of format version 1 keep loading."""
    return SCHEDULE_CODEC, encode_schedule(list(schedule))


def decode(encoding: str, data: Any) -> list[int]:
    """The decision list of a finding file; ValueError (with the reason) if it is invalid."""
    if encoding == SCHEDULE_JSON:
        if not isinstance(data, list) or not all(
            isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in data
        ):
            raise ValueError("schedule must be a list of non-negative task ids")
        return list(data)
    if encoding == SCHEDULE_CODEC:
        if not isinstance(data, str):
            raise ValueError("an encoded schedule must be a string")
        return decode_schedule(data)  # ScheduleFormatError is a ValueError
    raise ValueError(f"unknown schedule encoding {encoding!r}")
