"""Finding files as pytest items: ``pytest -p migfuzz.pytest_plugin FINDING.json [DIR ...]``.

Each finding file (a ``.json`` whose ``format`` is ``migfuzz-finding``, or any ``.json`` named
on the command line) becomes one test that replays it, the way ``migfuzz repro`` does. The test
*fails while the finding reproduces* (with the finding and the end of its interleaving as the
failure report), fails on drift (the recorded schedule no longer applies: re-record it), and
passes once the finding is gone. Pointed at a directory, it is a regression suite over a corpus.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ._errors import UsageError
from .findings import FORMAT, load
from .replay import check
from .report import format_verdict


def _named_on_command_line(config: pytest.Config, path: Path) -> bool:
    for arg in config.args:
        try:
            if Path(arg.split("::")[0]).resolve() == path.resolve():
                return True
        except OSError:
            continue
    return False


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix != ".json":
        return None
    if not _named_on_command_line(parent.config, file_path):
        try:
            head = file_path.read_text(encoding="utf-8", errors="replace")[:200]
        except OSError:
            return None
        if FORMAT not in head:
            return None
    return FindingFile.from_parent(parent, path=file_path)


class FindingFile(pytest.File):
    def collect(self) -> list[pytest.Item]:
        return [FindingItem.from_parent(self, name="reproduces")]


class FindingReproduces(Exception):
    """The finding still reproduces (or its replay drifted): the item's failure."""


class FindingItem(pytest.Item):
    def runtest(self) -> None:
        path = str(self.path)
        try:
            record = load(path)
            v = check(record)
        except UsageError as exc:
            raise FindingReproduces(f"cannot replay: {exc}") from None
        if v.status != "fixed":
            raise FindingReproduces(format_verdict(v, path, tail=40, width=150))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, FindingReproduces):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"finding {self.path.name}"
