"""Issue 11's probes, rerun: hostile finding files, random raw artifacts, unwritable outputs,
and kill -9 of a campaign's parent. Prints the figures the issue's "Done when" asks for.

    .venv/bin/python bench/hardening_probes.py [--files 448] [--raw 800] [--kills 4]
                                               [--nightly 40] [--only PROBE ...]

The file probes run ``migfuzz.cli.main`` in this process (a subprocess each would take most of
the time starting Python), each under a 60 s alarm that counts as a hang; the kill probe runs
real ``migfuzz stress --jobs 2`` processes, the nightly probe a real ``migfuzz nightly``
over planted files. Everything is written under one temp directory, and
every file that appears outside the output directories a probe names is counted.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import random
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from migfuzz.cli import main  # noqa: E402
from migfuzz.findings import load  # noqa: E402
from migfuzz.strategies import decode, encode  # noqa: E402

KNOWN = sorted((ROOT / "corpus" / "known").glob("*.json"))
SEMANTIC = {"signature", "kind", "function", "key", "scenario", "schedule", "decisions", "bugs",
            "max_steps", "schedule_encoding", "format", "format_version"}


class Hang(BaseException):
    """Raised by the alarm: not an Exception, so no handler of ours can swallow it."""


def _alarm(signum: int, frame: object) -> None:
    raise Hang


def run(argv: list[str]) -> tuple[int | str, str]:
    """(exit status or "hang"/"traceback", stderr) of one in-process command."""
    out, err = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc: int | str = main(argv)
    except Hang:
        rc = "hang"
    except SystemExit as exc:
        rc = int(exc.code or 0)
    except BaseException as exc:  # escaped main(): a traceback for the user
        rc = "traceback"
        err.write(f"Traceback: {type(exc).__name__}: {exc}")
    finally:
        signal.alarm(0)
    return rc, err.getvalue()


def random_json(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 3 else 6)
    if choice == 6:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    if choice == 7:
        return {"k": random_json(rng, depth + 1)}
    return [None, True, rng.randint(-(10**6), 10**6), 2.5, "x" * rng.randrange(5), 10**30,
            None, None, "../../etc"][choice]


MUTATION: list[str] = [""]  # what the last mutate() did, for the report


def mutate(rng: random.Random, d: dict[str, Any]) -> tuple[dict[str, Any] | str, bool]:
    """A mutated finding (or its text) and whether the mutation corrupts its meaning."""
    d = copy.deepcopy(d)
    how = rng.randrange(8)
    if how == 0:  # pad the schedule
        s = decode(d["schedule_encoding"], d["schedule"])
        pad = [rng.randrange(2) for _ in range(rng.randint(1, 9))]
        d["schedule_encoding"], d["schedule"] = encode([*s, *pad])
        d["decisions"] = len(s) + len(pad)
        return d, True
    if how == 1:  # edit the signature
        d["signature"] = d["signature"].replace(" in ", " in x")
        return d, True
    if how == 2:  # a path in the kind
        d["kind"] = rng.choice(["../../escaped", "/tmp/abs", "a/b", "..", "x\x00y"])
        return d, True
    if how == 3:  # deep nesting / huge numbers as text
        text = json.dumps(d)
        return (text.replace('"details": {', '"details": ' + "[" * 50_000 + "]" * 50_000
                             + ', "x": {', 1) if rng.random() < 0.5 else
                text.replace('"step": ', '"step": ' + "9" * 5000, 1)), True
    if how == 4:  # a random field somewhere in the scenario
        sc = d["scenario"]
        target = rng.choice([sc["world"], sc["processes"][0], sc["processes"][0]["vmas"][0],
                             sc["tasks"][0]])
        key = rng.choice(list(target))
        old = json.dumps(target[key])
        target[key] = random_json(rng)
        MUTATION[0] = f"scenario ...{key} = {target[key]!r}"
        return d, json.dumps(target[key]) != old  # (the same value again changes nothing)
    if how == 5:  # an op argument
        op = d["scenario"]["tasks"][rng.randrange(len(d["scenario"]["tasks"]))]["ops"][0]
        i = rng.randrange(len(op))
        old = json.dumps(op[i])
        op[i] = random_json(rng)
        MUTATION[0] = f"op argument {i} = {op[i]!r}: {op}"
        return d, json.dumps(op[i]) != old
    if how == 6:  # a top-level field: deleted or replaced
        key = rng.choice(sorted(d))
        if rng.random() < 0.5:
            del d[key]
            MUTATION[0] = f"deleted {key}"
        else:
            old = json.dumps(d[key])
            d[key] = random_json(rng)
            MUTATION[0] = f"{key} = {d[key]!r}"
            return d, key in SEMANTIC and json.dumps(d[key]) != old
        return d, key in SEMANTIC
    d["strategy"]["params"] = {"unknown": random_json(rng)}  # strategy params
    d["strategy"]["name"] = rng.choice(["pct", "random", "minimize"])
    return d, False


def written(path: Path) -> dict[str, Any]:
    """A known reproducer as this migfuzz writes it (with its digest): the files the probes
    mutate are what a campaign, minimize or refresh would have written."""
    doc: dict[str, Any] = load(path).to_json()
    return doc


def listing(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def probe_files(work: Path, n: int, rng: random.Random) -> dict[str, Any]:
    stats: Counter[str] = Counter()
    exit1_corrupt = 0
    outside: list[str] = []
    out_dir = work / "out"
    out_dir.mkdir()
    for i in range(n):
        base = written(rng.choice(KNOWN))
        doc, corrupt = mutate(rng, base)
        f = work / "in" / f"m{i}.json"
        f.parent.mkdir(exist_ok=True)
        f.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        before = listing(work)
        cmd = rng.choice(["repro", "repro-bug", "minimize"])
        argv = {"repro": ["repro", "--no-timeline", str(f)],
                "repro-bug": ["repro", "--no-timeline", "--bug", "nope", str(f)],
                "minimize": ["minimize", "--search-runs", "2", str(f), "-o",
                             str(out_dir) + os.sep]}[cmd]
        rc, err = run(argv)
        stats[f"{cmd} exit {rc}"] += 1
        if rc in (0, 1) and corrupt:  # 1 "reproduces", 0 "fixed" / "written": both wrong
            stats[f"exit {rc} on a corrupting mutation"] += 1
            exit1_corrupt += rc == 1
            print(f"  {cmd} exit {rc} after: {MUTATION[0]}", file=sys.stderr)
        if "Traceback" in err or rc in ("traceback", 3):
            stats["traceback or harness error"] += 1
        for p in listing(work) - before:
            if not p.is_relative_to(out_dir) and not p.is_relative_to(work / "in"):
                outside.append(str(p))
    return {"files": n, "by command and exit": dict(sorted(stats.items())),
            "exit 1 on a corrupting mutation": exit1_corrupt,
            "written outside --out": len(outside)}


def probe_raw(work: Path, n: int, rng: random.Random) -> dict[str, Any]:
    stats: Counter[str] = Counter()
    for i in range(n):
        f = work / "raw" / f"r{i}"
        f.parent.mkdir(exist_ok=True)
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
        if rng.random() < 0.2:
            data = b"{" + data
        f.write_bytes(data)
        argv = ["repro", "--no-timeline", str(f)]
        if rng.random() < 0.5:
            argv += ["--target", rng.choice(["fuzz_scenario", "fuzz_schedule",
                                             "fuzz_sequential"])]
        rc, err = run(argv)
        stats[f"exit {rc}"] += 1
        if "Traceback" in err or rc in ("traceback", 3):
            stats["traceback or harness error"] += 1
    return {"raw artifacts": n, "by exit": dict(sorted(stats.items()))}


def probe_outputs(work: Path) -> dict[str, Any]:
    """Unwritable outputs: as root, chmod does not stop writes, so a read-only tmpfs when we
    may mount one; a file-size limit of 1 kB (EFBIG) always."""
    results: dict[str, Any] = {}
    ro = work / "ro"
    ro.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)],
                             capture_output=True).returncode == 0
    try:
        if mounted:
            for argv in (["stress", "--runs", "5", "--out", str(ro / "f")],
                         ["nightly", "--minutes", "0.1", "--out", str(ro / "n")],
                         ["gate", "--junit", str(ro / "g.xml"), "--out", str(work / "g")],
                         ["minimize", str(KNOWN[0]), "-o", str(ro / "m.json")]):
                t = time.monotonic()
                rc, err = run(argv)
                results[f"read-only: {argv[0]}"] = (f"exit {rc} in {time.monotonic() - t:.1f} s: "
                                                    f"{err.strip().splitlines()[-1][:90]}")
        else:
            results["read-only"] = "not probed: cannot mount a read-only tmpfs here"
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], check=False)
    # ulimit -f: the finding writes fail with EFBIG mid-campaign
    out = work / "fsize"
    proc = subprocess.run(
        [sys.executable, "-m", "migfuzz.cli", "stress", "--runs", "60", "--jobs", "1",
         "--executor", "direct", "--bug", "unlock-before-remove", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024)))
    results["ulimit -f 1 kB: stress"] = (f"exit {proc.returncode}: "
                                         f"{proc.stderr.strip().splitlines()[-1][:90]}")
    return results


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def probe_kills(work: Path, n: int) -> dict[str, Any]:
    orphans = 0
    for i in range(n):
        sig = signal.SIGKILL if i % 2 == 0 else signal.SIGTERM
        proc = subprocess.Popen(
            [sys.executable, "-m", "migfuzz.cli", "stress", "--seconds", "600", "--jobs", "2",
             "--executor", "direct", "--out", str(work / f"k{i}")],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        assert proc.stderr is not None
        proc.stderr.readline()
        proc.stderr.readline()
        workers = _children(proc.pid)
        fds = [os.pidfd_open(w) for w in workers]
        proc.send_signal(sig)
        proc.wait()
        for fd, w in zip(fds, workers, strict=True):
            ready, _, _ = select.select([fd], [], [], 15)
            if not ready:
                orphans += 1
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w, signal.SIGKILL)  # never leave one running
            os.close(fd)
    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "migfuzz.cli", "stress", "--seconds", "2", "--jobs",
                    "64", "--executor", "direct", "--out", str(work / "j64")], cwd=ROOT,
                   capture_output=True, timeout=300)
    return {"parents killed (SIGKILL/SIGTERM alternately)": n,
            "orphaned workers after 15 s": orphans,
            "stress --jobs 64 --seconds 2 wall time": f"{time.monotonic() - t:.1f} s"}


def probe_nightly(work: Path, n: int, rng: random.Random) -> dict[str, Any]:
    """A killed night's run directory with ``n`` planted *.json (mutated finding files, and
    valid ones whose bug was taken out, key and all, so that they no longer reproduce), then a
    real ``migfuzz nightly --runs 5``: which of them reach the history as findings."""
    from migfuzz.history import History

    out = work / "night"
    run_dir = out / "runs" / "n0001-01-stress"
    run_dir.mkdir(parents=True)
    with History(out / "history.sqlite") as h:
        night = h.start_night(budget_s=60, jobs=1, bugs=[], out_dir=str(out),
                              model_commit="probe", tool_version="probe")
        h.start_run(night=night, kind="stress", target="portfolio", seed=1, bugs=[], jobs=1,
                    budget_s=60, out_dir=str(run_dir))
    corrupt: set[str] = set()
    for i in range(n):
        src = rng.choice(KNOWN)
        name = f"m{i:03d}.json"
        if rng.random() < 0.25:  # valid, but its finding does not fire
            rec = load(src)
            rec.bugs = []
            (run_dir / name).write_text(rec.dumps())
            corrupt.add(name)
            continue
        doc, bad = mutate(rng, written(src))
        (run_dir / name).write_text(doc if isinstance(doc, str) else json.dumps(doc))
        if bad:
            corrupt.add(name)
    t = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "migfuzz.cli", "nightly", "--runs", "5",
                           "--jobs", "1", "--fixes", "all", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    wall = time.monotonic() - t
    with History(out / "history.sqlite") as h:
        status = {Path(r["path"]).name: str(r["status"]) for r in h.query(
            "SELECT path, status FROM files")}
    planted = {f"m{i:03d}.json" for i in range(n)}
    kinds = Counter(status.get(f, "not recorded").split(":")[0] for f in planted)
    listed = proc.stdout.count(str(run_dir) + os.sep)
    return {"planted files": n, "of which corrupt or not reproducing": len(corrupt),
            "nightly exit": proc.returncode, "nightly wall seconds": round(wall, 1),
            "recorded as": dict(sorted(kinds.items())),
            "corrupt or not reproducing recorded as findings": sum(
                status.get(f) == "finding" for f in corrupt),
            "listed as not findings in the summary": listed,
            "tracebacks": int("Traceback" in proc.stdout + proc.stderr)}


def main_() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=448)
    ap.add_argument("--raw", type=int, default=800)
    ap.add_argument("--kills", type=int, default=4)
    ap.add_argument("--nightly", type=int, default=40)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--only", nargs="*", default=None, metavar="PROBE",
                    help="run only these probes (files raw outputs kills nightly)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory(prefix="migfuzz-probes-") as tmp:
        work = Path(tmp)
        report = {}
        for short, name, fn in (
                ("files", "finding files", lambda: probe_files(work, a.files, rng)),
                ("raw", "raw artifacts", lambda: probe_raw(work, a.raw, rng)),
                ("outputs", "outputs", lambda: probe_outputs(work)),
                ("kills", "kills", lambda: probe_kills(work, a.kills)),
                ("nightly", "nightly", lambda: probe_nightly(work, a.nightly, rng))):
            if a.only is not None and short not in a.only:
                continue
            t = time.monotonic()
            report[name] = fn()
            report[name]["probe seconds"] = round(time.monotonic() - t, 1)
            print(json.dumps({name: report[name]}, indent=2), flush=True)


if __name__ == "__main__":
    main_()
