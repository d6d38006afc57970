"""Issue 11: hostile and careless inputs and environments.

Every bad file is exit 2 with one line naming the field; nothing is written outside the output
directory; unexpected errors are exit 3 with the traceback in a log; outputs are checked before
any work; the exit status survives a closed pipe; workers die with their parent; two writers
of one directory merge.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

import migfuzz.campaign._worker as campaign_mod
import migfuzz.cli as cli_mod
import migfuzz.commands.repro as repro_cmd
from migfuzz.cli import main
from migfuzz.findings import FindingStore, file_name, load
from migfuzz.strategies import decode, encode
from migfuzz.timeline import last_touching

ROOT = Path(__file__).resolve().parent.parent
KNOWN = ROOT / "corpus" / "known"
REPRO = KNOWN / "get-after-unlock.json"  # reproduces with its bug, in 38 decisions


def run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code or 0)


def known() -> dict[str, Any]:
    """The committed reproducer as JSON, to be edited: without its digest, which would make
    every edit "corrupt" before the check a test is after."""
    data: dict[str, Any] = json.loads(REPRO.read_text())
    data.pop("digest", None)
    return data


def write(tmp_path: Path, d: Any, name: str = "f.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return p


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("migfuzz: error: "), err
    assert "Traceback" not in err
    return lines[0]


# -- path traversal -----------------------------------------------------------------------------


def test_a_kind_that_is_a_path_is_rejected_and_nothing_is_written_outside_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = known()
    d["kind"] = "../../escaped"
    f = write(tmp_path, d)
    out = tmp_path / "a" / "b" / "out"
    out.mkdir(parents=True)
    assert run_main(["minimize", str(f), "-o", str(out) + os.sep]) == 2
    assert "field kind:" in one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "f.json", "out"]
    with pytest.raises(ValueError, match="not a safe file name"):
        file_name("../x", "key")  # and the writer refuses it whatever built the record


@pytest.mark.parametrize("field", ["bugs", "fixes"])
def test_names_that_reach_a_catalog_or_path_have_a_safe_alphabet(
        tmp_path: Path, field: str, capsys: pytest.CaptureFixture[str]) -> None:
    d = known()
    d[field] = ["../x"]
    assert run_main(["repro", str(write(tmp_path, d))]) == 2
    assert f"field {field}[0]:" in one_error_line(capsys.readouterr().err)


# -- exact types, bounds: exit 2 naming the field -----------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["scenario"]["world"].update(pages_per_node=10**9),
         "scenario.world.pages_per_node"),
        (lambda d: d["scenario"]["world"].update(nodes="2"), "scenario.world.nodes"),
        (lambda d: d["scenario"]["world"].update(pages_per_node=2.5),
         "scenario.world.pages_per_node"),
        (lambda d: d["scenario"]["processes"][0]["vmas"][0].update(end=10**12),
         "scenario.processes[0].vmas[0].end"),
        (lambda d: d["scenario"]["processes"][0].update(pid=1.9), "scenario.processes[0].pid"),
        (lambda d: d["scenario"]["processes"][0].update(pid="1"), "scenario.processes[0].pid"),
        (lambda d: d["scenario"]["processes"][0].update(vmas="nodes"),
         "scenario.processes[0].vmas"),
        (lambda d: d["scenario"]["tasks"][0]["ops"][0].__setitem__(0, ["read"]),
         "scenario.tasks[0].ops"),
        (lambda d: d["scenario"]["tasks"][0]["ops"][0].__setitem__(2, -5),
         "scenario.tasks[0].ops"),
        (lambda d: d["scenario"]["world"].update(nodez=3), "scenario.world.nodez"),
        (lambda d: d["scenario"]["tasks"].extend([{"name": "t", "ops": []}] * 10_000),
         "scenario.tasks"),
        (lambda d: d.update(max_steps=10**12), "max_steps"),
        (lambda d: d["strategy"].update(name="pct", params={"frobs": 1}), "strategy"),
        (lambda d: d.update(typo_field=1), "typo_field"),
    ],
)
def test_bad_fields_exit_2_naming_the_field(
        tmp_path: Path, mutate: Any, field: str, capsys: pytest.CaptureFixture[str]) -> None:
    d = known()
    mutate(d)
    assert run_main(["repro", str(write(tmp_path, d))]) == 2
    assert f"field {field}" in one_error_line(capsys.readouterr().err)


def test_deep_nesting_and_huge_files_are_exit_2(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"format": "migfuzz-finding", "details": ' + "[" * 100_000 + "]" * 100_000
                    + "}")
    assert run_main(["repro", str(deep)]) == 2
    assert "not valid JSON" in one_error_line(capsys.readouterr().err)
    long_int = tmp_path / "int.json"
    long_int.write_text(re.sub(r'"step": \d+', '"step": ' + "9" * 5000, REPRO.read_text(),
                               count=1))
    assert run_main(["repro", str(long_int)]) == 2
    assert "not valid JSON" in one_error_line(capsys.readouterr().err)
    huge = tmp_path / "huge.json"
    huge.write_bytes(b" " * (5 << 20))
    assert run_main(["repro", str(huge)]) == 2
    assert "larger than" in one_error_line(capsys.readouterr().err)


# -- the file type is told from the content -----------------------------------------------------


def test_bug_on_a_finding_file_is_exit_2_in_any_encoding(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = REPRO.read_text()
    for name, data in (("utf8.json", text.encode()), ("bom.json", b"\xef\xbb\xbf" + text.encode()),
                       ("utf16.json", text.encode("utf-16"))):
        (tmp_path / name).write_bytes(data)
        assert run_main(["repro", "--bug", "nope", str(tmp_path / name)]) == 2
        assert "--bug is for raw fuzz artifacts" in one_error_line(capsys.readouterr().err)
    # Without --bug, the BOM or UTF-16 file is the finding file it is.
    assert load(tmp_path / "utf16.json").signature == "use-after-free in get_page"


def test_json_that_is_not_a_finding_is_raw_only_with_target(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "artifact"
    f.write_text("[1, 2, 3]")
    assert run_main(["repro", "--bug", "get-after-unlock", str(f)]) == 2
    assert "not a finding file (the top level is a JSON list)" in one_error_line(
        capsys.readouterr().err)
    f.write_text("{}")
    assert run_main(["repro", "--target", "fuzz_scenario", str(f)]) == 2
    # decoded and run as fuzz_scenario's input: it just finds nothing
    assert "as a raw input of fuzz_scenario" in one_error_line(capsys.readouterr().err)


# -- integrity: an edited file is corrupt, not fixed --------------------------------------------


def test_an_edited_signature_is_corrupt(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    d = known()
    d["signature"] = "use-after-free in put_page"
    assert run_main(["repro", str(write(tmp_path, d))]) == 2
    assert "field signature:" in one_error_line(capsys.readouterr().err)
    d = known()
    d["key"] = "use-after-free in get_page"  # the bug dropped from the key only
    assert run_main(["repro", str(write(tmp_path, d))]) == 2
    assert "field key:" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "edit",
    [lambda d: d["scenario"]["world"].update(config_swap=not d["scenario"]["world"]["config_swap"]),
     lambda d: d["scenario"]["processes"][0]["prefault"][0].__setitem__(1, 11),
     lambda d: d["scenario"]["tasks"][0]["ops"][0].__setitem__(3, 9),
     lambda d: d["strategy"].update(seed=1),
     lambda d: d.update(max_steps=d["max_steps"] - 1),
     lambda d: d.update(trace_hash="sha256:" + "0" * 32)],
    ids=["config_swap", "prefault", "op-argument", "strategy", "max_steps", "trace_hash"])
def test_an_edit_that_still_replays_is_corrupt(tmp_path: Path, edit: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Each of these edits of a file migfuzz wrote still replays to the same finding (the
    scenario edits: REPRODUCED, 'trace differs'); the digest tells the file was edited."""
    d = json.loads(load(REPRO).dumps())  # as migfuzz writes it today, with its digest
    assert run_main(["repro", "--no-timeline", str(write(tmp_path, d))]) == 1
    capsys.readouterr()
    edit(d)
    assert run_main(["repro", "--no-timeline", str(write(tmp_path, d))]) == 2
    assert "field digest: the file was edited after migfuzz wrote it" in one_error_line(
        capsys.readouterr().err)
    del d["digest"]  # a file from before digests: the edit replays, as it always did
    assert run_main(["repro", "--no-timeline", str(write(tmp_path, d))]) in (0, 1)
    capsys.readouterr()
    d = json.loads(load(REPRO).dumps())
    d["hits"], d["last_seen"] = 99, "2027-01-01T00:00:00+00:00"  # what migfuzz rewrites itself
    assert run_main(["repro", "--no-timeline", str(write(tmp_path, d))]) == 1


