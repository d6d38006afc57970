"""What every part of the gate shares: checks that turn exceptions into statuses, the one
way a finding becomes a file, the log."""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from stress import Outcome
from stress.workload import Scenario

from .._errors import FindingFileError, caused_by_ctrl_c
from ..findings import FindingRecord, FindingStore, write_atomic
from ..replay import confirm_record
from ..report import fixes_text, repro_commands
from ..strategies import StrategySpec
from ._plan import ERROR, INVALID, PASSED, Check, GateConfig, GateResult, fix_flags


class _GateBase:
    def __init__(self, cfg: GateConfig, progress: TextIO | None) -> None:
        self.cfg = cfg
        self.progress = progress
        self.result = GateResult(cfg)
        self.store = FindingStore(cfg.out)
        self.bug_flags = "".join(f" --bug {b}" for b in cfg.bugs) + fix_flags(cfg.fixes)

    def log(self, line: str) -> None:
        if self.progress is not None:
            self.progress.write(f"gate: {line}\n")
            self.progress.flush()

    @contextmanager
    def check(self, suite: str, name: str) -> Iterator[Check]:
        """A check that turns an exception into a harness error (Ctrl-C stays Ctrl-C)."""
        c = Check(suite, name)
        self.result.checks.append(c)
        t = time.monotonic()
        try:
            yield c
        except FindingFileError as exc:
            c.fail(INVALID, str(exc))
        except Exception as exc:
            if caused_by_ctrl_c(exc):
                raise KeyboardInterrupt from exc
            c.fail(ERROR, f"harness error (not a finding): {type(exc).__name__}: {exc}",
                   traceback.format_exc())
        finally:
            c.seconds = time.monotonic() - t
        if c.status != PASSED:
            self.log(f"{suite} {name}: {c.status.upper()}: {c.message}")


    # -- saving what was found -------------------------------------------------------------

    def save(self, scenario: Scenario, outcome: Outcome, *, bugs: Sequence[str], executor: str,
             spec: StrategySpec, origin: dict[str, Any],
             fixes: Sequence[str] | None = None) -> tuple[str, Path]:
        """Write the finding of ``outcome`` as a finding file; (signature, path).

        The caller has injected ``bugs`` and ``fixes`` (default: the gate's). The record is
        ``replay.confirm_record``'s (HarnessError if the exact replay does not show the same
        signature), merged into the file already there.
        """
        assert outcome.finding is not None
        sig = outcome.finding.signature
        rec = confirm_record(scenario, outcome.schedule, strategy=spec, executor=executor,
                             bugs=bugs, fixes=self.cfg.fixes if fixes is None else fixes,
                             max_steps=self.cfg.max_steps, origin={"gate": origin},
                             signature=sig, what=f"the finding {sig}")
        self.store.save_merged(rec, rec.hits)
        return sig, self.store.path_for(rec)


    def pass_refreshed(self, c: Check, suite: str, path: Path, drift: str,
                       fresh: FindingRecord, hint: str = "") -> None:
        """A drifted reproducer re-found: the check passes with a warning, and the refreshed
        file goes to ``<out>/refreshed`` (known) or ``<out>/refreshed-flaws`` (flaws)."""
        sub = "refreshed" if suite == "known" else "refreshed-flaws"
        out = Path(self.cfg.out) / sub / path.name
        write_atomic(out, fresh.dumps())
        c.properties.update(drift="re-found", refreshed=str(out))
        warning = (f"drift, re-found: {path.stem} {drift}; re-found as {fresh.signature} "
                   f"by {fresh.strategy.describe()}; refreshed file {out}{hint}")
        c.out.append(f"warning: {warning}")
        self.result.notes.setdefault(suite, []).append(warning)
        self.log(f"{suite} {c.name}: {warning}")


    def bugs_note(self) -> str:
        return f", bugs injected: {', '.join(self.cfg.bugs)}" if self.cfg.bugs else ""

    def fixes_note(self) -> str:
        return f" (fixes: {fixes_text(self.cfg.fixes)})"



def _reproduce(path: Path) -> list[str]:
    return ["reproduce:", *(f"  {cmd}" for cmd in repro_commands(str(path)))]


