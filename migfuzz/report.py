"""Text reports: a finding and its replay verdict, the stress summary, reproduce commands.

Formatting never raises on odd content (shuttle's rule for failure output: the path that
reports a failure must not itself fail): values are ``str``-ed, never indexed blindly.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from stress.workload import execution_task_names

from .campaign import Entry, Migrations, Summary, migration_rates
from .replay import Verdict
from .timeline import describe, last_touching, render


def repro_commands(path: str, executor: str | None = None) -> list[str]:
    """The shell commands that replay ``path``: the CLI and the pytest equivalent."""
    q = shlex.quote(path)
    extra = f" --executor {executor}" if executor else ""
    return [f"migfuzz repro {q}{extra}", f"pytest -p migfuzz.pytest_plugin {q}"]


def format_finding(v: Verdict) -> list[str]:
    r = v.record
    tasks, ops = r.scenario.size()
    details = json.dumps(r.details, sort_keys=True, default=repr)
    if len(details) > 400:
        details = details[:397] + "..."
    return [
        f"finding:   {r.signature}",
        f"message:   {r.message}",
        f"where:     task {r.task}, step {r.step}, function {r.function}",
        f"details:   {details}",
        f"input:     scenario {r.scenario.name} ({tasks} tasks, {ops} ops), "
        f"{len(r.schedule)} decisions, found by {r.strategy.describe()}",
        f"variant:   executor {v.executor}"
        + (f" (recorded on {r.executor})" if v.executor != r.executor else "")
        + f", bugs: {', '.join(r.bugs) or 'none'}, fixes: {fixes_text(r.fixes)}"
        + f", max_steps {r.max_steps}",
        *([f"known:     {r.known_flaw.label}"] if r.known_flaw is not None else []),
        f"recorded:  tool {r.tool_version}, model commit {r.model_commit}, hits {r.hits}, "
        f"first seen {r.first_seen or '?'}, last seen {r.last_seen or '?'}",
    ]


def format_verdict(v: Verdict, path: str, *, timeline: bool = True, tail: int | None = None,
                   width: int | None = None, executor_arg: str | None = None) -> str:
    lines = [f"== {path}", *format_finding(v)]
    o = v.shown
    if timeline and o is not None and o.events is not None:
        names = execution_task_names(v.record.scenario)
        which = ("" if o is v.first.outcome else " of the run continued past the recording"
                 if o is v.continued else f" of {v.record.strategy.describe()} re-run")
        lines += ["", f"timeline{which} ({len(names)} tasks, {len(o.events)} events, "
                  f"{o.steps} steps; a change of column is a context switch):",
                  render(o.events, names, width=width, tail=tail)]
        if o.finding is not None:
            f = o.finding
            lines.append(f"FINDING at step {f.step} in {f.task}: {f.signature}: {f.message}")
            what, cause = last_touching(o.events, f.details)
            if what and not cause:
                lines.append(f"  no event of the timeline touched {what}")
            if cause:
                lines.append(f"  the last events that touched {what} (read these first):")
                lines += [f"  {step:5d} {names[tid] if 0 <= tid < len(names) else '-':>10}  "
                          f"{describe(event, fields)}" for step, tid, event, fields in cause]
        else:
            lines.append("(run ended without a finding)")
    lines.append("")
    if v.status == "reproduced":
        same = "identical trace" if v.trace_matches else "trace differs"
        lines.append(f"result: REPRODUCED ({same}: {v.first.trace_hash}; "
                     f"{'two replays identical' if v.deterministic else 'replays differ'})")
    elif v.status == "drift-reproduced":
        lines.append("result: REPRODUCED BY RE-SEARCH (the recorded schedule drifted)")
    elif v.status == "fixed":
        lines.append("result: NO LONGER REPRODUCES")
    else:
        lines.append("result: DRIFT (cannot replay the recorded schedule; not evidence of a "
                     "fix)")
    lines += [f"  {n}" for n in v.notes]
    lines.append("reproduce:")
    artifact = v.record.origin.get("artifact") if isinstance(v.record.origin, dict) else None
    if artifact:  # a raw libFuzzer input: say how it was decoded and what was injected
        extra = f" --target {v.record.origin.get('fuzz_target')}" + "".join(
            f" --bug {b}" for b in v.record.bugs) + "".join(
            f" --fix {x}" for x in v.record.fixes)
        lines.append(f"  migfuzz repro {path}{extra}")
    else:
        lines += [f"  {c}" for c in repro_commands(path, executor_arg)]
    return "\n".join(lines)


def verdict_json(v: Verdict, path: str) -> dict[str, Any]:
    return {
        "file": path, "status": v.status, "signature": v.record.signature,
        "replay_signature": v.first.signature, "executor": v.executor,
        "recorded_trace_hash": v.record.trace_hash, "trace_hash": v.first.trace_hash,
        "second_trace_hash": v.second.trace_hash, "deterministic": v.deterministic,
        "divergence": v.first.divergence, "notes": v.notes, "fixes": v.record.fixes,
        "known_flaw": None if v.record.known_flaw is None else v.record.known_flaw.to_json(),
        "commands": repro_commands(path),
    }


def migration_lines(migrations: Migrations, head: str = "migrated   ") -> list[str]:
    """Pages moved / pages the migrate operations found, per strategy and per scenario: a
    model change that makes migration a safe no-op shows here as a collapsed rate."""
    rates = migration_rates(migrations)
    lines = []
    for kind in ("strategy", "scenario"):
        cells = ", ".join(f"{name} {r['rate']:.0%} ({int(r['moved']):,}/{int(r['attempted']):,})"
                          for name, r in rates[f"by_{kind}"].items())
        if cells:
            lines.append(f"  {head} by {kind}: {cells}")
    return lines


def _summary_head(s: Summary) -> list[str]:
    c = s.config
    by = ", ".join(f"{k} {v:,}" for k, v in sorted(s.by_strategy.items())) or "-"
    total_hits = sum(e.hits for e in s.findings)
    lines = [
        "",
        "migfuzz stress summary",
        f"  schedules   {s.runs:,} in {s.seconds:.1f} s: {s.rate:,.1f} schedules/s "
        f"({c.jobs} job{'s' if c.jobs != 1 else ''}"
        f"{f' on cluster {c.cluster}' if c.cluster else ''}, executor {c.executor})",
        f"  decisions   {s.decisions:,}",
        "  operations  " + (", ".join(f"{k} {v:,}" for k, v in s.op_counts.items()) or "-"),
        f"  strategies  {strategies_line(c.strategy, c.members)}: {by}",
        f"  scenarios   {c.scenario or 'mixed (canonical + generated)'}; seed {c.seed}; "
        f"bugs {', '.join(c.bugs) or 'none'}; fixes {fixes_text(c.fixes)}",
        *migration_lines(s.migrations),
        *(["  move_pages  statuses: "
           + ", ".join(f"{k} {v:,}" for k, v in s.move_pages.items())] if s.move_pages else []),
        f"  findings    {len(s.findings)} signature{'s' if len(s.findings) != 1 else ''}, "
        f"{total_hits:,} hit{'s' if total_hits != 1 else ''} -> {c.out}"
        + (f" ({len(s.new_findings)} not explained by a known flaw)" if s.findings else ""),
    ]
    if s.interrupted:
        lines.append("  interrupted by Ctrl-C: the findings so far are saved")
    return lines


def _summary_tail(s: Summary) -> list[str]:
    lines: list[str] = []
    if s.findings:
        lines += ["", "reproduce:"]
        lines += [f"  {repro_commands(str(e.path))[0]}" for e in s.findings]
    for w_ in s.warnings:
        lines.append(f"  warning: {w_}")
    if s.error is not None:
        err = s.error
        lines += ["", f"HARNESS ERROR (not a finding of the model) in run {err.run} "
                  f"({err.strategy}, scenario {err.scenario}): {err.error}",
                  err.traceback.rstrip()]
    return lines


_NEW_TITLE = "findings not explained by a known flaw:"
_KNOWN_TITLE = "known flaws of V2 as posted (each gone with its upstream fix; `migfuzz fixes`):"


def format_summary(s: Summary) -> str:
    lines = _summary_head(s)
    if s.findings:
        w = max(len("signature"), *(len(e.record.signature) for e in s.findings))
        w = min(w, 70)
        head = f"  {'signature':<{w}}  {'hits':>6}  new  tasks  ops  decisions  file"
        known = [e for e in s.findings if e.record.known_flaw is not None]
        if s.new_findings:
            lines += ["", _NEW_TITLE, head]
            lines += [_row(e, w) for e in s.new_findings]
        if known:
            lines += ["", _KNOWN_TITLE, head]
            for e in known:
                assert e.record.known_flaw is not None
                lines += [_row(e, w), f"    {e.record.known_flaw.label}"]
    return "\n".join(lines + _summary_tail(s))


def print_summary_rich(s: Summary, console: Console) -> None:
    """The summary on a terminal: the same lines, the findings as tables."""
    console.print("\n".join(_summary_head(s)), markup=False, highlight=False)
    known = [e for e in s.findings if e.record.known_flaw is not None]
    for title, entries in ((_NEW_TITLE, s.new_findings), (_KNOWN_TITLE, known)):
        if not entries:
            continue
        t = Table(title=title, title_justify="left", show_lines=False)
        for col, right in (("signature", False), ("hits", True), ("new", False),
                           ("tasks", True), ("ops", True), ("decisions", True),
                           ("file", False)):
            t.add_column(col, justify="right" if right else "left", overflow="fold")
        for e in entries:
            tasks, ops, dec = e.record.size()
            t.add_row(e.record.signature, f"{e.hits:,}", "yes" if e.new else "no", str(tasks),
                      str(ops), str(dec), str(e.path))
        console.print(t)
        labels = [f"  {e.record.signature}: {e.record.known_flaw.label}"
                  for e in entries if e.record.known_flaw is not None]
        if labels:
            console.print("\n".join(labels), markup=False, highlight=False)
    console.print("\n".join(_summary_tail(s)), markup=False, highlight=False)


def _row(e: Entry, w: int) -> str:
    t, o, d = e.record.size()
    return (f"  {e.record.signature[:w]:<{w}}  {e.hits:>6}  "
            f"{'yes' if e.new else 'no ':<3}  {t:>5}  {o:>3}  {d:>9}  {e.path}")


def fixes_text(fixes: Sequence[str]) -> str:
    """``all`` when every upstream fix is applied, else the names (``none``: V2 as posted)."""
    from target.fixes import FIXES

    if fixes and set(fixes) == set(FIXES):
        return "all"
    return ", ".join(fixes) or "none (V2 as posted)"


def strategies_line(strategy: str, members: tuple[str, ...]) -> str:
    if strategy == "portfolio":
        return f"portfolio ({', '.join(members)})"
    return strategy
