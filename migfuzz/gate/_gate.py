"""The gate's run: every part, in order (known, regressions, dfs, flaws, stress)."""

from __future__ import annotations

import dataclasses
import time
from typing import TextIO

from .._errors import UsageError
from ..bugs import check_bugs, check_fixes
from ._corpus import _CorpusParts
from ._plan import GateConfig, GateResult, stress_plan
from ._search import _SearchParts


class _Gate(_CorpusParts, _SearchParts):
    def run(self) -> GateResult:
        t = time.monotonic()
        self.known()
        self.regressions()
        self.dfs()
        self.flaws()
        self.stress()
        self.result.seconds = time.monotonic() - t
        return self.result



def run_gate(cfg: GateConfig, progress: TextIO | None = None) -> GateResult:
    """Run every part of the gate; the result says what passed and what did not.

    Raises:
        UsageError: an unknown bug, a corpus directory that does not exist, a bad budget.
    """
    bugs = tuple(check_bugs(cfg.bugs))
    fixes = tuple(check_fixes(cfg.fixes))
    if not cfg.corpus.is_dir():
        raise UsageError(f"--corpus {cfg.corpus}: no such directory")
    try:
        stress_plan(cfg.budget, 0, len(cfg.seeds))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return _Gate(dataclasses.replace(cfg, bugs=bugs, fixes=fixes), progress).run()


