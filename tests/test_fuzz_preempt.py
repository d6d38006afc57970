"""fuzz_preempt: its input format (one byte per preemption), its decoder, its custom mutator,
its seeds, and a libFuzzer run that turns its crash into a finding file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzzers import _mutate, seeds
from fuzzers._targets import CANONICAL_NAMES, DECODERS, Sequential, ntasks_of, scenario_byte
from migfuzz.cli import main
from migfuzz.findings import load
from migfuzz.fuzz import artifact_record
from stress.run import run_scenario
from stress.scenarios import canonical
from stress.schedulers import PreemptScheduler
from stress.workload import ScenarioError

ROOT = Path(__file__).resolve().parent.parent
PIN = CANONICAL_NAMES.index("tiny-migrate-pin")
GET_AFTER_UNLOCK = bytes([PIN, 1, 23 * 2 + 0, 6 * 2 + 1])
"""get-after-unlock as fuzz_preempt's input: tiny-migrate-pin, the migrator (task 1) starts;
after 23 more decisions the user (task 0) preempts it (it faults on the migration entry), and
6 decisions later the migrator preempts the user between pte_unmap_unlock and get_page, and
frees the page."""


class Counting:
    """Wraps a scheduler; counts preemptions (another task chosen while the current could
    run)."""

    def __init__(self, inner: PreemptScheduler) -> None:
        self.inner = inner
        self.preemptions: list[int] = []
        self.decisions = 0

    def new_execution(self) -> bool:
        return self.inner.new_execution()

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        tid = self.inner.next_task(runnable, current, yielding)
        if current in runnable and tid != current:
            self.preemptions.append(self.decisions)
        self.decisions += 1
        return tid


def test_a_record_preempts_after_its_gap_and_names_a_task() -> None:
    s = PreemptScheduler(bytes([1, 2 * 3 + 0, 0 * 3 + 2]), ntasks=3)
    assert s.new_execution() and not s.new_execution()
    assert s.next_task([0, 1, 2], None, False) == 1  # the first byte: task 1 starts
    assert [s.next_task([0, 1, 2], 1, False) for _ in range(2)] == [1, 1]  # gap 2: runs on
    assert s.next_task([0, 1, 2], 1, False) == 0  # then task 0
    assert s.next_task([1, 2], 0, False) == 2  # gap 0: the next decision, task 2 ...
    assert s.next_task([0, 1, 2], 2, False) == 2  # ... and no record left: it runs on
    assert s.next_task([0, 1], 2, False) == 0  # blocked: the lowest runnable task


def test_a_task_that_cannot_run_gives_way_to_the_next_tid() -> None:
    s = PreemptScheduler(bytes([1, 0 * 3 + 2, 0 * 3 + 1, 0 * 3 + 0]), ntasks=3)
    assert s.next_task([0, 2], None, False) == 2  # task 1 cannot run: the next tid after it
    assert s.next_task([0, 1], 2, False) == 0  # task 2 cannot run: cyclically, task 0
    assert s.next_task([0, 2], 0, False) == 2  # task 1 cannot run: task 2
    assert s.next_task([0, 2], 2, False) == 0  # task 0


@pytest.mark.slow
def test_no_records_is_the_sequential_schedule() -> None:
    for i, name in enumerate(CANONICAL_NAMES):
        sc, sched = DECODERS["fuzz_preempt"](bytes([i]))
        seq = Sequential()
        sched.new_execution()
        a, b = run_scenario(sc, sched), run_scenario(canonical(name), seq)
        assert a.trace_key == b.trace_key, name


@pytest.mark.slow
@settings(max_examples=40)
@given(st.integers(0, len(CANONICAL_NAMES) - 1), st.binary(max_size=6))
def test_k_records_preempt_at_most_k_times(scenario: int, data: bytes) -> None:
    sc, _ = DECODERS["fuzz_preempt"](bytes([scenario]))
    sched = Counting(PreemptScheduler(data, len(sc.tasks)))
    sched.new_execution()
    run_scenario(sc, sched)
    assert len(sched.preemptions) <= max(len(data) - 1, 0)


def test_the_decoder_reaches_a_depth_2_race_with_two_records() -> None:
    """The target's decoder: two preemption bytes are get-after-unlock; one of them alone,
    or the faithful model, is not."""
    rec = artifact_record(GET_AFTER_UNLOCK, "fuzz_preempt", ["get-after-unlock"], "<test>",
                          fixes=["all"])
    assert rec is not None and rec.signature == "use-after-free in get_page"
    assert rec.scenario.name == "tiny-migrate-pin"
    assert artifact_record(GET_AFTER_UNLOCK[:3], "fuzz_preempt", ["get-after-unlock"],
                           "<test>", fixes=["all"]) is None
    assert artifact_record(GET_AFTER_UNLOCK, "fuzz_preempt", [], "<test>",
                           fixes=["all"]) is None


def _libfuzzer_mutate(data: bytes, max_size: int) -> bytes:
    return b"libfuzzer"[:max_size]


def test_the_mutator_edits_preemptions() -> None:
    """Each mutation keeps the scenario and first-task bytes in place (or changes exactly one
    of them), is deterministic in its seed, respects max_size, and over many seeds inserts,
    deletes, moves, retargets and reorders records, and hands some to libFuzzer."""
    data = bytes([PIN, 1, 46, 13, 30])
    seen: set[str] = set()
    for seed in range(400):
        out = _mutate.mutate(data, 64, seed, ntasks_of, _libfuzzer_mutate)
        assert out == _mutate.mutate(data, 64, seed, ntasks_of, _libfuzzer_mutate)
        if out == b"libfuzzer":
            seen.add("libfuzzer")
            continue
        recs = out[2:]
        if out[:2] != data[:2]:
            assert out[0] == data[0] or out[1] == data[1]
            seen.add("head")
        elif len(recs) == 4:
            seen.add("insert-end" if recs[:3] == data[2:] else "insert")
            assert sum(b // 2 < 20 for b in recs) >= 2  # the new one's gap is mostly short
        elif len(recs) == 2:
            seen.add("delete")
        elif sorted(recs) == sorted(data[2:]) and recs != data[2:]:
            seen.add("swap")
        elif recs != data[2:]:
            changed = [i for i in range(3) if recs[i] != data[2 + i]]
            assert len(changed) == 1
            i = changed[0]
            if recs[i] % 2 == data[2 + i] % 2:
                assert 1 <= abs(recs[i] // 2 - data[2 + i] // 2) <= 3
                seen.add("move")
            else:
                assert recs[i] // 2 == data[2 + i] // 2
                seen.add("retarget")
    assert seen == {"libfuzzer", "head", "insert", "insert-end", "delete", "swap", "move",
                    "retarget"}
    assert len(_mutate.mutate(bytes(40), 8, 3, ntasks_of, _libfuzzer_mutate)) <= 8


def test_committed_preempt_seeds_are_the_generated_ones() -> None:
    made = seeds.preempt_seeds()
    committed = {p.name: p.read_bytes() for p in (ROOT / "corpus" / "fuzz_preempt").iterdir()}
    assert committed == made
    assert {d[0] for d in made.values()} == set(range(len(CANONICAL_NAMES)))


@pytest.mark.slow
def test_migfuzz_fuzz_preempt_turns_its_crash_into_a_finding(tmp_path: Path) -> None:
    """End to end, real libFuzzer: the target runs the seed that is get-after-unlock, crashes,
    and ``migfuzz fuzz`` converts the artifact with ``DECODERS['fuzz_preempt']`` into a finding
    file that replays; the raw artifact replays through ``migfuzz repro`` too. A target whose
    ``TestOneInput`` decoded otherwise would not crash on this seed (nor on its one-preemption
    prefix alone, test_the_decoder_reaches_a_depth_2_race_with_two_records)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "get-after-unlock").write_bytes(GET_AFTER_UNLOCK)
    out = tmp_path / "out"
    assert main(["fuzz", "fuzz_preempt", "--seconds", "60", "--fixes", "all",
                 "--bug", "get-after-unlock", "--corpus", str(corpus), "--out", str(out)]) == 1
    (found,) = out.glob("*.json")
    rec = load(found)
    assert rec.signature == "use-after-free in get_page"
    assert rec.origin["fuzz_target"] == "fuzz_preempt"
    assert main(["repro", str(found), "--no-timeline"]) == 1
    (artifact,) = (out / "fuzz-fuzz_preempt" / "artifacts").glob("crash-*")
    assert artifact.read_bytes() == GET_AFTER_UNLOCK
    assert main(["repro", str(artifact), "--bug", "get-after-unlock", "--fix", "all",
                 "--no-timeline"]) == 1


