"""The finding file format, the store, trace hashes and the timeline (no CLI here)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from migfuzz._errors import FindingFileError, HarnessError
from migfuzz.bugs import injected
from migfuzz.campaign import CampaignConfig, plan_run
from migfuzz.findings import (
    FORMAT_VERSION,
    FindingRecord,
    FindingStore,
    file_name,
    load,
    pretty_json,
    write_atomic,
)
from migfuzz.replay import confirm_record, run_traced, trace_hash
from migfuzz.strategies import StrategySpec, make_scheduler, spec_for_run
from migfuzz.timeline import describe, render
from stress.run import run_scenario
from stress.scenarios import canonical, generate


def _record(**overrides: object) -> FindingRecord:
    sc = canonical("tiny-migrate-fault")
    rec = FindingRecord(
        signature="migration-entry-leak in unlock_page", kind="migration-entry-leak",
        message="page pfn 0 unlocked with 1 migration entries", function="unlock_page",
        task="migrator", step=12, details={"pfn": 0, "chain": ("a", "b")}, scenario=sc,
        strategy=StrategySpec("random", 7), executor="direct", schedule=[0, 1, 1, 0],
        bugs=["some-bug"], max_steps=5000, steps=20, trace_hash="sha256:" + "ab" * 16,
        first_seen="2025-01-01T00:00:00+00:00", last_seen="2025-01-01T00:00:00+00:00",
        model_commit="deadbeef", origin={"campaign_seed": 0, "run": 7},
    )
    return replace(rec, **overrides)  # type: ignore[arg-type]


def test_record_round_trips_through_its_file(tmp_path: Path) -> None:
    rec = _record()
    path = tmp_path / rec.file_name()
    write_atomic(path, rec.dumps())
    back = load(path)
    assert back.to_json() == rec.to_json()
    assert back.schedule == [0, 1, 1, 0] and back.details["chain"] == ["a", "b"]
    d = json.loads(path.read_text())
    assert d["format"] == "migfuzz-finding" and d["format_version"] == FORMAT_VERSION
    assert d["decisions"] == 4 and d["key"] == rec.key


def test_file_names_are_stable_hashes_of_the_key() -> None:
    a = _record()
    assert a.file_name() == file_name(a.kind, a.key)
    assert a.file_name().startswith("migration-entry-leak-") and len(a.file_name()) == 42
    assert a.file_name() == _record(message="other text", step=99).file_name()
    assert a.file_name() != _record(bugs=[]).file_name()  # another model variant
    assert a.file_name() != _record(signature="deadlock in x").file_name()


def test_pretty_json_is_json() -> None:
    value = {"a": [1, 2, [3, "x y"]], "b": {"c": [], "d": {}}, "e": "q\"uote"}
    assert json.loads(pretty_json(value)) == value


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d.pop("signature"), "field signature: missing"),
        (lambda d: d.update(step="12"), "field step: Input should be a valid integer"),
        (lambda d: d.update(hits=True), "field hits: Input should be a valid integer"),
        (lambda d: d.update(format_version=FORMAT_VERSION + 1), "newer migfuzz"),
        (lambda d: d.update(format="other"), "not a finding file"),
        (lambda d: d.update(schedule=[0, "1"]), "field schedule: schedule must be a list"),
        (lambda d: d.update(schedule=[0, 5]), "beyond the scenario"),
        (lambda d: d.update(decisions=99), "truncated or edited"),
        (lambda d: d.update(schedule_encoding="zip"), "field schedule_encoding:"),
        (lambda d: d["scenario"]["tasks"][0].update(ops=[["fly", 1]]),
         "field scenario.tasks[0].ops: op 0 ['fly', 1]: unknown operation"),
        (lambda d: d.update(executor="threads"), "field executor:"),
        (lambda d: d.update(bugs="x"), "field bugs: Input should be a valid list"),
    ],
)
def test_invalid_files_are_rejected_with_the_reason(
    tmp_path: Path, mutate: object, problem: str
) -> None:
    rec = _record()
    d = json.loads(json.dumps(rec.to_json()))
    if d["schedule_encoding"] != "json-list":  # edit the decoded form
        d["schedule_encoding"], d["schedule"] = "json-list", rec.schedule
    mutate(d)  # type: ignore[operator]
    path = tmp_path / "f.json"
    path.write_text(json.dumps(d))
    with pytest.raises(FindingFileError) as info:
        load(path)
    assert problem in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "no such file"), ("", "empty file"), ('{"format": "migfuzz-fi', "not valid JSON"),
     ("[1, 2]", "not a JSON object"), (b"\xff\xfe", "not valid JSON")],
)
def test_unreadable_files_are_rejected(tmp_path: Path, content: object, problem: str) -> None:
    path = tmp_path / "f.json"
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(FindingFileError, match=problem):
        load(path)


def test_schedules_use_the_stress_codec_and_a_mangled_one_is_rejected(tmp_path: Path) -> None:
    d = _record().to_json()
    assert d["schedule_encoding"] == "stress.schedule" and d["schedule"].startswith("mfs1:")
    body = d["schedule"]
    d["schedule"] = body[:-1] + ("a" if body[-1] != "a" else "b")
    path = tmp_path / "f.json"
    path.write_text(json.dumps(d))
    with pytest.raises(FindingFileError, match="field schedule: checksum mismatch"):
        load(path)


def test_truncated_real_file_is_rejected(tmp_path: Path) -> None:
    text = _record().dumps()
    path = tmp_path / "f.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(FindingFileError, match="truncated or corrupt"):
        load(path)


def test_write_atomic_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.json"
    write_atomic(path, "one")
    write_atomic(path, "two")
    assert path.read_text() == "two"
    assert os.listdir(path.parent) == ["x.json"]


def test_store_keeps_the_smaller_reproducer_and_adds_hits(tmp_path: Path) -> None:
    store = FindingStore(tmp_path)
    big = _record(hits=3)
    store.save(big)
    small = _record(schedule=[0, 1], hits=2, first_seen="2026-01-01T00:00:00+00:00")
    merged, existed = store.save_merged(small, small.hits)
    assert existed and merged.schedule == [0, 1] and merged.hits == 5
    assert merged.first_seen == big.first_seen
    larger = _record(schedule=[0, 1, 0, 1, 0], hits=1, last_seen="2027-01-01T00:00:00+00:00")
    merged, _ = store.save_merged(larger, larger.hits)
    assert merged.schedule == [0, 1] and merged.hits == 6
    assert merged.last_seen == "2027-01-01T00:00:00+00:00"
    assert load(store.path_for(larger)).to_json() == merged.to_json()


def test_a_tie_of_size_goes_to_the_campaigns_lower_run_whoever_reported_first(
        tmp_path: Path) -> None:
    """Two workers report equal-size reproducers of one signature, the higher run first: the
    file ends with the lower run (the campaign's order), as if they had come in run order.
    A file another writer left keeps its record on a tie."""
    store = FindingStore(tmp_path)
    later = _record(origin={"campaign_seed": 0, "run": 9}, schedule=[1, 0, 0, 1])
    written, _ = store.save_merged(later, 1)
    earlier = _record(origin={"campaign_seed": 0, "run": 4})
    assert earlier.size() == later.size()
    merged, _ = store.save_merged(earlier, 1, replaces=written)
    assert merged.origin["run"] == 4 and merged.hits == 2
    other = _record(origin={"campaign_seed": 5, "run": 1}, schedule=[0, 0, 1, 1])
    merged, _ = store.save_merged(other, 1, replaces=later)  # not what the file holds
    assert merged.origin["run"] == 4 and merged.hits == 3


def test_store_moves_a_corrupt_file_aside(tmp_path: Path) -> None:
    store = FindingStore(tmp_path)
    rec = _record()
    store.path_for(rec).write_text("{broken")
    assert store.existing(rec) is None
    assert (tmp_path / (rec.file_name() + ".corrupt")).exists()
    assert store.warnings and "moved aside" in store.warnings[0]


def test_runs_are_pure_functions_of_seed_and_index() -> None:
    cfg = CampaignConfig(seed=3, runs=10)
    a, b = plan_run(cfg, 5), plan_run(cfg, 5)
    assert a[0].dumps() == b[0].dumps() and a[1] == b[1]
    assert plan_run(CampaignConfig(seed=0), 4)[0].dumps() == generate(4).dumps()
    assert plan_run(cfg, 5)[0].dumps() != plan_run(cfg, 6)[0].dumps()
    assert spec_for_run("portfolio", 1, 0).name == "random"


def test_trace_hash_is_stable_and_sensitive() -> None:
    sc = canonical("migrate-vs-fault")

    def traced(seed: int, executor: str) -> str:
        sched = make_scheduler(StrategySpec("random", seed))
        return trace_hash(run_traced(sc, sched, executor=executor, max_steps=50_000))

    assert traced(1, "direct") == traced(1, "direct") == traced(1, "trio")
    assert traced(1, "direct") != traced(2, "direct")


def test_traced_runs_record_operations_for_the_timeline() -> None:
    sc = canonical("migrate-vs-fault")
    out = run_traced(sc, make_scheduler(StrategySpec("random", 0)), executor="direct",
                     max_steps=50_000)
    assert out.events is not None
    ops = [f["op"] for _, _, e, f in out.events if e == "op"]
    assert ops and all(isinstance(o, str) for o in ops)
    assert sum(len(t.ops) for t in sc.tasks) == len(ops)
    # The op events come from the workload itself: any traced run has them, and tracing
    # does not change the decisions.
    sched = make_scheduler(StrategySpec("random", 0))
    sched.new_execution()
    plain = run_scenario(sc, sched, trace=False)
    assert plain.events is None and plain.schedule == out.schedule


def test_timeline_has_one_column_per_task() -> None:
    events = [
        (1, 0, "op", {"op": "write 1 0 7"}),
        (2, 1, "switch", {}),
        (2, 1, "lock", {"lock": "mm1.mmap_sem", "read": True}),
        (3, 1, "pte", {"mm": "mm1", "addr": 0, "old": "P(0,wdy)", "new": "M(0)"}),
        (4, 0, "get_page", {"pfn": 0, "count": 3}),
        (5, -1, "finding", {"kind": "deadlock"}),
    ]
    text = render(events, ["user", "migrator"], width=100)
    lines = text.splitlines()
    assert lines[0].split("|")[1].strip() == "user"
    assert lines[0].split("|")[2].strip() == "migrator"
    row = next(line for line in lines if "down_read" in line)
    assert row.split("|")[1].strip() == "" and "mm1.mmap_sem" in row.split("|")[2]
    assert "switch" not in text and "pte mm1@0 P(0,wdy) -> M(0)" in text
    assert render(events, ["user", "migrator"], width=100, tail=2).count("earlier events") == 1


@pytest.mark.parametrize(
    ("event", "fields", "text"),
    [
        ("lock", {"lock": "L"}, "lock L"),
        ("lock", {"lock": "L", "trylock": True}, "trylock L"),
        ("lock", {"lock": "S", "read": False}, "down_write S"),
        ("unlock", {"lock": "S", "read": True}, "up_read S"),
        ("unlock", {"lock": "L"}, "unlock L"),
        ("put_page", {"pfn": 3, "count": 1}, "put_page pfn3 -> 1"),
        ("mapcount", {"pfn": 3, "mapcount": 0}, "mapcount pfn3 = 0"),
        ("alloc", {"pfn": 8, "count": 1}, "alloc pfn8"),
        ("free", {"pfn": 8}, "free pfn8"),
        ("store", {"mm": "mm1", "addr": 0, "pfn": 2, "value": 5}, "store mm1@0 pfn2 = 5"),
        ("dma", {"pid": 1, "addr": 0, "pfn": 2, "value": 5}, "dma pid1@0 pfn2 = 5"),
        ("new-kind", {"x": 1}, "new-kind x=1"),
    ],
)
def test_event_phrases(event: str, fields: dict[str, object], text: str) -> None:
    assert describe(event, fields) == text


def test_the_one_path_to_a_finding_file_rebuilds_a_corpus_file_byte_for_byte() -> None:
    """``replay.confirm_record`` (what campaign, gate, fuzz and refresh all write through)
    gives back a committed reproducer from its decisions alone: the same bytes but for what
    a store keeps across saves (dates, hits, label) and the commit it ran at."""
    path = Path(__file__).resolve().parent.parent / "corpus/known/isolate-without-lru-recheck.json"
    rec = load(path)
    kw = dict(strategy=rec.strategy, executor=rec.executor, bugs=rec.bugs, fixes=rec.fixes,
              max_steps=rec.max_steps, origin=rec.origin)
    with injected(rec.bugs, rec.fixes):
        again = confirm_record(rec.scenario, rec.schedule, **kw)  # type: ignore[arg-type]
        with pytest.raises(HarnessError, match="does not reproduce"):  # not what was found
            confirm_record(rec.scenario, rec.schedule, signature="deadlock in elsewhere",
                           **kw)  # type: ignore[arg-type]
    assert again.digest() == rec.digest()
    kept = replace(again, first_seen=rec.first_seen, last_seen=rec.last_seen, hits=rec.hits,
                   known_flaw=rec.known_flaw, model_commit=rec.model_commit)
    assert kept.dumps() == path.read_text()
