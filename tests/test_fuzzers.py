"""The fuzzers: a total decoder, interleaving features, finding conversion, and libFuzzer runs
that find planted bugs (the ones that start libFuzzer are short: the bug is reached from the
committed seed corpus in the first executions)."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzers import _coverage, _harness, _ops
from fuzzers._targets import DECODERS
from migfuzz.bugs import injected
from migfuzz.cli import main
from migfuzz.findings import load
from migfuzz.fuzz import artifact_record
from stress.run import run_scenario
from stress.workload import validate
from target.bugs import inject
from target.fixes import lookup
from target.kernel import Event, LockFields
from target.mm.locking import ANON_VMA_LOCK, PG_LOCKED, PTL

ROOT = Path(__file__).resolve().parent.parent


@given(st.binary(max_size=200))
def test_every_input_decodes_to_a_valid_scenario(data: bytes) -> None:
    scenario, schedule = _ops.decode(data)
    validate(scenario)  # raises ScenarioError on anything malformed
    assert data.endswith(schedule)


def test_decoder_survives_many_random_inputs_and_runs_them() -> None:
    """20,000 random inputs decode; 300 of them run on the model with every upstream fix
    with no finding and no harness error (the slow test_decoder_survives_a_million_random_inputs
    runs a million through the decoder; V2 as posted has real flaws that random inputs reach)."""
    rng = random.Random(5)
    with injected([], ["all"]):
        for i in range(20_000):
            data = rng.randbytes(rng.randrange(0, 80))
            for name, decode in DECODERS.items():
                scenario, scheduler = decode(data)
                validate(scenario)
                if i < 100:
                    scheduler.new_execution()
                    out = run_scenario(scenario, scheduler, max_steps=20_000)
                    assert out.finding is None, (name, data.hex(), out.finding)


def test_same_bytes_same_run() -> None:
    data = bytes(range(40))
    for decode in DECODERS.values():
        a_sc, a = decode(data)
        b_sc, b = decode(data)
        a.new_execution()
        b.new_execution()
        assert run_scenario(a_sc, a).trace_key == run_scenario(b_sc, b).trace_key


def test_features_see_order_not_just_code() -> None:
    """Two interleavings of the same operations give different feature sets."""
    pte = {"mm": "mm1", "addr": 0, "old": "P(0,wdy)", "new": "M(0)"}
    ptl = LockFields(PTL, lock="mm1.ptl[0]")
    one = [Event(1, 0, "switch", {}), Event(1, 0, "lock", ptl),
           Event(2, 1, "switch", {}), Event(2, 1, "pte", pte)]
    two = [Event(1, 1, "switch", {}), Event(1, 1, "pte", pte),
           Event(2, 0, "switch", {}), Event(2, 0, "lock", ptl)]
    f1, f2 = _coverage.features(one), _coverage.features(two)
    assert f1 and f2 and f1 != f2
    assert "pte:PM:1" in f1 and "pte:PM:1" in f2  # what happened is the same ...
    assert "sw:lock:pte_lock>1" in f1  # ... what was interrupted differs
    assert "ph:pte_lock>1" in f1 and not any(x.startswith("ph:") for x in f2)


def test_conflicting_accesses_in_each_order_are_two_features() -> None:
    """Two tasks touching one pte give a ``cf`` feature per order; other ptes, or one task
    touching a pte twice, give none; instances of a lock class share one class name."""
    def touch(tid: int, addr: int, old: str, new: str) -> list[Event]:
        return [Event(0, tid, "switch", {}),
                Event(0, tid, "pte", {"mm": "mm1", "addr": addr, "old": old, "new": new})]

    ab = _coverage.features(touch(0, 0, "P(0,wdy)", "M(0)") + touch(1, 0, "M(0)", "None"))
    ba = _coverage.features(touch(1, 0, "P(0,wdy)", "M(0)") + touch(0, 0, "M(0)", "None"))
    apart = _coverage.features(touch(0, 0, "P(0,wdy)", "M(0)") + touch(1, 1, "M(0)", "None"))
    assert "cf:0.pte:PM>1.pte:MN" in ab and "cf:1.pte:PM>0.pte:MN" in ba
    assert "pp:PM>MN" in ab and "pp:PM>MN" in ba  # one pte's two transitions, whoever did them
    assert not any(x.startswith(("cf:", "pp:")) for x in apart)


def _lock(name: str, cls: object) -> Event:
    return Event(0, 0, "lock", LockFields(cls, lock=name))  # type: ignore[arg-type]


def test_lock_class_comes_from_the_event() -> None:
    """Instances of a class are one feature, whatever their names: the class rides on the
    event (``mm1.ptl[0]``/``mm1.ptl[1]`` one class; an anon_vma's lock is
    ``anon_vma->lock``, not ``lock``), and classes stay apart."""
    c = _coverage.lock_class
    assert c(_lock("mm1.ptl[0]", PTL)) == c(_lock("mm1.ptl[1]", PTL)) == "pte_lock"
    assert c(_lock("anon_vma4.lock", ANON_VMA_LOCK)) == "anon_vma->lock"
    assert c(_lock("anon_vma4.lock", ANON_VMA_LOCK)) != c(_lock("page4.PG_locked", PG_LOCKED))
    # a name that looks like another class does not fool it: the name is not read
    assert c(_lock("page4.PG_locked", PTL)) == "pte_lock"


def test_lock_features_of_a_real_run_name_lockdep_classes() -> None:
    """Through a traced run of the model: every lock event carries its lockdep class, and the
    lock features name classes of target.mm.locking, never an instance."""
    from stress.scenarios import CANONICAL
    from stress.schedulers import RandomScheduler
    from target.mm import locking

    classes = {v.name for v in vars(locking).values() if type(v).__name__ == "LockClass"}
    sched = RandomScheduler(3)
    sched.new_execution()
    out = run_scenario(CANONICAL["migrate-vs-fork-exit"](), sched, trace=True)
    locks = [e for e in out.events or [] if e.kind in ("lock", "unlock")]
    assert locks and all(e.lock_class is not None for e in locks)
    names = {e.fields["lock"] for e in locks}
    assert any(".ptl[" in n for n in names) and any(n.startswith("anon_vma") for n in names)
    lk = {f for f in _coverage.features(out.events or []) if f.startswith("lk:")}
    named = {f"lk:{a}>{b}" for a in [*classes, "-"] for b in classes}
    assert lk and lk <= named  # (class names hold ">" themselves: compare whole features)


def test_report_without_setup_is_a_no_op() -> None:
    base = _coverage._base
    _coverage._base = None
    try:
        _coverage.report({"anything"})  # no atheris counters reserved: must not raise
    finally:
        _coverage._base = base


def _libfuzzer_cov_ft(stderr: str) -> tuple[int, int]:
    line = next(x for x in stderr.splitlines() if "INITED" in x)
    m = re.search(r"cov: (\d+) ft: (\d+)", line)
    assert m, line
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize(("target", "families"),
                         [*((t, "") for t in sorted(DECODERS)), ("fuzz_schedule", "cf,ph"),
                          ("fuzz_preempt", ",".join(sorted(_coverage.FAMILIES
                                                           - _coverage.POSITION_FAMILIES)))])
def test_feedback_reaches_libfuzzer(target: str, families: str) -> None:
    """libFuzzer's own cov/ft grow by exactly the counters the seeds' features hit.

    Both runs trace and compute the features (``--feedback-trace-only`` is the control), so
    the same instrumented code runs and the difference is only what libFuzzer is told. A
    feedback that no longer reaches libFuzzer (a stale ``_trace_branch``, an emptied
    ``report()``) gives a difference of zero. With ``MIGFUZZ_FEEDBACK_FAMILIES`` (the bench's
    ablations) only the named families' counters reach it."""
    keep = set(families.split(",")) if families else None
    seeds = sorted((ROOT / "corpus" / target).iterdir())
    hit: set[int] = set()
    decode = DECODERS[target]
    with inject(lookup(["all"])):  # as the libFuzzer runs below (MIGFUZZ_FIXES=all)
        for f in seeds:
            scenario, scheduler = decode(f.read_bytes())
            scheduler.new_execution()
            outcome = run_scenario(scenario, scheduler, trace=True,
                                   max_steps=_harness.MAX_STEPS)
            assert outcome.events is not None
            hit |= {_coverage.counter(x) for x in _coverage.features(outcome.events)
                    if keep is None or x.split(":", 1)[0] in keep}
    assert len(hit) > 20  # the seeds are varied enough for the comparison to mean something
    on = _libfuzzer_cov_ft(_libfuzzer(target, str(ROOT / "corpus" / target), "-runs=0",
                                      families=families).stderr)
    off = _libfuzzer_cov_ft(_libfuzzer(target, str(ROOT / "corpus" / target), "-runs=0",
                                       "--feedback-trace-only").stderr)
    assert on[0] - off[0] == len(hit), (on, off, len(hit))
    assert on[1] - off[1] >= len(hit), (on, off, len(hit))


