"""The parts of the gate that replay the corpus: known-bug reproducers, regressions, and the
reproducers of V2's real flaws."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from target.fixes import FIXES, UpstreamFix, without

from .._errors import FindingFileError, HarnessError
from ..bugs import catalog, injected
from ..findings import FindingRecord, load
from ..refresh import refind, replay_drift
from ..replay import ContinueScheduler, check, replay_schedule, run_traced
from ..report import repro_commands
from ..strategies import StrategySpec
from ._base import _GateBase, _reproduce
from ._plan import FAILED, INVALID, Check, fix_flags


class _CorpusParts(_GateBase):
    # -- known-bug reproducers -------------------------------------------------------------

    def known(self) -> None:
        d = self.cfg.corpus / "known"
        files = sorted(d.glob("*.json"))
        self.result.notes["known"] = [] if files else [f"no reproducers in {d}"]
        cat = catalog()
        for path in files:
            record: FindingRecord | None = None
            problem = ""
            try:
                record = load(path)
                if path.stem not in cat:
                    raise FindingFileError(str(path), f"{path.stem!r} is not a catalog bug "
                                           f"(known: {', '.join(sorted(cat))})")
                if record.bugs != [path.stem]:
                    raise FindingFileError(str(path), f"records bugs {record.bugs}, "
                                           f"not [{path.stem!r}]")
            except FindingFileError as exc:
                record, problem = None, str(exc)
            for mode in ("faithful", "injected"):
                with self.check("known", f"{path.stem}[{mode}]") as c:
                    if record is None:
                        c.fail(INVALID, problem)
                    elif mode == "faithful":
                        self.known_faithful(c, path, record)
                    else:
                        self.known_injected(c, path, record, cat[path.stem].expected_kinds)

    def known_faithful(self, c: Check, path: Path, rec: FindingRecord) -> None:
        """Clean without the bug: the recorded decisions while they apply, then no preemption
        (the faithful model may need a different number of decisions)."""
        found = self.continued(c, path, rec, [], self.cfg.fixes, "known",
                               f"on the faithful model{self.fixes_note()}")
        if found is None:
            return
        sig, saved = found
        c.fail(FAILED, f"{sig} on the faithful model: {repro_commands(str(saved))[0]}",
               f"{path} must be clean without its bug; the faithful model finds {sig}.",
               *_reproduce(saved))

    def continued(self, c: Check, path: Path, rec: FindingRecord, bugs: Sequence[str],
                  fixes: Sequence[str], part: str, how: str) -> tuple[str, Path] | None:
        """``rec``'s recorded decisions while they apply, then no preemption (the model may
        need a different number of decisions), with ``bugs`` and ``fixes``: None if clean,
        else the finding's signature and the file it was saved to."""
        with injected(bugs, fixes):
            out = run_traced(rec.scenario, ContinueScheduler(rec.schedule),
                             executor=rec.executor, max_steps=rec.max_steps)
            self.result.fixed_executions += 1
            c.out.append(f"{path}: {len(rec.schedule)} recorded decisions, then no preemption, "
                         f"{how}: {out.steps} steps, "
                         f"{'clean' if out.finding is None else out.finding.signature}")
            if out.finding is None:
                return None
            return self.save(rec.scenario, out, bugs=bugs, executor=rec.executor,
                             spec=StrategySpec("continue", 0, {"from": str(path)}),
                             origin={"part": part, "file": str(path)}, fixes=fixes)

    def known_injected(self, c: Check, path: Path, rec: FindingRecord,
                       kinds: Sequence[str]) -> None:
        """Detected with the bug: the exact replay shows the recorded signature, or, when the
        model drifted under the saved schedule, a deterministic re-search finds the bug again
        (a pass with a warning and the refreshed file: a harmless refactor must not block a
        merge). Fails only when the bug cannot be re-found."""
        drift = replay_drift(rec, kinds, self.cfg.fixes)
        self.result.fixed_executions += 1
        cmd = repro_commands(str(path))[0]
        c.out.append(f"{path}: exact replay of {len(rec.schedule)} decisions with "
                     f"{', '.join(rec.bugs)}: {drift or rec.signature}")
        if drift is None:
            return
        fresh = refind(rec, str(path), self.cfg.fixes)
        if fresh is not None:
            self.pass_refreshed(c, "known", path, drift, fresh,
                                f" (or run: migfuzz repro --refresh {path})")
            return
        if drift.startswith("diverges"):
            c.fail(FAILED, f"{rec.signature} no longer replays ({drift}) and the re-search "
                   f"does not find {rec.bugs[0]}: {cmd}",
                   "The model changed under the reproducer and the bug is no longer found "
                   "by DFS of its scenario nor by its strategy on the catalog scenario.")
        elif drift == "ends cleanly":
            c.fail(FAILED, f"{rec.signature} not detected with {rec.bugs[0]} injected: {cmd}",
                   "The exact replay ends cleanly and the re-search does not find the bug: "
                   "the bug's override or an oracle changed.")
        else:
            c.fail(FAILED, f"{drift}, expected {rec.signature} (kinds "
                   f"{', '.join(kinds)}): {cmd}")


    # -- regressions -----------------------------------------------------------------------

    def regressions(self) -> None:
        d = self.cfg.corpus / "regressions"
        files = sorted(d.glob("*.json"))
        self.result.notes["regressions"] = [] if files else [f"no regression entries in {d}"]
        for path in files:
            with self.check("regressions", path.name) as c:
                self.regression(c, path, load(path))

    def regression(self, c: Check, path: Path, rec: FindingRecord) -> None:
        """Must not reproduce, nor show any other finding, on the (bug-injected) model."""
        if rec.bugs:
            raise FindingFileError(str(path), f"records bugs {rec.bugs}: a regression entry is "
                                   "a finding of the faithful model (bug reproducers belong "
                                   "in corpus/known/)")
        with injected(self.cfg.bugs, self.cfg.fixes):
            v = check(rec)
            runs = [("exact replay", v.first.outcome), ("continued run", v.continued),
                    ("re-search", v.research)]
            self.result.fixed_executions += 2 + sum(o is not None for _, o in runs[1:])
            c.out.append(f"{path}: {rec.signature}: {v.status}")
            c.out += v.notes
            if not v.deterministic:
                raise HarnessError("; ".join(n for n in v.notes if "NON-DETERMINISM" in n))
            found = next(((how, o) for how, o in runs if o is not None and o.finding), None)
            if found is None:
                return
            how, o = found
            assert o.finding is not None
            sig, saved = self.save(rec.scenario, o, bugs=self.cfg.bugs, executor=v.executor,
                                   spec=StrategySpec("regression", 0, {"from": str(path)}),
                                   origin={"part": "regressions", "file": str(path)})
        what = ("still reproduces" if v.reproduced else f"the {how} ends with another finding")
        c.fail(FAILED, f"{sig}: {what}: {repro_commands(str(saved))[0]}",
               f"regression {path} ({rec.signature}), {how}{self.bugs_note()}.",
               *v.notes, *_reproduce(saved))


    # -- known flaws of V2 as posted -------------------------------------------------------

    def flaws(self) -> None:
        d = self.cfg.corpus / "flaws"
        files = {p.stem: p for p in sorted(d.glob("*.json"))}
        self.result.notes["flaws"] = [
            f"{p}: not the reproducer of an upstream fix (known: {', '.join(FIXES)})"
            for name, p in files.items() if name not in FIXES]
        for name, fix in FIXES.items():
            path = d / f"{name}.json"
            record: FindingRecord | None = None
            try:
                if not path.exists():
                    raise FindingFileError(
                        str(path), f"no reproducer of the flaw {name}: make one with migfuzz "
                        f"stress --scenario {fix.scenario}{fix_flags(without(name))} -x, then "
                        "migfuzz minimize (corpus/README.md)")
                record = load(path)
                problem = ""
            except FindingFileError as exc:
                problem = str(exc)
            for mode in ("without-fix", "fixed"):
                with self.check("flaws", f"{name}[{mode}]") as c:
                    if record is None:
                        c.fail(INVALID, problem)
                    elif mode == "without-fix":
                        self.flaw_detected(c, path, record, fix)
                    else:
                        self.flaw_fixed(c, path, record, fix)

    def flaw_detected(self, c: Check, path: Path, rec: FindingRecord, fix: UpstreamFix) -> None:
        """Detected with every fix but F's: the exact replay shows one of F's kinds."""
        others = without(fix.name)
        with injected(rec.bugs, others):
            rep = replay_schedule(rec.scenario, rec.schedule, executor=rec.executor,
                                  max_steps=rec.max_steps)
        self.result.fixed_executions += 1
        f = None if rep.outcome is None else rep.outcome.finding
        c.out.append(f"{path}: exact replay of {len(rec.schedule)} decisions with every fix "
                     f"but {fix.name}: {rep.signature or rep.divergence or 'clean'}")
        redo = (f"re-find and re-minimize it: migfuzz stress --scenario {fix.scenario}"
                f"{fix_flags(others)} -x, then migfuzz minimize")
        cmd = f"migfuzz repro {path}"
        if rep.divergence is not None:
            # Drift (a harmless refactor moves the saved decisions): re-find the flaw as the
            # known part re-finds a bug, with the same fixes, and pass with a warning.
            fresh = refind(rec, str(path), others, scenario_name=fix.scenario,
                           strategy="random")
            if fresh is not None and fresh.kind in fix.finding_kinds:
                self.pass_refreshed(c, "flaws", path, f"diverges ({rep.divergence})", fresh)
                return
            c.fail(FAILED, f"{fix.name}: the reproducer no longer replays ({rep.divergence}) "
                   f"and the re-search does not find the flaw: {cmd}",
                   f"The model changed under the reproducer (drift): {redo}.")
        elif f is None:
            c.fail(FAILED, f"{fix.name}: the flaw is not detected without its fix: {cmd}",
                   "The exact replay ends cleanly: the model no longer has the flaw of V2 as "
                   "posted, or an oracle stopped seeing it.")
        elif f.kind not in fix.finding_kinds:
            c.fail(FAILED, f"{fix.name}: detected as {f.signature}, expected one of "
                   f"{', '.join(fix.finding_kinds)}: {cmd}")

    def flaw_fixed(self, c: Check, path: Path, rec: FindingRecord, fix: UpstreamFix) -> None:
        """Clean with every fix: the recorded decisions while they apply, then no preemption
        (the fix may change the number of decisions the run needs)."""
        found = self.continued(c, path, rec, rec.bugs, sorted(FIXES), "flaws",
                               "with every fix")
        if found is None:
            return
        sig, saved = found
        c.fail(FAILED, f"{sig} with every fix applied: {repro_commands(str(saved))[0]}",
               f"{path} must be clean with {fix.name}'s fix (and every other); the fixed "
               f"model finds {sig}: the fix is broken, or another flaw shows.",
               *_reproduce(saved))

