"""bench/time_to_bug.py end to end on a tiny budget: every column it is asked for is measured
on the terms its name says.

The fuzz columns are four libFuzzer runs (fuzz_schedule and fuzz_preempt, each from its
committed seeds and from an empty corpus) of isolate-outside-ptl, which the first execution of
any scenario finds: each cell must count a find (so the bug and the fixes reach the fuzzer:
with every fix and no bug nothing is found), and the line under the table must show that the
seeds columns' libFuzzer found exactly its target's committed corpus and the empty ones
nothing (so the target and the corpus flag reach libFuzzer: a column that ran the other
target, or the seeds when asked for none, shows another count).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
from bench import time_to_bug  # noqa: E402

FUZZ = ["fuzz", "fuzz-empty", "fuzz-preempt", "fuzz-preempt-empty"]


def _run(monkeypatch: pytest.MonkeyPatch, out: Path, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["time_to_bug.py", *args, "--out", str(out)])
    time_to_bug.main()


@pytest.mark.slow
def test_fuzz_columns_reach_libfuzzer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the start-up figure is two more libFuzzer runs per target and is not what is tested here
    monkeypatch.setattr(time_to_bug, "startup_cpu", lambda target, mode: 0.0)
    out = tmp_path / "ttb.md"
    _run(monkeypatch, out, "--seeds", "1", "--runs", "3", "--fuzz-runs", "5",
         "--bugs", "isolate-outside-ptl", "--strategies", ",".join(["random", *FUZZ]))
    text = out.read_text()
    header = next(line for line in text.splitlines() if line.startswith("| bug |"))
    assert ("| random schedules | random CPU s | fuzz_schedule seeds executions | "
            "fuzz_schedule seeds CPU s | fuzz_schedule empty executions | fuzz_schedule empty "
            "CPU s | fuzz_preempt seeds executions | fuzz_preempt seeds CPU s | fuzz_preempt "
            "empty executions | fuzz_preempt empty CPU s |") in header
    row = next(line for line in text.splitlines() if line.startswith("| isolate-outside-ptl |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "0"  # the catalog's depth
    finds = cells[2::2]
    assert len(finds) == 5 and all(c.endswith("(1/1)") for c in finds), row
    # the row without the model-side check: in-process strategies only
    without = next(line for line in text.splitlines() if "(without " in line)
    assert without.count("n/a") == 2 * len(FUZZ)
    seeds = {t: len(list((_ROOT / "corpus" / t).iterdir())) for t in
             ("fuzz_schedule", "fuzz_preempt")}
    assert seeds["fuzz_schedule"] != seeds["fuzz_preempt"]  # else the target would not show
    assert (f"start, per column: fuzz_schedule seeds {seeds['fuzz_schedule']}, fuzz_schedule "
            f"empty 0, fuzz_preempt seeds {seeds['fuzz_preempt']}, fuzz_preempt empty 0.") in text


@pytest.mark.parametrize(("args", "message"), [
    (["--strategies", "fuzz-sideways"], "unknown strategy 'fuzz-sideways'"),
    (["--strategies", "dfs"], "unknown strategy 'dfs'"),
    (["--bugs", "no-such-bug"], "unknown bug 'no-such-bug'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], args: list[str],
                                          message: str) -> None:
    with pytest.raises(SystemExit) as exc:
        _run(monkeypatch, tmp_path / "ttb.md", *args)
    assert exc.value.code == 2
    assert capsys.readouterr().err == f"bench: {message}\n"
    assert not (tmp_path / "ttb.md").exists()
