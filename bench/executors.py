"""Cost per scheduling point: the two executors against the mechanisms they are built on.

Four measurements of the same shape of program, ``TASKS`` tasks each passing ``POINTS``
scheduling points and then returning, interleaved in one run (these machines are noisy, so
only side-by-side numbers and their ratios mean anything):

    bare         coroutines that ``await`` a bare ``types.coroutine`` yield, stepped
                 round-robin by ``coro.send(None)``: the floor for any coroutine executor
    direct       ``run_direct`` + ``RandomScheduler`` on a typed point, as the model's
                 ``get_page`` makes it: ``await preempt(page, WRITE, "count")``
    trio-raw     two trio tasks ping-ponging through ``trio.lowlevel.reschedule`` and
                 ``wait_task_rescheduled``: the floor for parking and waking trio tasks
    trio         ``run_in_trio`` + ``RandomScheduler`` on the same program as ``direct``,
                 inside one already running ``trio.run`` (its start-up is a fixed cost per
                 execution, reported separately below)

A "point" is one resumption of a model coroutine: ``Outcome.steps`` for the executors (one per
``Execution.pick``), one ``send`` for ``bare``, one switch for ``trio-raw``.

Reproduce with ``.venv/bin/python bench/executors.py`` from the repository root; it prints the
markdown tables of bench/executors.md. ``--instructions`` adds instruction counts from
callgrind (needs valgrind; a few minutes), ``--profile`` a cProfile of the direct executor.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any

# Runnable as a script from the repository root without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import trio
import trio.testing

from stress.executors import run_direct
from stress.executors.trio import run_in_trio
from stress.schedulers import RandomScheduler
from target.kernel import WRITE, preempt

TASKS = 3
POINTS = 10_000  # per task, per execution
ROUNDS = 5
MIN_SECONDS = 0.2  # each measurement repeats its program until it has run this long

Measure = Callable[[], tuple[float, int]]  # () -> (seconds, points)


# -- (i) bare coroutine stepping -------------------------------------------------------------


@types.coroutine
def _bare_point() -> Generator[None, None, None]:
    yield


async def _bare_task(n: int) -> None:
    for _ in range(n):
        await _bare_point()


def bare() -> tuple[float, int]:
    """Round-robin ``send(None)`` over ``TASKS`` coroutines until all have returned."""
    coros = [_bare_task(POINTS) for _ in range(TASKS)]
    sends = 0
    t0 = time.perf_counter()
    while coros:
        for c in list(coros):
            sends += 1
            try:
                c.send(None)
            except StopIteration:
                coros.remove(c)
    return time.perf_counter() - t0, sends


# -- (ii) the direct executor ----------------------------------------------------------------


class _Page:
    """The object the benchmark's points name: any model object does (only its identity is
    stored), and a typed point costs the same whatever it names."""


def _model_tasks() -> list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]]:
    page = _Page()

    async def body() -> None:
        for _ in range(POINTS):
            await preempt(page, WRITE, "count")  # a typed point: three slot stores

    return [(f"t{i}", body) for i in range(TASKS)]


def direct() -> tuple[float, int]:
    sched = RandomScheduler(1)
    sched.new_execution()
    tasks = _model_tasks()
    t0 = time.perf_counter()
    out = run_direct(sched, tasks, max_steps=10 * TASKS * POINTS)
    elapsed = time.perf_counter() - t0
    assert out.finding is None, out.finding
    return elapsed, out.steps


# -- (iii) raw trio park / wake --------------------------------------------------------------


def _abort(_: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.SUCCEEDED


async def _ping_pong(switches: int) -> float:
    """Two trio tasks hand control to each other ``switches`` times; returns the seconds.

    Each hand-off is exactly what the trio executor does at a point that changes task:
    ``reschedule`` the other task, then park in ``wait_task_rescheduled``.
    """
    reschedule = trio.lowlevel.reschedule
    wait = trio.lowlevel.wait_task_rescheduled
    tasks: dict[int, Any] = {}  # by player number: trio starts them in random order
    remaining = switches
    done = False
    t0 = t1 = 0.0

    async def player(me: int) -> None:
        nonlocal remaining, done, t1
        tasks[me] = trio.lowlevel.current_task()
        await wait(_abort)  # parked until the conductor (or the other player) wakes us
        while remaining > 0:
            remaining -= 1
            reschedule(tasks[1 - me])
            await wait(_abort)
        if not done:  # the first to see the end releases the other, still parked
            done = True
            t1 = time.perf_counter()
            reschedule(tasks[1 - me])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(player, 0)
        nursery.start_soon(player, 1)
        await trio.testing.wait_all_tasks_blocked()
        t0 = time.perf_counter()
        reschedule(tasks[0])
    return t1 - t0


def trio_raw() -> tuple[float, int]:
    switches = TASKS * POINTS
    return trio.run(_ping_pong, switches), switches


# -- (iv) the trio executor ------------------------------------------------------------------


async def _trio_executor() -> tuple[float, int]:
    sched = RandomScheduler(1)
    sched.new_execution()
    tasks = _model_tasks()
    t0 = time.perf_counter()
    out = await run_in_trio(sched, tasks, max_steps=10 * TASKS * POINTS)
    elapsed = time.perf_counter() - t0
    assert out.finding is None, out.finding
    return elapsed, out.steps


def trio_executor() -> tuple[float, int]:
    return trio.run(_trio_executor)


def switches_per_point() -> float:
    """The fraction of the executors' points that hand control to another task.

    At the others the picked task is the one already running: the trio executor then returns
    from its point without parking. ``trio-raw`` switches at every point, so the fair
    trio comparison is per *switch*. Both executors make the same decisions, so one traced
    direct run of the same seed counts them for both.
    """
    sched = RandomScheduler(1)
    sched.new_execution()
    out = run_direct(sched, _model_tasks(), max_steps=10 * TASKS * POINTS, trace=True)
    assert out.events is not None
    return sum(1 for e in out.events if e[2] == "switch") / out.steps


# -- fixed cost per execution ----------------------------------------------------------------


async def _empty() -> None:
    return None


def fixed_cost(runner: Callable[..., Any]) -> float:
    """Seconds for one execution of a single task that returns at once."""
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        sched = RandomScheduler(0)
        sched.new_execution()
        runner(sched, [("t0", _empty)])
    return (time.perf_counter() - t0) / n


# -- driver ----------------------------------------------------------------------------------


def _repeat(measure: Measure) -> float:
    """µs per point, with the program repeated until ``MIN_SECONDS`` have passed."""
    seconds = 0.0
    points = 0
    while seconds < MIN_SECONDS:
        s, p = measure()
        seconds += s
        points += p
    return seconds / points * 1e6


MEASURES: dict[str, Measure] = {
    "bare": bare,
    "direct": direct,
    "trio-raw": trio_raw,
    "trio": trio_executor,
}


def run(rounds: int = ROUNDS) -> dict[str, list[float]]:
    """Interleave the measurements, ``rounds`` times: one of each per round."""
    from stress.executors import run_trio

    results: dict[str, list[float]] = {name: [] for name in MEASURES}
    results["direct fixed"] = []
    results["trio fixed"] = []
    for _ in range(rounds):
        for name, measure in MEASURES.items():
            results[name].append(_repeat(measure))
        results["direct fixed"].append(fixed_cost(run_direct) * 1e6)
        results["trio fixed"].append(fixed_cost(run_trio) * 1e6)
    return results


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def report(results: dict[str, list[float]], rounds: int, switch_fraction: float) -> str:
    med = {k: statistics.median(v) for k, v in results.items()}
    per_switch = {
        "bare": med["bare"],
        "direct": med["direct"] / switch_fraction,
        "trio-raw": med["trio-raw"],
        "trio": med["trio"] / switch_fraction,
    }
    lines = [
        f"Machine: {os.cpu_count()} CPUs (nproc), {_cpu_model()}; "
        f"Python {platform.python_version()}, trio {trio.__version__}; "
        f"{datetime.date.today().isoformat()}.",
        f"Program: {TASKS} tasks x {POINTS} points; {rounds} interleaved rounds; medians, "
        "with the range across rounds. "
        f"{switch_fraction:.1%} of the executors' points switch task.",
        "",
        "| measurement | µs per point | range | µs per task switch |",
        "|---|---:|---:|---:|",
    ]
    for name in MEASURES:
        v = results[name]
        lines.append(
            f"| {name} | {med[name]:.3f} | {min(v):.3f}-{max(v):.3f} | {per_switch[name]:.3f} |"
        )
    lines += [
        "",
        "| ratio | value | goal |",
        "|---|---:|---:|",
        f"| direct / bare, per point | {med['direct'] / med['bare']:.2f}x | <= 3x |",
        f"| trio executor / trio-raw, per switch | "
        f"{per_switch['trio'] / per_switch['trio-raw']:.2f}x | <= 2x |",
        f"| trio executor / trio-raw, per point | {med['trio'] / med['trio-raw']:.2f}x | - |",
        f"| trio executor / direct, per point | {med['trio'] / med['direct']:.1f}x | - |",
        "",
        "| fixed cost of one execution (1 task, 0 points) | µs |",
        "|---|---:|",
        f"| run_direct | {med['direct fixed']:.1f} |",
        f"| run_trio (includes trio.run) | {med['trio fixed']:.1f} |",
    ]
    return "\n".join(lines)


def profile_direct(top: int = 18) -> str:
    """cProfile of one direct execution, sorted by own time: where a point's cost goes."""
    prof = cProfile.Profile()
    prof.enable()
    direct()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# -- instruction counts (valgrind) -----------------------------------------------------------

