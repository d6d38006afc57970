"""The nightly HTML report in a real browser: Debian's chromium, headless.

``--dump-dom`` gives the DOM after the browser parsed and laid out the page (inline SVG
included), ``--screenshot`` a rendered image. ``make test`` installs chromium with apt-get when
it is missing (see the Makefile), and under ``CI=true`` a missing browser fails this test
instead of skipping it, so CI can never pass without having looked at the page.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from migfuzz.findings import load, write_atomic
from migfuzz.history import History
from migfuzz.report_html import write_report

ROOT = Path(__file__).resolve().parent.parent
KNOWN = ROOT / "corpus" / "known"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


@pytest.fixture
def chromium() -> str:
    exe = _chromium()
    if exe is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("chromium is not installed, and CI must run the browser test: "
                        "`make test` installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (`make test` installs it with apt-get)")
    return exe


class _Dom(HTMLParser):
    """Elements of the dumped DOM as (tag, attributes, ancestors' tags and classes)."""

    VOID = frozenset({"meta", "link", "br", "img", "input", "hr", "col", "wbr", "source"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.elements: list[tuple[str, dict[str, str], tuple[tuple[str, str], ...]]] = []
        self.text: list[tuple[str, tuple[tuple[str, str], ...]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a, tuple(self.stack)))
        if tag not in self.VOID:
            self.stack.append((tag, a.get("class", "")))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, tuple(self.stack)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append((data, tuple(self.stack)))

    def find(self, tag: str, cls: str | None = None, inside: str | None = None) -> list[
            dict[str, str]]:
        return [a for t, a, anc in self.elements
                if t == tag and (cls is None or cls in a.get("class", "").split())
                and (inside is None or any(inside in c.split() for _, c in anc))]


def _report(tmp_path: Path) -> tuple[Path, Path]:
    """A night with one new finding (the lock-order inversion of the page-lock bug) and one
    explained by the corpus."""
    with History(tmp_path / "h.sqlite") as h:
        night = h.start_night(budget_s=600, jobs=2, bugs=["page-lock-under-anon-vma"],
                              out_dir=str(tmp_path), model_commit="test", tool_version="test")
        run = h.start_run(night=night, kind="stress", target="portfolio", seed=1,
                          bugs=["page-lock-under-anon-vma"], jobs=1, budget_s=600,
                          out_dir=str(tmp_path))
        new = load(KNOWN / "page-lock-under-anon-vma.json")
        new_path = tmp_path / new.file_name()
        write_atomic(new_path, new.dumps())
        h.record_finding(run, new_path, new, hits=12)
        known = load(KNOWN / "unlock-before-remove.json")
        write_atomic(tmp_path / known.file_name(), known.dumps())
        h.record_finding(run, tmp_path / known.file_name(), known, hits=900,
                         corpus_match="corpus/known/unlock-before-remove.json")
        h.update_run(run, execs=4321, seconds=600.0, exec_per_s=7.2, status="findings")
        h.end_night(night, "done")
        index, new_keys, _ = write_report(h, night, tmp_path / "report")
    assert len(new_keys) == 1
    return index, new_path


def _run(cmd: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cmd[:1], *FLAGS, f"--user-data-dir={profile}", *cmd[1:]],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(profile)})


def test_report_renders_in_headless_chromium(tmp_path: Path, chromium: str) -> None:
    index, finding_file = _report(tmp_path)
    url = index.resolve().as_uri()

    res = _run([chromium, "--dump-dom", url], tmp_path / "profile-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = _Dom()
    dom.feed(res.stdout)
    assert dom.find("table") and [a for a in dom.find("table") if a.get("id") ==
                                  "summary-table"], "no summary table in the rendered DOM"
    rows = [d for d, anc in dom.text if any(t == "table" for t, _ in anc)]
    assert "4,321" in rows  # the stress schedules made it into the summary
    swimlanes = dom.find("svg", "swimlane")
    assert len(swimlanes) == 1
    lanes = [a["data-task"] for a in dom.find("g", "lane", inside="swimlane")]
    assert lanes == ["user", "migrator"]
    assert dom.find("rect", "hold", inside="swimlane"), "no lock hold bars"
    assert dom.find("g", "finding-mark", inside="swimlane"), "the finding is not marked"
    assert len(dom.find("svg", "lock-graph")) == 1
    nodes = {a["data-class"] for a in dom.find("g", "node", inside="lock-graph")}
    assert {"PG_locked", "anon_vma->lock"} <= nodes
    inverting = dom.find("g", "inverting", inside="lock-graph")
    assert [(a["data-src"], a["data-dst"]) for a in inverting] == [
        ("anon_vma->lock", "PG_locked")]
    repro = [d for d, anc in dom.text if ("pre", "repro") in anc]
    assert f"migfuzz repro {finding_file}" in repro
    # exec/s, coverage, findings, and the migration rate per strategy and per scenario
    assert len(dom.find("svg", "trend")) == 5
    assert len(dom.find("svg", "rate-strategy")) == len(dom.find("svg", "rate-scenario")) == 1

    png = tmp_path / "report.png"
    res = _run([chromium, f"--screenshot={png}", "--window-size=1280,2200", url],
               tmp_path / "profile-png")
    assert res.returncode == 0 and png.is_file(), res.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1280, 2200)
    assert len(data) > 60_000, "the screenshot is (nearly) blank"
