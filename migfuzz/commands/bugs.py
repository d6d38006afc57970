"""``migfuzz bugs``: list the catalog of injectable historical bugs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..bugs import check_bugs, check_depths

HELP = "list the catalog of injectable historical bugs"
DESCRIPTION: str | None = None


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")
    p.add_argument("--measure", nargs="*", metavar="NAME", default=None,
                   help="re-measure the depth of the named bugs (default: all; exhaustive "
                        "preemption-bounded DFS of each one's scenario, minutes for all) and "
                        "compare with the catalog; exit 1 on a mismatch")


def run(a: argparse.Namespace) -> int:
    from target.bugs import CATALOG

    if a.measure is not None:
        return 1 if check_depths(check_bugs(a.measure) or None) else 0
    rows: list[dict[str, Any]] = [
        {"name": b.name, "year": b.year, "breaks": b.breaks, "summary": b.summary,
         "reference": b.reference, "expected_kinds": list(b.expected_kinds),
         "scenario": b.scenario, "strategy": b.strategy, "depth": b.depth, "kind": b.kind,
         "history": b.history, "model_check": b.model_check,
         "depth_without_check": b.depth_without_check, "fixes": list(b.fixes)}
        for b in CATALOG.values()
    ]
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    w = max(len(str(r["name"])) for r in rows)
    for r in rows:
        print(f"{r['name']:<{w}}  {r['year']}  {r['kind']}, depth {r['depth']}"
              f"{'' if r['history'] == 'upstream' else ' (mutation of the history)'}: "
              f"{r['summary']}")
        if r["model_check"]:
            print(f"{'':<{w}}        depth {r['depth_without_check']} without the model-side "
                  f"check {r['model_check']} (the kernel of the time had none)")
        print(f"{'':<{w}}        breaks {r['breaks']}; shows as {', '.join(r['expected_kinds'])}"
              f" (scenario {r['scenario']}, {r['strategy']}"
              f"{', with fixes: ' + ', '.join(r['fixes']) if r['fixes'] else ''})")
        print(f"{'':<{w}}        {r['reference']}")
    return 0
