"""The race-window features (``nr``, ``hw``, ``av``) and the trace-guided preemptions of
fuzz_preempt, both computed from real traced runs of the model, never from made-up events
alone."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from fuzzers import _coverage, _guide, _mutate
from fuzzers._harness import MAX_STEPS
from fuzzers._targets import CANONICAL_NAMES, decode_preempt_input, ntasks_of
from stress.run import run_scenario
from target.bugs import inject
from target.fixes import lookup
from target.kernel import Event

ROOT = Path(__file__).resolve().parent.parent
PIN = CANONICAL_NAMES.index("tiny-migrate-pin")
GET_AFTER_UNLOCK = bytes([PIN, 1, 23 * 2 + 0, 6 * 2 + 1])
"""As in test_fuzz_preempt: the migrator starts; the user preempts it 23 decisions later
(faults on the migration entry); at decision 31 the migrator preempts the user between
pte_unmap_unlock and get_page."""
FIRST_PREEMPTION = GET_AFTER_UNLOCK[:3]
SECOND = (23 + 1 + 6 + 1, 1)
"""The decision and task of GET_AFTER_UNLOCK's second preemption."""


def _trace(data: bytes) -> tuple[int, list[tuple[int, int]], list[int]]:
    """(number of tasks, race points, the task chosen at each decision) of ``data``'s run, as
    the guide keeps them (``_guide._cache``), running it as fuzz_preempt's TestOneInput does
    if it is not remembered."""
    hit = _guide._cache.get(data)
    if hit is None:
        scenario, sched = _guide.decode(data)
        sched.new_execution()
        out = run_scenario(scenario, sched, trace=True, max_steps=MAX_STEPS)
        _guide.remember(data, sched, out.events or [])
        hit = _guide._cache[data]
    return hit


def _window_features(data: bytes) -> set[str]:
    scenario, scheduler = decode_preempt_input(data)
    scheduler.new_execution()
    with inject(lookup(["all"])):
        out = run_scenario(scenario, scheduler, trace=True)
    assert out.events
    return {f for f in _coverage.features(out.events) if f.split(":", 1)[0] in
            ("nr", "hw", "av")}


def test_a_near_conflict_of_a_real_run_is_a_nearness_feature() -> None:
    """Without a preemption (the migrator runs to its end, then the user) the two tasks'
    accesses to the page and its pte are never within NEAR steps of each other: no ``nr``,
    no ``av``. One preemption that stops the migrator with its migration entry installed
    makes the user read that entry a few steps later: ``nr`` names the pair and how near
    (8-15 steps: bucket 4), ``hw`` the locks the migrator holds meanwhile, ``av`` the
    migrator's write, the user's read, the migrator's next write of the same pte."""
    sequential = _window_features(FIRST_PREEMPTION[:2])
    assert not any(f.startswith(("nr:", "av:")) for f in sequential)
    raced = _window_features(FIRST_PREEMPTION)
    assert "nr:pte:NM>peek:M:4" in raced
    assert "hw:PG_locked+anon_vma->lock+mm->mmap_sem:pte:NM>peek:M" in raced
    assert "av:pte:NM>peek:M>pte:MP" in raced


def test_the_nopos_mode_reports_no_position_feature_of_a_real_run() -> None:
    """The bench's ``nopos`` mode (``MIGFUZZ_FEEDBACK_FAMILIES``) keeps, of a real depth-2
    run's features, the race-window and conflict families and none keyed on where a switch
    happens; the same run without the filter has them, so the filter is what removes them.
    FAMILIES names every family a real run produces, so ``nopos`` cannot miss a new one."""
    sys.path.insert(0, str(ROOT))
    from bench.fuzz_time_to_bug import NOPOS_FAMILIES

    chosen = frozenset(NOPOS_FAMILIES.split(","))
    assert chosen == _coverage.FAMILIES - _coverage.POSITION_FAMILIES
    scenario, scheduler = decode_preempt_input(GET_AFTER_UNLOCK)
    scheduler.new_execution()
    with inject(lookup(["all"])):
        out = run_scenario(scenario, scheduler, trace=True)
    assert out.events
    every = _coverage.features(out.events)
    assert {f.split(":", 1)[0] for f in every} <= _coverage.FAMILIES
    assert {"sw", "sw3", "ph"} <= {f.split(":", 1)[0] for f in every}
    kept = {f.split(":", 1)[0] for f in _coverage.selected(every, chosen)}
    assert not kept & {"sw", "sw3", "ph"}
    assert {"nr", "hw", "av", "cf", "pp", "lk"} <= kept


