"""Drops of a migration rate between two nights: the comparison the nightly flags (its
summary, ``--json`` and report), never fails on (``docs/architecture.md``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Why these thresholds (measured: bench/rate_noise.md). The two-proportion z test treats
# pages as independent trials, but pages of one run move or stay together (one migrate
# operation, one race), and a strategy's series mixes scenarios whose rates run from 13% to
# 100%: between two seeds of the same model the variance of z is up to 3.2 times the binomial
# one, and seed noise alone came to z = -3.95 (602 pairs of 8 seeds). So the bar is -6 (about
# -3.4 standard deviations of the measured noise). The fall must also be worth a look (5
# points: a huge night makes a 1-point wobble of the scenario mix "significant"), and each
# night must have tried enough pages for the normal approximation (100: a series with a
# handful of runs is shown, not judged).
RATE_MIN_ATTEMPTS = 100
"""Pages attempted, on each of the two nights, below which a series is not compared."""
RATE_MIN_DROP = 0.05
"""The smallest fall of the rate (moved / attempted, absolute) that is flagged."""
RATE_Z = 6.0
"""The one-sided two-proportion z a fall must reach (the score is at most -RATE_Z)."""


@dataclass(frozen=True)
class NightRates:
    night: int
    bugs: str  # JSON, as in ``nights``
    fixes: str
    counts: dict[str, tuple[int, int]]  # ``kind:name`` -> (attempted, moved)


@dataclass(frozen=True)
class RateComparison:
    """One series (``strategy:pct``, ``scenario:generated``) tonight against the latest
    earlier night of the same model variant that has counts for it."""

    series: str
    night: int
    attempted: int
    moved: int
    prev_night: int
    prev_attempted: int
    prev_moved: int
    z: float | None  # None: too few attempts on either night to compare

    @property
    def rate(self) -> float:
        return self.moved / self.attempted if self.attempted else 0.0

    @property
    def prev_rate(self) -> float:
        return self.prev_moved / self.prev_attempted if self.prev_attempted else 0.0

    @property
    def dropped(self) -> bool:
        return (self.z is not None and self.z <= -RATE_Z
                and self.prev_rate - self.rate >= RATE_MIN_DROP)

    def text(self) -> str:
        kind, _, name = self.series.partition(":")
        z = "too few pages to compare" if self.z is None else f"z = {self.z:+.1f}"
        return (f"{kind} {name}: {self.prev_rate:.0%} ({self.prev_moved:,}/"
                f"{self.prev_attempted:,}) on night {self.prev_night} -> {self.rate:.0%} "
                f"({self.moved:,}/{self.attempted:,}) on night {self.night}, {z}")

    def to_json(self) -> dict[str, Any]:
        kind, _, name = self.series.partition(":")
        return {"kind": kind, "name": name, "night": self.night,
                "attempted": self.attempted, "moved": self.moved,
                "rate": round(self.rate, 4), "previous_night": self.prev_night,
                "previous_attempted": self.prev_attempted,
                "previous_moved": self.prev_moved, "previous_rate": round(self.prev_rate, 4),
                "z": None if self.z is None else round(self.z, 2), "dropped": self.dropped}


def two_proportion_z(moved: int, attempted: int, prev_moved: int, prev_attempted: int) -> float:
    """The pooled two-proportion z score of tonight's rate against the previous one
    (negative: tonight is lower); 0 when the pooled rate is 0 or 1 (no variance)."""
    pooled = (moved + prev_moved) / (attempted + prev_attempted)
    var = pooled * (1 - pooled) * (1 / attempted + 1 / prev_attempted)
    if var <= 0:
        return 0.0
    return (moved / attempted - prev_moved / prev_attempted) / math.sqrt(var)


def compare_rates(trend: Sequence[NightRates], night: int) -> list[RateComparison]:
    """Every series ``night`` has counts for, against the latest earlier night that ran the
    same bugs and fixes and tried at least RATE_MIN_ATTEMPTS pages of that series, else the
    latest that tried any (then shown, not judged). Another variant's rate is another model's,
    not a baseline; a night killed a few minutes in must not blind the comparison."""
    by_id = {n.night: n for n in trend}
    me = by_id.get(night)
    if me is None:
        return []
    out: list[RateComparison] = []
    for series, (attempted, moved) in sorted(me.counts.items()):
        earlier = [n for n in reversed(trend) if n.night < night and n.bugs == me.bugs
                   and n.fixes == me.fixes and n.counts.get(series, (0, 0))[0] > 0]
        prev = next((n for n in earlier if n.counts[series][0] >= RATE_MIN_ATTEMPTS),
                    earlier[0] if earlier else None)
        if prev is None or attempted <= 0:
            continue
        pa, pm = prev.counts[series]
        z = (two_proportion_z(moved, attempted, pm, pa)
             if min(attempted, pa) >= RATE_MIN_ATTEMPTS else None)
        out.append(RateComparison(series, night, attempted, moved, prev.night, pa, pm, z))
    return out
