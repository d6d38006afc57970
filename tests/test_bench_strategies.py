"""bench/strategies.py (issue 15 item 6) as its user runs it: a table per kind of bug, a
column per strategy (portfolios included), the hand-written reading kept across reruns, a
resumed run that reuses its raw results, and bad input exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = [sys.executable, str(Path(__file__).resolve().parent.parent / "bench" / "strategies.py")]


@pytest.mark.slow
def test_the_table_has_a_row_per_bug_by_kind_and_keeps_the_reading(tmp_path: Path) -> None:
    out, raw = tmp_path / "s.md", tmp_path / "raw.jsonl"
    marker = "<!-- reading: written by hand, kept when the tables are rewritten -->"
    out.write_text(f"old table\n{marker}\nthe reading\n")
    args = [*SCRIPT, "--seeds", "1", "--runs", "3", "--jobs", "1", "--strategies",
            "surw,random+pct", "--bugs", "unlock-before-remove,wait-without-ref",
            "--out", str(out), "--raw", str(raw)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert "## sequential (1 bugs)" in page and "## race (1 bugs)" in page
    assert "old table" not in page and page.endswith(f"{marker}\nthe reading\n")
    [row] = [line for line in page.splitlines() if line.startswith("| unlock-before-remove")]
    # depth 0: found by the first run of every strategy (its column, then CPU seconds)
    assert row.split(" | ")[1] == "1 [1-1] (1/1)" and row.split(" | ")[3] == "1 [1-1] (1/1)"
    cells = [json.loads(line) for line in raw.read_text().splitlines()]
    assert {(c["bug"], c["strategy"]) for c in cells} == {
        (b, s) for b in ("unlock-before-remove", "wait-without-ref")
        for s in ("surw", "random+pct")}
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and len(raw.read_text().splitlines()) == 4  # resumed
    bad = subprocess.run([*SCRIPT, "--strategies", "bogus", "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "bogus" in bad.stderr