def test_nearness_is_bucketed_by_log2_of_the_steps_between() -> None:
    def pair(gap: int) -> set[str]:
        pte = {"mm": "mm1", "addr": 0}
        return _coverage.features([
            Event(1, 0, "pte", {**pte, "old": "P(0,wdy)", "new": "M(0)"}),
            Event(1 + gap, 1, "peek", {**pte, "pte": "M(0)"})])

    assert "nr:pte:PM>peek:M:1" in pair(1)
    assert "nr:pte:PM>peek:M:3" in pair(4) and "nr:pte:PM>peek:M:3" in pair(7)
    assert not any(f.startswith("nr:") for f in pair(_coverage.NEAR))  # too far: not near
    assert "hw:-:pte:PM>peek:M" in pair(_coverage.NEAR)  # still a conflict, no lock held


def test_race_points_of_a_real_run_include_the_window_after_an_unlock() -> None:
    """The race points of the one-preemption input include the second preemption of the
    depth-2 race (the user between pte_unmap_unlock and get_page, to the migrator), and
    inserting it there gives exactly the input that is get-after-unlock."""
    with inject(lookup(["all"])):
        _guide._cache.clear()
        n, points, chosen = _trace(FIRST_PREEMPTION)
    assert n == 2 and SECOND in points
    assert len(points) < len(chosen)  # not every decision: a race point needs a conflict
    assert _guide.preempt_at(FIRST_PREEMPTION, *SECOND, n, chosen, True) == GET_AFTER_UNLOCK


@pytest.mark.slow
def test_a_preemption_lands_at_its_decision_wherever_it_is_inserted() -> None:
    """Inserted before, between, on or after the records, or further than one record can
    say (bridged by records that do not preempt), the preemption applies at its decision and
    the decisions before it keep their choices."""
    with inject(lookup(["all"])):
        _guide._cache.clear()
        n, points, chosen = _trace(GET_AFTER_UNLOCK)  # records at decisions 24, 31
        tried = set()
        for d, task in points:
            for keep in (True, False):
                out = _guide.preempt_at(GET_AFTER_UNLOCK, d, task, n, chosen, keep)
                assert out is not None
                _, _, now = _trace(out)
                assert now[:d] == chosen[:d] and now[d] == task, (d, keep, out.hex())
            tried.add("before" if d < 24 else "between" if d < 31 else "on" if d == 31
                      else "after" if d <= 31 + 1 + 127 else "bridged")
    assert tried == {"before", "between", "on", "after", "bridged"}
    assert _guide.preempt_at(GET_AFTER_UNLOCK, 0, 1, n, chosen, True) is None  # the start
    # 3 tasks: the record 255 is gap 85, task 0; gap 85 and task 2 would be 257
    assert _guide.preempt_at(bytes([0, 0, 255]), 86, 2, 3, [0] * 99, True) is None
    assert _guide.preempt_at(bytes([0, 0, 255]), 86, 0, 3, [0] * 99, True) == bytes([0, 0, 255])


@pytest.mark.slow
def test_the_mutator_inserts_at_race_points_when_guided() -> None:
    """Given the guide, the mutations of the one-preemption input reach every one of its
    race points, and make the depth-2 race more than three times as often as the blind
    mutator does (22 and 6 times in these 2,000 seeded mutations)."""
    def mutations(guide: object) -> list[bytes]:
        return [_mutate.mutate(FIRST_PREEMPTION, 64, seed, ntasks_of, lambda d, m: d,
                               guide=guide) for seed in range(2000)]  # type: ignore[arg-type]

    with inject(lookup(["all"])):
        _guide._cache.clear()
        assert _guide.mutate(FIRST_PREEMPTION, 64, random.Random(0)) is None  # not run yet
        _trace(FIRST_PREEMPTION)
        guided = mutations(_guide.mutate)
        blind = mutations(None)
        n, points, chosen = _trace(FIRST_PREEMPTION)
    at_points = {_guide.preempt_at(FIRST_PREEMPTION, d, t, n, chosen, True) for d, t in points}
    assert at_points <= set(guided)
    assert guided.count(GET_AFTER_UNLOCK) >= 10
    assert guided.count(GET_AFTER_UNLOCK) > 3 * blind.count(GET_AFTER_UNLOCK)


