"""Seed-to-seed noise of the nightly's migration rates, and what a real regression does to them.

    .venv/bin/python bench/rate_noise.py [--seeds 8] [--runs 1000]

Runs the default stress campaign (portfolio of random and PCT, mixed scenarios, every upstream
fix, direct executor: the same decisions as the nightly's trio runs, so the same counts) for
``--runs`` schedules from each of ``--seeds`` night seeds (1001, 2001, ... as nights 1, 2, ...
of ``migfuzz nightly`` draw them), first on the faithful model and then on a mutant whose
``migrate_page_add`` lost its ``page_mapcount(page) == 1`` case (MPOL_MF_MOVE without
MOVE_ALL moves nothing; no oracle notices). For every series (strategy, scenario) it computes
the two-proportion z of every pair of faithful seeds (the null distribution the nightly's drop
threshold must stay clear of) and of every (faithful, mutant) pair (what it must catch), and
prints a markdown table. This is the measurement behind ``migfuzz.history.RATE_Z``.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from migfuzz.bugs import check_fixes
from migfuzz.campaign import Campaign, CampaignConfig, Migrations
from migfuzz.history import RATE_MIN_ATTEMPTS, RATE_MIN_DROP, RATE_Z, two_proportion_z
from migfuzz.strategies import BASE_STRATEGIES
from target.mm import mempolicy


@contextmanager
def mutant() -> Iterator[None]:
    real = mempolicy.migrate_page_add
    src = inspect.getsource(real)
    assert " or page.mapcount == 1" in src
    ns = dict(vars(mempolicy))
    exec(src.replace(" or page.mapcount == 1", ""), ns)
    mempolicy.migrate_page_add = ns["migrate_page_add"]
    try:
        yield
    finally:
        mempolicy.migrate_page_add = real


def counts(seed: int, runs: int) -> Migrations:
    with tempfile.TemporaryDirectory() as d:
        cfg = CampaignConfig(seed=seed, runs=runs, strategy="portfolio", executor="direct",
                             fixes=tuple(check_fixes(["all"])), out=d,
                             members=BASE_STRATEGIES)
        return Campaign(cfg).run().migrations


def z_of(a: list[int], b: list[int]) -> float | None:
    """z of ``b`` against the baseline ``a``; None below the nightly's minimum of pages."""
    if min(a[0], b[0]) < RATE_MIN_ATTEMPTS:
        return None
    return two_proportion_z(b[1], b[0], a[1], a[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--runs", type=int, default=1000)
    a = ap.parse_args()
    seeds = [1000 * (i + 1) + 1 for i in range(a.seeds)]
    faithful = {s: counts(s, a.runs) for s in seeds}
    with mutant():
        mutated = {s: counts(s, a.runs) for s in seeds}
    series = sorted({k for m in faithful.values() for k in m})
    print(f"{a.seeds} seeds x {a.runs:,} runs; drop = rate {RATE_MIN_DROP:.0%} lower, "
          f"z <= -{RATE_Z:g}, >= {RATE_MIN_ATTEMPTS} pages each night\n")
    print("| series | pages per seed | rate, faithful | null pairs | null z min | "
          "null var(z) | null drops | mutant rate | mutant z max | mutant flagged |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    all_null: list[float] = []
    flagged_null = 0
    for k in series:
        pages = [faithful[s].get(k, [0, 0])[0] for s in seeds]
        rates = [m / n for n, m in (faithful[s].get(k, [0, 0]) for s in seeds) if n]
        null = []
        drops = 0
        for x, y in itertools.permutations(seeds, 2):  # each ordered pair: y after x
            if k in faithful[x] and k in faithful[y]:
                z = z_of(faithful[x][k], faithful[y][k])
                if z is not None:
                    null.append(z)
                    fx, fy = faithful[x][k], faithful[y][k]
                    drops += z <= -RATE_Z and fx[1] / fx[0] - fy[1] / fy[0] >= RATE_MIN_DROP
        mz = []
        mflag = 0
        for x, y in itertools.product(seeds, seeds):
            if x != y and k in faithful[x] and k in mutated[y]:
                z = z_of(faithful[x][k], mutated[y][k])
                if z is not None:
                    mz.append(z)
                    fx, my = faithful[x][k], mutated[y][k]
                    mflag += z <= -RATE_Z and fx[1] / fx[0] - my[1] / my[0] >= RATE_MIN_DROP
        mrates = [m / n for n, m in (mutated[s].get(k, [0, 0]) for s in seeds) if n]
        all_null += null
        flagged_null += drops
        print(f"| {k} | {min(pages):,}-{max(pages):,} | {min(rates):.0%}-{max(rates):.0%} | "
              f"{len(null)} | {min(null):+.1f} | "
              f"{statistics.fmean(z * z for z in null):.1f} | {drops} | "
              f"{min(mrates):.0%}-{max(mrates):.0%} | {max(mz):+.1f} | {mflag}/{len(mz)} |"
              if null and mz else
              f"| {k} | {min(pages):,}-{max(pages):,} | - | 0 | - | - | - | - | - | - |")
    print(f"\nall series: {len(all_null)} ordered null pairs, min z {min(all_null):+.2f}, "
          f"mean z^2 {statistics.fmean(z * z for z in all_null):.2f}, "
          f"z <= -4: {sum(z <= -4 for z in all_null)}, z <= -{RATE_Z:g}: "
          f"{sum(z <= -RATE_Z for z in all_null)}, flagged drops: {flagged_null}")


if __name__ == "__main__":
    main()
