"""The gate's reports: JUnit XML (one testsuite per part) and the text summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..report import fixes_text
from ._plan import (
    DFS_EXECUTOR,
    DFS_PREEMPTION_BOUND,
    ERROR,
    FAILED,
    INVALID,
    MIN_RUNS_PER_SEED,
    PASSED,
    STRESS_EXECUTOR,
    STRESS_RUNS_PER_SECOND,
    SUITES,
    GateResult,
)


def _xml_text(s: str) -> str:
    """XML 1.0 cannot hold most control characters, even escaped (a traceback might)."""
    return "".join(ch if ch in "\t\n\r" or ord(ch) >= 0x20 else f"\\x{ord(ch):02x}" for ch in s)


def junit_xml(r: GateResult) -> str:
    """One testsuite per part, one testcase per check; failures name signature and command."""
    root = ET.Element("testsuites", name="migfuzz gate", tests=str(len(r.checks)),
                      failures=str(r.count(FAILED)),
                      errors=str(r.count(ERROR) + r.count(INVALID)), time=f"{r.seconds:.3f}")
    for suite in SUITES:
        checks = [c for c in r.checks if c.suite == suite]
        ts = ET.SubElement(root, "testsuite", name=f"migfuzz.gate.{suite}",
                           tests=str(len(checks)), failures=str(r.count(FAILED, suite)),
                           errors=str(r.count(ERROR, suite) + r.count(INVALID, suite)),
                           skipped="0", time=f"{sum(c.seconds for c in checks):.3f}")
        props = r.properties.get(suite, {})
        if props:
            pe = ET.SubElement(ts, "properties")
            for k, v in props.items():
                ET.SubElement(pe, "property", name=k, value=_xml_text(v))
        for c in checks:
            tc = ET.SubElement(ts, "testcase", classname=f"migfuzz.gate.{suite}", name=c.name,
                               time=f"{c.seconds:.3f}")
            if c.properties:
                pe = ET.SubElement(tc, "properties")
                for k, v in c.properties.items():
                    ET.SubElement(pe, "property", name=k, value=_xml_text(v))
            if c.status != PASSED:
                tag = "failure" if c.status == FAILED else "error"
                kind = {FAILED: "finding", INVALID: "invalid-input", ERROR: "harness-error"}
                el = ET.SubElement(tc, tag, message=_xml_text(c.message), type=kind[c.status])
                el.text = _xml_text(c.text)
            if c.out:
                ET.SubElement(tc, "system-out").text = _xml_text("\n".join(c.out))
        notes = r.notes.get(suite, [])
        if notes:
            ET.SubElement(ts, "system-out").text = _xml_text("\n".join(notes))
    ET.indent(root)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(root, encoding="unicode") + "\n")


def verdicts(xml_text: str) -> list[tuple[str, str, str]]:
    """(classname, name, passed|failure|error|skipped) per testcase: what must not vary
    between two gates of one commit (timings and messages may)."""
    out = []
    for tc in ET.fromstring(xml_text).iter("testcase"):
        status = next((t for t in ("failure", "error", "skipped") if tc.find(t) is not None),
                      "passed")
        out.append((tc.get("classname", ""), tc.get("name", ""), status))
    return out


def format_summary(r: GateResult, junit: str | None = None) -> str:
    cfg = r.config
    by = {s: [c for c in r.checks if c.suite == s] for s in SUITES}

    def tally(suite: str) -> str:
        cs = by[suite]
        bad = len(cs) - r.count(PASSED, suite)
        return f"{len(cs)} check{'s' if len(cs) != 1 else ''}, " + (
            f"{bad} NOT PASSED" if bad else "all passed")

    injected_into = " (into the regressions, dfs and stress parts)" if cfg.bugs else ""
    lines = ["", "migfuzz gate summary",
             f"  bugs injected  {', '.join(cfg.bugs) or 'none'}{injected_into}",
             f"  fixes          {fixes_text(cfg.fixes)} (every part but flaws)",
             f"  known          {tally('known')} (each reproducer without and with its bug)"]
    lines += [f"                 {n}" for n in r.notes.get("known", [])]
    lines.append(f"  regressions    {tally('regressions')}")
    lines += [f"                 {n}" for n in r.notes.get("regressions", [])]
    drifted = [c.name for c in by["regressions"] if any("DRIFT" in o for o in c.out)]
    if drifted:
        lines.append(f"                 DRIFT (recorded schedule no longer applies; refresh "
                     f"the entry): {', '.join(drifted)}")
    lines.append(f"  dfs            {tally('dfs')}, DPOR, preemption bound {DFS_PREEMPTION_BOUND} "
                 f"unless said below, executor {DFS_EXECUTOR}")
    for c in by["dfs"]:
        lines.append(f"                 {c.name}: {c.out[0] if c.out else c.message}")
    lines.append(f"  flaws          {tally('flaws')} (each known flaw of V2 detected without "
                 "its upstream fix, gone with every fix)")
    lines += [f"                 {n}" for n in r.notes.get("flaws", [])]
    total = sum(int(c.properties.get("runs", "0")) for c in by["stress"])
    lines.append(f"  stress         {tally('stress')}: {len(cfg.seeds)} seeds x "
                 f"{r.runs_per_seed:,} runs planned, {total:,} run ({cfg.jobs} job(s), "
                 f"executor {STRESS_EXECUTOR}, stop at a seed's first finding)")
    if cfg.scenario_file:
        lines.append(f"                 every run runs the scenario file {cfg.scenario_file}, "
                     "under every strategy of the portfolio")
    fixed = f"{r.reserved:.1f} s for the {r.fixed_executions:,} executions before it"
    lines.append(
        f"                 runs fixed by the budget, not the clock: ({cfg.budget:g} s - {fixed})"
        f" x {STRESS_RUNS_PER_SECOND} runs/s, split over the seeds" if r.reserved < cfg.budget
        else f"                 the budget ({cfg.budget:g} s) is below the fixed part ({fixed}):"
        f" the minimum of {MIN_RUNS_PER_SEED} runs per seed")
    bad = [c for c in r.checks if c.status != PASSED]
    if bad:
        lines += ["", "not passed:"]
        for c in bad:
            lines.append(f"  {c.status.upper():7} {c.suite}/{c.name}: {c.message}")
    verdict = {0: "PASS", 1: "FAIL (findings)", 2: "FAIL (unusable corpus file)",
               3: "FAIL (harness error)"}[r.exit_code]
    lines += ["", f"result: {verdict}: {len(r.checks)} checks, {r.count(PASSED)} passed, in "
              f"{r.seconds:.1f} s" + (f"; JUnit: {junit}" if junit else "")]
    return "\n".join(lines)


