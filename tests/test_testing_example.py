"""docs/testing_example.py, the file a user copies, run by pytest as a user runs it: clean on
the model with every fix, failing with a catalog bug injected (the finding, its timeline and
a ``migfuzz repro`` command that replays), and Hypothesis's database replaying the shrunk
example on the next run.

Determinism: the clean run fixes Hypothesis's seed. The bug runs cannot (a seeded Hypothesis
uses no database), and need not: Hypothesis tries the simplest example first (every draw at
its shrink target: one process writing one page, one migrator), which missing-get-new already
breaks, so the failure and its shrunk example are the same on every run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import hypothesis
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "testing_example.py"
MIGFUZZ = Path(sys.executable).parent / "migfuzz"
BUG = "missing-get-new"


# On a CI server (CI=true, GITHUB_ACTIONS=true, ...) Hypothesis loads its "ci" profile:
# derandomized, no database. The example runs here as on a developer's machine.
CI_VARS = set(getattr(hypothesis._settings, "_CI_VARS", ())) | {"CI", "GITHUB_ACTIONS"}


def _pytest(cwd: Path, *args: str, bugs: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MIGFUZZ_", "PYTEST_", "HYPOTHESIS_")) and k not in CI_VARS}
    if bugs:
        env["MIGFUZZ_BUGS"] = bugs
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--color=no",
         "testing_example.py", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_example_passes_then_fails_with_a_bug_and_its_repro_replays(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "testing_example.py")
    clean = _pytest(tmp_path, "--hypothesis-seed=0")
    assert clean.returncode == 0, clean.stdout[-3000:]
    assert "2 passed" in clean.stdout

    buggy = _pytest(tmp_path, bugs=BUG)
    out = buggy.stdout
    assert buggy.returncode == 1, out[-3000:]
    assert "2 failed" in out
    failures = out.split("migfuzz.testing.ScenarioFailed: ")[1:]
    assert len(failures) == 2, out[-3000:]
    heads = sorted(f.splitlines()[0] for f in failures)
    assert heads == [
        "bad-page-state in free_pages_check in scenario hypothesis under 0 preemptions "
        f"(bugs: {BUG})",
        "bad-page-state in free_pages_check in scenario migrate-vs-fault, run 0 of 100 "
        f"(pct from seed 1; bugs: {BUG})"], heads
    for f in failures:  # the finding, the end of its timeline, then how to replay it
        assert "timeline (2 tasks" in f and "FINDING at step" in f, f
        assert "result: REPRODUCED" in f, f
    assert "Draw 2 (schedule): Preemptions(" in out  # Hypothesis's shrunk example
    repro = sorted(set(re.findall(r"^E +(migfuzz repro \S+)$", out, re.M)))
    assert len(repro) == 2, repro
    for command in repro:  # as printed, with this environment's migfuzz
        argv = shlex.split(command)
        r = subprocess.run([str(MIGFUZZ), *argv[1:], "--no-timeline"], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "result: REPRODUCED" in r.stdout, r.stdout
        assert f"bugs: {BUG}, fixes: all" in r.stdout

    # the shrunk example is in Hypothesis's database, and the next run starts from it
    assert any((tmp_path / ".hypothesis" / "examples").iterdir())
    again = _pytest(tmp_path, "-k", "any_scenario", "--hypothesis-show-statistics", bugs=BUG)
    assert again.returncode == 1
    reuse = again.stdout.split("during reuse phase")[1].split("\n\n")[0]
    assert "1 failing" in reuse, again.stdout[-3000:]