@pytest.mark.slow
def test_fuzz_preempt_guides_its_mutator_only_with_the_feedback() -> None:
    """fuzz_preempt's own TestOneInput remembers the race points of what it runs, and its
    CustomMutator (the functions libFuzzer calls) uses them when the interleaving feedback is
    on, and not with ``--no-interleaving-feedback`` (which
    clears ``_coverage.enabled``): how often it makes the depth-2 race from its first
    preemption, over the same 2,000 seeds, in a process of its own (the target instruments
    the model on import; libFuzzer's own mutation, which needs a running libFuzzer, is
    replaced by the identity there)."""
    script = (
        "from fuzzers import fuzz_preempt, _coverage, _harness\n"
        "_harness.inject_from_env()\n"
        "fuzz_preempt.atheris.Mutate = lambda data, max_size: data\n"
        f"data, want = bytes.fromhex('{FIRST_PREEMPTION.hex()}'), "
        f"bytes.fromhex('{GET_AFTER_UNLOCK.hex()}')\n"
        "fuzz_preempt.TestOneInput(data)  # run with the feedback on: remembered\n"
        "for on in (True, False):\n"
        "    _coverage.enabled = on\n"
        "    print(sum(fuzz_preempt.CustomMutator(data, 64, s) == want for s in range(2000)))\n")
    env = dict(os.environ, MIGFUZZ_FIXES="all", MIGFUZZ_BUGS="", MIGFUZZ_SCENARIO="")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    on, off = (int(x) for x in proc.stdout.split())
    assert on >= 10 and on > 3 * off, (on, off)


@pytest.mark.slow
def test_the_guide_mutates_under_the_real_libfuzzer(tmp_path: Path) -> None:
    """End to end: fuzz_preempt as ``python -m fuzzers.fuzz_preempt`` runs it (instrumented
    model, real libFuzzer, one pinned scenario, fixed seed and runs), with ``_guide.mutate``
    wrapped to count the mutations it makes. libFuzzer calls the target's CustomMutator, which
    asks the guide, which knows the race points of what TestOneInput ran: a share of
    :data:`_mutate.GUIDED` of about 300 mutations. What calling the two functions in-process
    (above) cannot show: the guide finds, by their bytes, the inputs libFuzzer hands to the
    mutator among those it ran. Disconnect any link (TestOneInput not remembering,
    CustomMutator not passing the guide) and the count is 0; with
    ``--no-interleaving-feedback`` it is 0 by design."""
    count = tmp_path / "guided"
    script = (
        "import runpy, sys, atheris\n"
        "with atheris.instrument_imports(include=['target']):\n"  # as the target does first
        "    import target.mm.syscalls\n"
        "from fuzzers import _guide\n"
        "real = _guide.mutate\n"
        "def counted(data, max_size, rng):\n"
        "    out = real(data, max_size, rng)\n"
        "    if out is not None:\n"
        f"        with open({str(count)!r}, 'a') as f:\n"
        "            f.write('g')\n"
        "    return out\n"
        "_guide.mutate = counted\n"
        "sys.argv[0] = 'fuzz_preempt'\n"
        "runpy.run_module('fuzzers.fuzz_preempt', run_name='__main__')\n")

    def guided(*flags: str) -> int:
        corpus = tmp_path / f"corpus{len(flags)}"
        corpus.mkdir()
        (corpus / "first").write_bytes(FIRST_PREEMPTION)
        count.unlink(missing_ok=True)
        env = dict(os.environ, MIGFUZZ_SCENARIO="tiny-migrate-pin", MIGFUZZ_FIXES="all",
                   MIGFUZZ_BUGS="", MIGFUZZ_FEEDBACK_FAMILIES="")
        proc = subprocess.run([sys.executable, "-c", script, str(corpus), "-runs=300",
                               "-seed=1", *flags], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "Done 300 runs" in proc.stderr
        return len(count.read_text()) if count.exists() else 0

    assert guided() >= 30  # 133 of them
    assert guided("--no-interleaving-feedback") == 0
