"""``--cluster``: a campaign's runs on a Dask distributed cluster (migfuzz.campaign._cluster).

The campaigns run as a user runs them (``python -m migfuzz.cli stress --cluster ADDRESS``)
against a LocalCluster of worker processes started here, whose workers carry
tests/_cluster_hook.py: it records which worker process ran which batch of runs, and can kill
the worker running a given run. Dask is in the ``dev`` extra; without it these tests skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migfuzz.campaign import DASK_MISSING
from migfuzz.findings import load

distributed = pytest.importorskip("distributed")

HOOK = Path(__file__).with_name("_cluster_hook.py")
RUNS = 400
# A sequential catalog bug with every upstream fix: four signatures in 400 runs, hit from
# 143 times down to once (that one run is the one the kill test aims at).
CAMPAIGN = ["--runs", str(RUNS), "--seed", "0", "--bug", "missing-get-new", "--fixes", "all"]


def _migfuzz(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migfuzz.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def _stress(out: Path, *where: str) -> tuple[dict[str, Any], dict[str, tuple[int, int]]]:
    """The campaign's --json summary, and per signature (the run its file keeps, hits)."""
    res = _migfuzz("stress", *CAMPAIGN, *where, "--out", str(out), "--json")
    assert res.returncode == 1, res.stderr
    summary = json.loads(res.stdout)
    found = {f["signature"]: (load(f["file"]).origin["run"], f["hits"])
             for f in summary["findings"]}
    return summary, found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A LocalCluster of 2 worker processes (1 thread each) with the hook; its address and
    the hook's directory."""
    hook_dir = tmp_path_factory.mktemp("hook")
    os.environ["MIGFUZZ_TEST_CLUSTER_DIR"] = str(hook_dir)  # (spawned workers inherit it)
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0", preload=[str(HOOK)]) as lc:
            yield lc.scheduler_address, hook_dir
    finally:
        del os.environ["MIGFUZZ_TEST_CLUSTER_DIR"]


@pytest.fixture(scope="module")
def on_two_jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, int]]:
    """The findings of the campaign on ``--jobs 2``: what a cluster must give."""
    _, found = _stress(tmp_path_factory.mktemp("jobs") / "out", "--jobs", "2")
    assert len(found) >= 3 and min(h for _, h in found.values()) == 1
    return found


def _batches(d: Path) -> dict[int, list[range]]:
    """worker pid -> the batches of runs it ran (from the hook's files)."""
    out: dict[int, list[range]] = {}
    for f in d.glob("ran-*"):
        _, pid, first, end = f.name.split("-")
        out.setdefault(int(pid), []).append(range(int(first), int(end)))
    return out


@pytest.mark.slow
def test_a_cluster_gives_the_findings_of_two_jobs(
        cluster: tuple[str, Path], on_two_jobs: dict[str, tuple[int, int]],
        tmp_path: Path) -> None:
    """Same --runs and --seed: the same signatures, each file keeping the same run, with the
    same hit counts; every run ran on the cluster, on both workers."""
    address, hook_dir = cluster
    summary, found = _stress(tmp_path / "same", "--cluster", address)
    assert found == on_two_jobs
    assert summary["cluster"] == address and summary["runs"] == RUNS
    batches = _batches(hook_dir / "same")
    assert len(batches) == 2  # both worker processes ran batches
    ran = sorted(k for rs in batches.values() for r in rs for k in r)
    assert ran == list(range(RUNS))  # every run once, none in the client