def test_artifact_becomes_a_finding_record() -> None:
    """The schedule fuzzer's input 'scenario byte + schedule' with a bug that every
    migration hits gives a record that replays."""
    names = sorted(__import__("stress.scenarios", fromlist=["CANONICAL"]).CANONICAL)
    data = bytes([names.index("migrate-vs-fault")]) + bytes(40)
    rec = artifact_record(data, "fuzz_schedule", ["unlock-before-remove"], "<test>")
    assert rec is not None and rec.kind == "migration-entry-leak"
    assert rec.origin["input_hex"] == data.hex()
    assert artifact_record(data, "fuzz_schedule", [], "<test>") is None


def _libfuzzer(target: str, *args: str, bug: str = "", fixes: str = "all",
              families: str = "") -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ, MIGFUZZ_BUGS=bug, MIGFUZZ_FIXES=fixes,
               MIGFUZZ_FEEDBACK_FAMILIES=families)
    return subprocess.run([sys.executable, "-m", f"fuzzers.{target}", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("target", sorted(DECODERS))
def test_fuzzer_runs_seed_corpus_clean(target: str) -> None:
    """Each target runs its committed seeds on the model with every upstream fix without a
    crash."""
    proc = _libfuzzer(target, str(ROOT / "corpus" / target), "-runs=0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "FuzzFinding" not in proc.stdout + proc.stderr


def test_an_unknown_feedback_family_is_a_usage_error() -> None:
    """A misspelt ``MIGFUZZ_FEEDBACK_FAMILIES`` name stops the target with a one-line error,
    exit 2, before libFuzzer starts (it used to report nothing of that family, silently)."""
    proc = _libfuzzer("fuzz_preempt", str(ROOT / "corpus" / "fuzz_preempt"), "-runs=0",
                      families="cf,nearness,ph")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "fuzz_preempt: MIGFUZZ_FEEDBACK_FAMILIES: no feature family 'nearness' (one of: av, ")


@pytest.mark.parametrize("target", sorted(DECODERS))
def test_fuzzer_finds_a_planted_bug(target: str, tmp_path: Path) -> None:
    """missing-get-new breaks every successful migration: each target's seeds reach one."""
    (tmp_path / "work").mkdir()
    proc = _libfuzzer(target, str(tmp_path / "work"), str(ROOT / "corpus" / target),
                      "-max_total_time=120", "-max_len=512", f"-artifact_prefix={tmp_path}/",
                      "-seed=1", bug="missing-get-new")
    # atheris prints the uncaught exception on stdout, libFuzzer its report on stderr
    assert "FuzzFinding" in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert list(tmp_path.glob("crash-*"))


def test_migfuzz_fuzz_saves_a_finding_and_repro_accepts_the_artifact(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for f in (ROOT / "corpus" / "fuzz_schedule").iterdir():
        (corpus / f.name).write_bytes(f.read_bytes())
    code = main(["fuzz", "fuzz_schedule", "--seconds", "120", "--bug", "unlock-before-remove",
                 "--corpus", str(corpus), "--out", str(out)])
    assert code == 1
    files = list(out.glob("*.json"))
    assert len(files) == 1
    assert main(["repro", str(files[0]), "--no-timeline"]) == 1
    artifact = next((out / "fuzz-fuzz_schedule" / "artifacts").glob("crash-*"))
    assert main(["repro", str(artifact), "--bug", "unlock-before-remove",
                 "--no-timeline"]) == 1
    # Without the bug the raw input is no finding at all: a clear usage error, exit 2.
    capsys.readouterr()
    assert main(["repro", str(artifact), "--target", "fuzz_schedule"]) == 2
    assert "produces no finding" in capsys.readouterr().err


def test_unknown_fuzz_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "fuzz_nothing", "--seconds", "1"]) == 2
    assert "unknown fuzz target" in capsys.readouterr().err


@pytest.mark.slow
def test_decoder_survives_a_million_random_inputs() -> None:
    rng = random.Random(6)
    for _ in range(1_000_000):
        scenario, _ = _ops.decode(rng.randbytes(rng.randrange(0, 64)))
        validate(scenario)


def test_migfuzz_fuzz_jobs_uses_libfuzzer_fork_mode(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--jobs 2 runs libFuzzer's -fork=2: its workers start through the executable wrapper
    (argv[0]) and really execute inputs (a wrong argv[0] leaves every worker at 0 execs);
    the inputs that added coverage end up in --corpus (the nightly's persistent corpus
    grows), exactly those of the work corpus it lacked."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for f in (ROOT / "corpus" / "fuzz_sequential").iterdir():
        (corpus / f.name).write_bytes(f.read_bytes())
    before = {p.name for p in corpus.iterdir()}
    assert main(["fuzz", "fuzz_sequential", "--seconds", "5", "--jobs", "2", "--fixes", "all",
                 "--corpus", str(corpus), "--out", str(tmp_path / "out")]) == 0
    summary = capsys.readouterr().out
    execs = int(summary.split(" executions")[0].split()[-1].replace(",", ""))
    assert execs > 0, summary
    work = {p.name for p in (tmp_path / "out" / "fuzz-fuzz_sequential" / "corpus").iterdir()}
    kept = int(summary.split("new corpus inputs kept: ")[1].split()[0])
    assert kept == len(work - before) > 0, summary
    assert {p.name for p in corpus.iterdir()} == before | work


FLAW_INPUT = bytes.fromhex("f610fb1c7fd92d5fa2e81478007152dea8651f3f")
"""A random fuzz_scenario input that reaches the pte_unmap_unlock(pte) slip of V2 as posted
(kmap-misuse in remove_migration_pte) and runs clean with every upstream fix."""


def test_fuzz_process_applies_the_fixes_of_its_environment(tmp_path: Path) -> None:
    """MIGFUZZ_FIXES reaches the libFuzzer process: the flaw's input crashes without the
    fixes and runs clean with them."""
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "flaw").write_bytes(FLAW_INPUT)
    v2 = _libfuzzer("fuzz_scenario", str(tmp_path / "seeds"), "-runs=0", fixes="")
    assert "FuzzFinding" in v2.stdout + v2.stderr and "kmap-misuse" in v2.stdout + v2.stderr
    fixed = _libfuzzer("fuzz_scenario", str(tmp_path / "seeds"), "-runs=0",
                       fixes="remove-migration-pte-ptep")
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert "FuzzFinding" not in fixed.stdout + fixed.stderr


def test_migfuzz_fuzz_and_repro_pass_the_fixes(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`migfuzz fuzz --fixes all` runs the fuzzer with the fixes (no finding from the flaw's
    input);
    without it the finding file records no fixes, and `repro --fix` of the raw artifact
    applies the fix (no finding: exit 2)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "flaw").write_bytes(FLAW_INPUT)
    assert main(["fuzz", "fuzz_scenario", "--seconds", "3", "--fixes", "all",
                 "--corpus", str(corpus),
                 "--out", str(tmp_path / "fixed")]) == 0
    # a corpus of the flaw's input alone: the run above adds what it kept to ``corpus``, and
    # which of those crash first on V2 (another flaw of remove_migration_pte) depends on the
    # features that run kept them for
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "flaw").write_bytes(FLAW_INPUT)
    assert main(["fuzz", "fuzz_scenario", "--seconds", "3", "--corpus", str(alone),
                 "--out", str(tmp_path / "v2")]) == 1
    (found,) = (tmp_path / "v2").glob("*.json")
    assert load(found).kind == "kmap-misuse" and load(found).fixes == []
    artifact = next((tmp_path / "v2" / "fuzz-fuzz_scenario" / "artifacts").glob("crash-*"))
    assert main(["repro", str(artifact), "--target", "fuzz_scenario", "--no-timeline"]) == 1
    capsys.readouterr()
    assert main(["repro", str(artifact), "--target", "fuzz_scenario", "--no-timeline",
                 "--fix", "remove-migration-pte-ptep"]) == 2
    assert "produces no finding" in capsys.readouterr().err


