"""Recovery: the runs of a night that died (kill -9, reboot) are marked killed and their
directories rescanned; the numbers a run writes (status.json, result.json) read back."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..history import (
    History,
    RunStatus,
)
from ._harvest import CorpusIndex, Harvest, harvest
from ._spec import _read_json


def _numbers(run_dir: Path) -> dict[str, Any]:
    """The latest numbers a run reported: its result, else its last status."""
    res = _read_json(run_dir / "result.json")
    return res or _read_json(run_dir / "status.json")


def record_migrations(hist: History, run: int, nums: dict[str, Any]) -> None:
    """Record the migration counts a stress run reported (``migrations`` of its result or
    status file), if it reported well-formed ones."""
    got = nums.get("migrations")
    if not isinstance(got, dict):
        return
    counts: dict[str, list[int]] = {}
    for key, val in got.items():
        if not (isinstance(key, str) and ":" in key and isinstance(val, list) and len(val) == 2
                and all(isinstance(v, int) and v >= 0 for v in val) and val[1] <= val[0]):
            return  # not what a campaign writes: record nothing rather than half
        counts[key] = val
    hist.record_migrations(run, counts)


def _run_fields(nums: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in ("execs", "restarts", "coverage", "features"):
        if isinstance(nums.get(k), int):
            out[k] = nums[k]
    for k in ("seconds", "exec_per_s"):
        if isinstance(nums.get(k), (int, float)):
            out[k] = round(float(nums[k]), 3)
    return out


def recover(hist: History, night: int, corpus: CorpusIndex,
            log: Callable[[str], None]) -> Harvest:
    """Start of a night: nights and runs left 'running' died with their process; record what
    their directories hold, then rescan every run directory for files not yet recorded."""
    total = Harvest()
    for run in hist.runs(status=RunStatus.RUNNING):
        if run.night == night:
            continue
        got = harvest(hist, run, corpus, log)
        total.add(got)
        d = Path(run.out_dir)
        ended = None
        with contextlib.suppress(OSError):
            ended = max((p.stat().st_mtime for p in d.rglob("*") if p.is_file()), default=None)
        nums = _numbers(d)
        fields = _run_fields(nums)
        record_migrations(hist, run.id, nums)
        hist.update_run(run.id, status=RunStatus.KILLED, note="the nightly died before this run "
                        "ended; what its directory holds was recovered at the next start",
                        ended=_iso(ended) if ended else run.started, **fields)
        log(f"recovered run {run.id} ({run.kind} {run.target}) of night {run.night}: "
            f"{len(got.files)} file(s) not recorded before ({len(got.new_keys)} new key(s))")
    for run in hist.runs():
        if run.night != night:
            total.add(harvest(hist, run, corpus, log))
    dead = hist.mark_stale_nights(night)
    if dead:
        log(f"night(s) {', '.join(map(str, dead))} had been killed; marked as such")
    return total


def _iso(t: float) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(t, _dt.UTC).isoformat(timespec="seconds")
