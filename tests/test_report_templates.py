"""The report's Jinja2 templates: autoescaped, and shipped as package data."""

from __future__ import annotations

import dataclasses
import fnmatch
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from migfuzz.findings import load
from migfuzz.history import History
from migfuzz.report_html import render

ROOT = Path(__file__).resolve().parent.parent
KNOWN = ROOT / "corpus" / "known"
SCRIPT = "<script>alert('x')</script>"


@pytest.mark.slow  # (compiling the templates is most of it)
def test_a_finding_title_with_a_script_tag_is_escaped(tmp_path: Path) -> None:
    rec = load(KNOWN / "page-lock-under-anon-vma.json")
    evil = dataclasses.replace(rec, signature=f"{rec.signature} {SCRIPT}",
                               message=f"{SCRIPT} & more")
    with History(tmp_path / "h.sqlite") as h:
        night = h.start_night(budget_s=60, jobs=1, bugs=rec.bugs, out_dir=str(tmp_path),
                              model_commit="test", tool_version="test")
        run = h.start_run(night=night, kind="stress", target=f"portfolio {SCRIPT}", seed=1,
                          bugs=rec.bugs, jobs=1, budget_s=60, out_dir=str(tmp_path))
        # a file that is gone: the article is written from the history, without a replay
        h.record_finding(run, tmp_path / "gone.json", evil, hits=3)
        h.end_night(night, "done")
        page, new, _ = render(h, night)
    assert new == [evil.key]
    assert "<script" not in page.lower()
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    assert page.count(escaped) == 4  # the table row, the article's title, its message, the run
    assert f" {escaped}</h3>" in page and f"{escaped} &amp; more" in page


def test_every_template_is_package_data() -> None:
    """An installed (not editable) migfuzz finds its templates: each file of templates/ is
    matched by pyproject's package-data globs and readable through importlib.resources."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = conf["tool"]["setuptools"]["package-data"]["migfuzz.report_html"]
    shipped = resources.files("migfuzz.report_html") / "templates"
    files = sorted(p.name for p in (ROOT / "migfuzz" / "report_html" / "templates").iterdir())
    assert {"page.html", "svg.html", "report.css"} <= set(files)
    for name in files:
        assert any(fnmatch.fnmatch(f"templates/{name}", g) for g in globs), name
        assert (shipped / name).read_text(encoding="utf-8")