# Two sizes per measurement: the difference cancels start-up (interpreter, imports, trio.run).
_SMALL, _LARGE = 200, 2_200


def _run_single(name: str, points: int) -> None:
    """Run one measurement once at ``points`` per task (the child side of --instructions)."""
    global POINTS
    POINTS = points
    MEASURES[name]()


def _callgrind(name: str, points: int) -> int:
    """Instructions executed by a child interpreter running one measurement once."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, os.path.abspath(__file__), "--single", name, "--points", str(points)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # str hashes reach dict probing: fix them
    )
    match = re.search(r"Collected : (\d+)", out.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{out.stderr}")
    return int(match.group(1))


def _switches(points: int) -> int:
    """Task switches in one direct run of the executors' program (same decisions as trio)."""
    global POINTS
    saved, POINTS = POINTS, points
    try:
        sched = RandomScheduler(1)
        sched.new_execution()
        out = run_direct(sched, _model_tasks(), max_steps=10 * TASKS * POINTS, trace=True)
    finally:
        POINTS = saved
    assert out.events is not None
    return sum(1 for e in out.events if e[2] == "switch")


def instructions() -> str:
    """Instructions per point under callgrind: deterministic, unlike the clock on a noisy VM.

    They leave out what the clock sees and callgrind does not (cache misses, allocator
    behaviour), so they complement the timings, and are the right measure for a
    micro-optimisation that moves the time by a few per cent.
    """
    if shutil.which("valgrind") is None:
        return "valgrind is not installed: no instruction counts."
    delta = TASKS * (_LARGE - _SMALL)
    per_point = {
        name: (_callgrind(name, _LARGE) - _callgrind(name, _SMALL)) / delta for name in MEASURES
    }
    switch_fraction = (_switches(_LARGE) - _switches(_SMALL)) / delta
    lines = [
        f"Instructions per point (valgrind --tool=callgrind, PYTHONHASHSEED=0; runs of "
        f"{TASKS} x {_LARGE} minus {TASKS} x {_SMALL} points):",
        "",
        "| measurement | instructions per point | per task switch |",
        "|---|---:|---:|",
    ]
    for name, value in per_point.items():
        switch = value / switch_fraction if name in ("direct", "trio") else value
        lines.append(f"| {name} | {value:,.0f} | {switch:,.0f} |")
    lines += [
        "",
        f"direct / bare: {per_point['direct'] / per_point['bare']:.2f}x; trio executor / "
        f"trio-raw per switch: "
        f"{per_point['trio'] / switch_fraction / per_point['trio-raw']:.2f}x.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--profile", action="store_true", help="cProfile the direct executor")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions with callgrind"
    )
    parser.add_argument("--single", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    parser.add_argument("--points", type=int, default=POINTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        _run_single(args.single, args.points)
        return
    print(report(run(args.rounds), args.rounds, switches_per_point()))
    if args.instructions:
        print()
        print(instructions())
    if args.profile:
        print()
        print(profile_direct())


if __name__ == "__main__":
    main()
