"""Time to each real flaw of V2 as posted under the default `migfuzz stress`, and the check
that the model is clean with every upstream fix applied.

    .venv/bin/python bench/flaws.py [--seeds 5] [--seconds 300] [--runs 20000]
                                    [--out bench/flaws.md]

Part 1: `migfuzz stress --seconds S --seed K --out DIR --json` on the V2 model as posted
(defaults: 2 jobs, trio executor, portfolio, mixed canonical and generated scenarios), one run
per seed. Each finding file in DIR is attributed to the flaw that labels it (the campaign's
known-flaw label, which it decides by replaying the finding with that flaw's fix) and timed by
its ``first_seen`` stamp against the run's start (one-second resolution). The table gives the
median over the seeds per flaw, counting a seed that missed it as the budget.

Part 2: `migfuzz stress --fixes all --runs N --json`: the number of findings (must be 0) and
the operation counts of the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_time_to_bug import machine

from target.fixes import FIXES

ROOT = Path(__file__).resolve().parent.parent


def flaw_of(record: dict[str, Any]) -> str | None:
    """The fix name whose flaw labels this finding file (None: not a known flaw)."""
    label = record.get("known_flaw")  # {"fix", "label", "how"} or null (corpus/README.md)
    fix = label.get("fix") if isinstance(label, dict) else None
    return fix if fix in FIXES else None


def campaign(seed: int, seconds: float, out: Path) -> tuple[dict[str, float], dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cmd = [sys.executable, "-m", "migfuzz.cli", "stress", "--seed", str(seed), "--seconds",
           str(seconds), "--out", str(out), "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          timeout=seconds + 300)
    summary: dict[str, Any] = {}
    try:
        summary = json.loads(proc.stdout)
    except ValueError:
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
    found: dict[str, float] = {}
    for path in sorted(out.glob("*.json")):
        rec = json.loads(path.read_text())
        name = flaw_of(rec) or f"NEW: {rec.get('signature')}"
        first = dt.datetime.fromisoformat(rec["first_seen"])
        found[name] = min(found.get(name, 1e9), (first - start).total_seconds())
    return found, summary


def clean_run(runs: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "migfuzz.cli", "stress", "--fixes", "all", "--runs",
           str(runs), "--out", str(ROOT / "build" / "flaws-clean"), "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    out: dict[str, Any] = json.loads(proc.stdout)
    out["exit"] = proc.returncode
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--runs", type=int, default=20000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "flaws.md"))
    args = ap.parse_args()
    times: dict[str, list[float]] = {}
    seen_new: set[str] = set()
    lines = []
    for seed in range(args.seeds):
        found, summary = campaign(seed, args.seconds, ROOT / "build" / "flaws" / str(seed))
        print(seed, found, summary.get("runs"), flush=True)
        lines.append(f"| {seed} | {summary.get('runs', '?')} | " + ", ".join(
            f"{k} {v:.0f} s" for k, v in sorted(found.items(), key=lambda kv: kv[1])) + " |")
        for name in list(FIXES) + [k for k in found if k.startswith("NEW")]:
            if name.startswith("NEW"):
                seen_new.add(name)
            times.setdefault(name, []).append(found.get(name, args.seconds))
    clean = clean_run(args.runs)
    md = [
        "# Real flaws of V2 as posted: time to each, and the fixed model's silence", "",
        f"Machine: {machine()}.", "",
        f"Command: `.venv/bin/python bench/flaws.py --seeds {args.seeds} --seconds "
        f"{args.seconds:g} --runs {args.runs}`", "",
        f"## `migfuzz stress --seconds {args.seconds:g} --seed K` on V2 as posted", "",
        "Median seconds from the start of the campaign to the first finding the flaw labels "
        f"(found/seeds); a seed that missed it counts as {args.seconds:g} s (`>`).", "",
        "| flaw (fix) | median s | found | upstream fix |", "|---|---|---|---|",
    ]
    for name, ts in times.items():
        found_n = sum(t < args.seconds for t in ts)
        med = statistics.median(ts)
        fix = FIXES.get(name)
        title = f"{fix.title} ({fix.date})" if fix else "not a known flaw"
        md.append(f"| {name} | {'>' if med >= args.seconds else ''}{med:.0f} | "
                  f"{found_n}/{len(ts)} | {title} |")
    md += ["", "Per seed (runs, then each flaw's first detection):", "",
           "| seed | runs | first detections |", "|---|---|---|", *lines, "",
           f"## `migfuzz stress --fixes all --runs {args.runs}`", "",
           f"Exit {clean['exit']}, {len(clean.get('findings', []))} findings, "
           f"{clean.get('runs')} runs in {clean.get('seconds', '?')} s.", "",
           "Operations run: " + ", ".join(
               f"{k} {v}" for k, v in sorted(clean.get("op_counts", {}).items())) + ".", ""]
    if seen_new:
        md += ["Findings not explained by a known flaw: " + ", ".join(sorted(seen_new)), ""]
    Path(args.out).write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