def test_a_padded_schedule_is_corrupt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = known()
    schedule = decode(d["schedule_encoding"], d["schedule"])
    _, d["schedule"] = encode([*schedule, 0, 1, 0])
    d["decisions"] = len(schedule) + 3
    assert run_main(["repro", "--no-timeline", str(write(tmp_path, d))]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert re.search(rf"fires after \d+ of its {len(schedule) + 3} decisions", line)
    assert "padded or edited" in line
    assert run_main(["repro", "--no-timeline", str(REPRO)]) == 1  # the genuine file


# -- harness errors, environment failures, exit statuses ---------------------------------------


def test_an_unexpected_exception_is_exit_3_with_the_traceback_in_a_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise KeyError("internal")

    monkeypatch.setattr(repro_cmd, "check", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert run_main(["repro", str(REPRO)]) == 3
    line = one_error_line(capsys.readouterr().err)
    assert "harness error" in line and "KeyError" in line
    log = Path(re.search(r"traceback in (\S+)\)", line).group(1))  # type: ignore[union-attr]
    assert log.parent == tmp_path and "Traceback" in log.read_text()


def test_disk_full_during_a_campaign_is_exit_3_keeping_what_was_saved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def full(self: FindingStore, record: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device", str(self.dir / "x.json"))

    monkeypatch.setattr(FindingStore, "save", full)
    rc = run_main(["stress", "--runs", "40", "--jobs", "1", "--executor", "direct",
                   "--bug", "unlock-before-remove", "--out", str(tmp_path)])
    assert rc == 3
    assert "disk full" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["nightly", "--report", "{file}"], "--report {file}: exists and is not a directory"),
        (["nightly", "--db", "{dir}"], "--db {dir}: is a directory"),
        (["nightly", "--db", "{file}"], "--db {file}: exists and is not a SQLite database"),
        (["gate", "--junit", "{dir}"], "--junit {dir}: is a directory"),
        (["stress", "--out", "{file}"], "--out {file}: exists and is not a directory"),
        (["minimize", str(REPRO), "-o", "{file}/x.json"], "{file}/x.json: {file} is not a"),
    ],
)
def test_outputs_are_checked_before_any_work(
        tmp_path: Path, argv: list[str], problem: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("not a database\n")
    (tmp_path / "dir").mkdir()
    subst = {"file": str(tmp_path / "file"), "dir": str(tmp_path / "dir")}
    argv = [a.format(**subst) for a in argv]
    for cmd in ("nightly", "gate", "stress", "minimize"):
        monkeypatch.setattr(cli_mod.COMMANDS[cmd], "run", lambda a: pytest.fail("work started"))
    assert run_main(argv) == 2
    assert problem.format(**subst) in one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file"]


def test_a_closed_pipe_keeps_the_exit_status() -> None:
    cmd = (f"{sys.executable} -m migfuzz.cli repro {REPRO} | head -c 1 >/dev/null; "
           "echo ${PIPESTATUS[0]}")
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.stdout.strip() == "1", r.stderr  # still reproduces, though nobody read it
    assert "Traceback" not in r.stderr


def test_a_ctrl_c_d_campaign_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    def ctrl_c(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt  # as the first Ctrl-C lands in --jobs 1's only run

    monkeypatch.setattr(campaign_mod, "run_scenario", ctrl_c)
    assert run_main(["stress", "--runs", "50", "--jobs", "1", "--executor", "direct",
                     "--scenario", "tiny-migrate-pin", "--out", str(tmp_path)]) == 130


# -- workers die with their parent --------------------------------------------------------------


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


@pytest.mark.skipif(sys.platform != "linux", reason="/proc and pidfd are Linux's")
def test_workers_exit_when_the_parent_is_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "migfuzz.cli", "stress", "--seconds", "600", "--jobs", "2",
         "--executor", "direct", "--out", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.stderr is not None
    try:
        proc.stderr.readline()  # the header
        proc.stderr.readline()  # the first progress line: the workers are running
        workers = _children(proc.pid)
        assert len(workers) == 2
        fds = [os.pidfd_open(w) for w in workers]
    finally:
        proc.kill()
        proc.wait()
    try:
        for fd in fds:  # a pidfd becomes readable when its process exits
            ready, _, _ = select.select([fd], [], [], 30)
            assert ready, "a worker outlived its parent"
    finally:
        for fd in fds:
            os.close(fd)
        for w in workers:  # never leave one running, whatever the assertion said
            with contextlib.suppress(ProcessLookupError):
                os.kill(w, signal.SIGKILL)


# -- two writers of one --out -------------------------------------------------------------------


def test_concurrent_writers_merge_hits_and_keep_the_smaller_reproducer(tmp_path: Path) -> None:
    small = load(REPRO)
    big = load(KNOWN / "get-after-unlock.json")
    big.scenario.tasks[0].ops.append(("read", 1, 0))  # same key, one op more
    store_a, store_b = FindingStore(tmp_path), FindingStore(tmp_path)
    store_a.save_merged(small, 5)
    written, existed = store_b.save_merged(big, 7)  # the other campaign's larger one
    assert existed and written.hits == 12 and written.size() == small.size()
    on_disk = load(store_a.path_for(small))
    assert on_disk.hits == 12 and on_disk.size() == small.size()


@pytest.mark.slow
def test_two_campaigns_on_one_out_add_up_their_hits(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "migfuzz.cli", "stress", "--runs", "60", "--jobs", "1",
            "--executor", "direct", "--bug", "unlock-before-remove", "--out", str(tmp_path),
            "--json"]
    procs = [subprocess.Popen([*argv, "--seed", str(s)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, cwd=ROOT) for s in (1, 2)]
    results = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    hits: dict[str, int] = {}
    for r in results:
        for f in r["findings"]:
            hits[f["file"]] = hits.get(f["file"], 0) + f["hits"]
    assert hits
    for path, n in hits.items():
        assert load(path).hits == n


# -- timelines: rss updates, unlocked peeks, and where a finding's cause is --------------------


def test_the_timeline_shows_rss_updates_unlocked_peeks_and_the_findings_last_causes(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["repro", "--width", "140", str(REPRO)]) == 1
    out = capsys.readouterr().out
    assert "peek mm1@0 = P(0,wdy) (no ptl)" in out  # handle_pte_fault's unlocked read
    assert "anon_rss mm1 = 1" in out  # remove_migration_pte's rss update
    after = out[out.index("FINDING at step"):]
    assert "the last events that touched pfn 0 (read these first):" in after
    cause = after.splitlines()[2:5]
    assert all("pfn0" in line for line in cause), cause


def test_a_quiescence_finding_names_its_swap_slot_and_the_ptes_that_held_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    """remove-pte-unlocked's leak is found after every task finished (step 121, task '-'):
    the slot's last holders are the migrator's pte writes, 14+ rows above the finding."""
    assert run_main(["repro", "--width", "140", str(KNOWN / "remove-pte-unlocked.json")]) == 1
    out = capsys.readouterr().out
    after = out[out.index("FINDING at step"):]
    assert after.startswith("FINDING at step") and " in -: page-leak in quiescence" in after
    assert "the last events that touched swap slot 1 (read these first):" in after
    cause = after.splitlines()[2:5]
    assert len(cause) == 3 and all("S(0:1)" in line for line in cause), cause


def test_last_touching_follows_the_object_the_details_name() -> None:
    events = [(1, 0, "pte", {"mm": "mm1", "addr": 2, "old": "None", "new": "P(3,w--)"}),
              (2, 0, "pte", {"mm": "mm1", "addr": 9, "old": "None", "new": "S(0:4)"}),
              (3, 1, "peek", {"mm": "mm2", "addr": 2, "pte": "S(0:4)"}),
              (4, 1, "get_page", {"pfn": 3, "count": 2}),
              (5, 1, "finding", {"pfn": 3, "mm": "mm1"})]
    assert last_touching(events, {"pfn": 3}) == ("pfn 3", [events[3]])
    assert last_touching(events, {"slot": 4})[1] == [events[1], events[2]]
    assert last_touching(events, {"vma": "<vma mm1 [0,4)>"}) == ("vma mm1 [0,4)", [events[0]])
    assert last_touching(events, {"slot": 5}) == ("swap slot 5", [])
    assert last_touching(events, {"cpu": 0, "km": 0}) == ("", [])