@pytest.mark.slow
def test_a_worker_killed_mid_campaign_loses_no_finding(
        cluster: tuple[str, Path], on_two_jobs: dict[str, tuple[int, int]],
        tmp_path: Path) -> None:
    """The worker running the only run that finds one of the signatures dies in that batch:
    the batch is run again on a worker left, the campaign ends normally (exit 1: findings)
    and its findings are those of --jobs 2, that one included."""
    address, hook_dir = cluster
    rare = min(on_two_jobs.values(), key=lambda v: v[1])[0]
    (hook_dir / "killed").mkdir()
    (hook_dir / "killed" / "die-at").write_text(str(rare))
    summary, found = _stress(tmp_path / "killed", "--cluster", address)
    died = int((hook_dir / "killed" / "died").read_text())  # the hook did kill a worker
    assert found == on_two_jobs and summary["error"] is None
    batches = _batches(hook_dir / "killed")
    assert sorted(k for rs in batches.values() for r in rs for k in r) == list(range(RUNS))
    (redone_by,) = [pid for pid, rs in batches.items() if any(rare in r for r in rs)]
    assert redone_by != died  # the batch the dead worker held ran again on another process


@pytest.mark.slow
def test_a_nightly_runs_its_stress_runs_on_the_cluster(
        cluster: tuple[str, Path], tmp_path: Path) -> None:
    """``nightly --cluster``: the stress run's schedules run on the workers, its findings
    reach the history; the fuzz lane stays local."""
    from migfuzz.history import History

    address, hook_dir = cluster
    out = tmp_path / "night"
    res = _migfuzz("nightly", "--runs", "30", "--jobs", "2", "--cluster", address,
                   "--bug", "missing-get-new", "--fixes", "all", "--out", str(out))
    assert res.returncode == 1, res.stderr
    (stress_dir,) = out.glob("runs/*-stress")
    assert json.loads((stress_dir / "run.json").read_text())["cluster"] == address
    batches = _batches(hook_dir / stress_dir.name)
    assert sorted(k for rs in batches.values() for r in rs for k in r) == list(range(30))
    with History(out / "history.sqlite") as h:
        stress_run = next(r for r in h.runs() if r.kind == "stress")
        assert stress_run.execs == 30 and stress_run.status == "findings"
        assert stress_dir in {Path(f["file"]).parent for f in h.findings()}


@pytest.mark.slow
@pytest.mark.parametrize(("command", "address", "why"), [
    ("stress", "tcp://127.0.0.1:1", "Timed out trying to connect"),  # nothing listens there
    ("nightly", "127.0.0.1", "missing port number"),
])
def test_an_unreachable_cluster_is_exit_2_in_one_line(
        command: str, address: str, why: str, tmp_path: Path) -> None:
    res = _migfuzz(command, "--runs", "5", "--cluster", address, "--out", str(tmp_path / "o"))
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith(f"migfuzz: error: --cluster {address}: cannot reach a Dask "
                                 "scheduler: ")
    assert why in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_worker_on_another_model_is_exit_2(cluster: tuple[str, Path], tmp_path: Path) -> None:
    """Its runs would not be the runs --seed names here: refused before anything runs."""
    address, hook_dir = cluster
    (hook_dir / "other-model").write_text("0.1.0 0123456789abcdef")
    try:
        res = _migfuzz("stress", "--runs", "5", "--cluster", address,
                       "--out", str(tmp_path / "o"))
    finally:
        (hook_dir / "other-model").unlink()
    assert res.returncode == 2, res.stderr
    assert "at model commit 0123456789abcdef, this client" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not list((tmp_path / "o").glob("*.json"))


_WITHOUT_DASK = """
import sys
sys.modules["distributed"] = None  # as if dask[distributed] were not installed
from migfuzz.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_cluster_without_dask_is_exit_2_in_one_line(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-c", _WITHOUT_DASK, "stress", "--runs", "5",
                          "--cluster", "tcp://127.0.0.1:8786", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr == f"migfuzz: error: {DASK_MISSING}\n"


_JOBS_ONLY = """
import sys
from migfuzz.cli import main
rc = main(["stress", "--runs", "20", "--jobs", "2", "--out", sys.argv[1]])
dask = sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))
print(rc, dask)
"""


@pytest.mark.slow
def test_the_jobs_path_does_not_import_dask(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-c", _JOBS_ONLY, str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=60)
    assert res.stdout.strip().splitlines()[-1] == "0 []", res.stdout + res.stderr
