"""SURW (issue 15 item 2): uniform over the interleavings of interesting events, estimates
measured by a first run that sees every step, seeded and replayable, reachable from the CLI
and from ``migfuzz.testing.explore``.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from migfuzz.cli import main
from migfuzz.findings import load
from migfuzz.strategies import STRATEGIES, StrategySpec, make_scheduler
from migfuzz.testing import Shared, explore, run_once, spawn
from stress.executors import EXECUTORS
from stress.run import run_scenario
from stress.scenarios import CANONICAL
from stress.schedulers import RandomScheduler, Scheduler, SURWScheduler
from stress.schedulers.surw import format_estimates, parse_estimates

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.sctbench import PROGRAMS

Tasks = list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]]


def writers(a: int, b: int, log: list[str]) -> Tasks:
    """Two tasks writing their own shared variable ``a`` and ``b`` times; ``log`` gets the
    order of the writes (the interleaving of the interesting events)."""
    def writer(var: Shared[int], n: int, name: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def run() -> None:
            for _ in range(n):
                await var.write(1)
                log.append(name)
        return run

    return [("a", writer(Shared("x", 0), a, "a")), ("b", writer(Shared("y", 0), b, "b"))]


def interleavings(make: Callable[[int], Scheduler], a: int, b: int,
                  seeds: int) -> Counter[str]:
    """Per seed, a fresh scheduler's second execution (SURW's first one measures)."""
    seen: Counter[str] = Counter()
    for seed in range(seeds):
        sched = make(seed)
        for _ in range(2):
            sched.new_execution()
            log: list[str] = []
            assert EXECUTORS["direct"](sched, writers(a, b, log)).finding is None
        seen["".join(log)] += 1
    return seen


def chi_square(seen: Counter[str], cells: int) -> float:
    total = sum(seen.values())
    expected = total / cells
    return (sum((n - expected) ** 2 / expected for n in seen.values())
            + (cells - len(seen)) * expected)


def test_interleavings_of_interesting_events_are_uniform() -> None:
    """Two tasks of 2 and 3 writes: the C(5, 2) = 10 interleavings of the writes, over 600
    seeds, each about 60 times (chi-square, 9 degrees of freedom, under 30: p < 0.001 for a
    uniform sampler, and these seeds are fixed); random walk, on the same seeds, is far from
    it (it runs aabbb about a quarter of the time)."""
    cells = math.comb(5, 2)
    surw = interleavings(SURWScheduler, 2, 3, 600)
    assert len(surw) == cells
    assert chi_square(surw, cells) < 30, surw
    walk = interleavings(RandomScheduler, 2, 3, 600)
    assert chi_square(walk, cells) > 300, walk


def test_first_run_counts_every_interesting_event_even_alone() -> None:
    """The estimates count each task's writes, also those it makes after the other ended
    (no decision there: only the step hook sees them); the first task's NONE step is not
    one. Without estimates, execution 0 is a random walk: no weighted draw."""
    for seed in range(5):
        sched = SURWScheduler(seed)
        sched.new_execution()
        EXECUTORS["direct"](sched, writers(2, 7, []))
        assert sched.rounds == 0
        assert sched.measured() == (2, 7)
        sched.new_execution()
        assert sched.estimates == (2, 7)
        EXECUTORS["direct"](sched, writers(2, 7, []))
        assert sched.rounds > 0


def test_estimates_grow_to_the_largest_count_seen() -> None:
    """A task whose path depends on the data is counted by its longest run so far: a first
    run of 2 and 3 writes, a second of 1 and 7, give estimates of 2 and 7."""
    sched = SURWScheduler(0)
    for a, b in ((2, 3), (1, 7)):
        sched.new_execution()
        EXECUTORS["direct"](sched, writers(a, b, []))
    sched.new_execution()
    assert sched.estimates == (2, 7)


def test_a_parent_counts_its_childrens_events() -> None:
    """migfuzz.testing's main spawning two writers: main's estimate holds its own events
    (two spawns, two joins at least) and its children's (shuttle's parent subsumption)."""
    async def prog() -> None:
        x, y = Shared("x", 0), Shared("y", 0)

        async def write(var: Shared[int], n: int) -> None:
            for _ in range(n):
                await var.write(1)

        a, b = await spawn(write, x, 3), await spawn(write, y, 5)
        await a.join()
        await b.join()

    sched = SURWScheduler(0)
    sched.new_execution()
    assert run_once(prog, sched).finding is None
    own = sched.measured_own()
    assert own[1:] == (3, 5) and own[0] >= 4  # a join that had to wait passes its point twice
    assert sched.measured() == (own[0] + 3 + 5, 3, 5)


def test_estimates_round_trip_and_bad_ones_are_named() -> None:
    assert parse_estimates(format_estimates((3, 0, 12))) == (3, 0, 12)
    for bad in ("", "3,,4", "a", "-1"):
        with pytest.raises(ValueError, match="SURW estimates"):
            parse_estimates(bad)


def test_same_seed_same_decisions() -> None:
    """SURW rebuilt from its spec (estimates included) makes the same decisions; another
    seed others."""
    def schedule(seed: int) -> list[int]:
        sched = make_scheduler(StrategySpec("surw", seed, {"estimates": "40,40,1"}))
        sched.new_execution()
        return run_scenario(CANONICAL["migrate-vs-fault"](), sched,
                            executor="direct").schedule

    first = [schedule(s) for s in range(3)]
    assert first == [schedule(s) for s in range(3)]
    assert len({tuple(s) for s in first}) > 1


def test_explore_runs_surw_and_finds_an_sctbench_bug() -> None:
    """``explore(main, "surw")``: execution 0 measures, the later ones sample."""
    port = PROGRAMS["account_bad"]
    result = explore(port.main, "surw", schedules=200, seed=0)
    assert result.finding is not None and result.finding.kind == port.kind


def test_finds_a_catalog_race_through_the_cli_and_the_finding_replays(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``migfuzz stress --strategy surw`` finds isolate-without-lru-recheck (depth 1) on its
    scenario within 20 runs (random finds it in none of seed 0's 20); the file records the
    strategy and the probe's estimates (a run without them would be a plain random walk),
    and ``migfuzz repro`` replays it exactly."""
    assert "surw" in STRATEGIES
    out = tmp_path / "findings"
    code = main(["stress", "--strategy", "surw", "--bug", "isolate-without-lru-recheck",
                 "--fixes", "all", "-x", "--runs", "20", "--jobs", "1", "--seed", "0",
                 "--executor", "direct", "--scenario", "migrate-vs-swap-pin",
                 "--out", str(out)])
    assert code == 1, capsys.readouterr().out
    [path] = sorted(out.glob("*.json"))
    rec = load(path)
    assert rec.strategy.name == "surw" and rec.bugs == ["isolate-without-lru-recheck"]
    estimates = parse_estimates(str(rec.strategy.params["estimates"]))
    assert len(estimates) >= 2 and all(n > 0 for n in estimates)
    capsys.readouterr()
    assert main(["repro", str(path)]) == 1
    assert "result: REPRODUCED (identical trace" in capsys.readouterr().out


def test_a_finding_file_checks_surw_parameters() -> None:
    """The finding schema takes SURW's estimates as counts, and names what is wrong."""
    from pydantic import ValidationError

    from migfuzz._finding_schema import _Strategy

    _Strategy.model_validate({"name": "surw", "seed": 1, "params": {"estimates": "3,0,12"}})
    for params, match in (({"estimates": "3,x"}, "comma-separated counts"),
                          ({"estimates": 3}, "comma-separated counts"),
                          ({"depth": 3}, "surw takes no parameter 'depth'")):
        with pytest.raises(ValidationError, match=match):
            _Strategy.model_validate({"name": "surw", "seed": 1, "params": params})