def test_the_extension_byte_brings_threads_move_pages_and_a_second_migrator() -> None:
    """Bit 7 of the first prefault mask reads the extension byte: here a sibling thread of
    process 1, move_pages among the migrator's ops and a second migrator (issue 13), so the
    fuzzers reach the races of one mm and of overlapping migrations as the generator does."""
    data = bytes([0, 1, 0, 0x83, 0,  # flags; process 1: 2 pages, prefault 0-1, extended; no ops
                  0, 0, 0, 0,  # migrator (first reading, without kind bytes)
                  0b0111,  # extension: second migrator, move_pages, one thread of process 1
                  0, 0, 0, 0, 0, 0,  # migrator again: 1 op, a move_pages of address 0
                  0, 0, 0,  # the thread: 1 op, a write of address 0
                  0, 0, 0, 0, 1])  # migrator2: 1 op, a sys_migrate_pages
    scenario, _ = _ops.decode(data)
    assert [(t.name, t.ops) for t in scenario.tasks] == [
        ("migrator", [("move_pages", 1, 0, 1, 0)]),
        ("p1.t1", [("write", 1, 0, 1001)]),
        ("migrator2", [("migrate", 1, 0, 1, 0)]),
    ]
    # and about half of all inputs use it, as libFuzzer's mutations flip that bit
    rng = random.Random(13)
    decoded = [_ops.decode(rng.randbytes(48))[0] for _ in range(400)]
    assert sum(any(".t" in t.name for t in sc.tasks) for sc in decoded) > 40
    assert sum(any(t.name == "migrator2" for t in sc.tasks) for sc in decoded) > 40