def test_a_pinned_scenario_is_kept_by_every_mutation() -> None:
    pin = scenario_byte("migrate-vs-fault")
    for seed in range(200):
        for own in (True, False):
            out = _mutate.mutate(bytes([PIN, 1, 46]), 64, seed, ntasks_of,
                                 lambda d, m: bytes([7]) + d, own=own, pin=pin)
            assert out[0] == pin
    with pytest.raises(ScenarioError, match="unknown scenario 'nowhere'"):
        scenario_byte("nowhere")


@pytest.mark.slow
def test_the_custom_mutator_reaches_libfuzzer(tmp_path: Path) -> None:
    """libFuzzer runs the target's mutator: with MIGFUZZ_SCENARIO every input it keeps picks
    that scenario (libFuzzer's own mutations would change the first byte); an unknown name is
    a one-line error, exit 2."""
    def run(corpus: Path, scenario: str) -> subprocess.CompletedProcess[str]:
        corpus.mkdir()
        env = dict(os.environ, MIGFUZZ_SCENARIO=scenario, MIGFUZZ_FIXES="all", MIGFUZZ_BUGS="")
        return subprocess.run(
            [sys.executable, "-m", "fuzzers.fuzz_preempt", str(corpus), "-runs=150", "-seed=1"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    proc = run(tmp_path / "c", "tiny-migrate-pin")
    assert proc.returncode == 0, proc.stderr[-2000:]
    kept = [p.read_bytes() for p in (tmp_path / "c").iterdir()]
    assert len(kept) > 3 and {d[0] for d in kept} == {PIN}
    bad = run(tmp_path / "bad", "nowhere")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith(
        "fuzz_preempt: MIGFUZZ_SCENARIO: unknown scenario 'nowhere'")
