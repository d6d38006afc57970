"""``migfuzz fixes``: list the upstream fixes of V2's real flaws."""

from __future__ import annotations

import argparse
import json
from typing import Any

HELP = "list the upstream fixes of V2's real flaws"
DESCRIPTION: str | None = (
    "The real flaws of Swapless V2 as posted that the model reaches, and the upstream change "
    "that fixed each: apply with --fix NAME (repeatable) or --fixes all.")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


def run(a: argparse.Namespace) -> int:
    from target.fixes import FIXES

    rows: list[dict[str, Any]] = [
        {"name": f.name, "title": f.title, "commit": f.commit, "date": f.date,
         "breaks": f.breaks, "summary": f.summary, "finding_kinds": list(f.finding_kinds),
         "scenario": f.scenario, "needs": f.needs, "requires": list(f.requires)}
        for f in FIXES.values()
    ]
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    w = max(len(str(r["name"])) for r in rows)
    pad = " " * (w + 2)
    for r in rows:
        print(f"{r['name']:<{w}}  {r['date']}  \"{r['title']}\"")
        print(f"{pad}{r['commit']}")
        print(f"{pad}flaw: {r['summary']}")
        print(f"{pad}breaks {r['breaks']}; shows as {', '.join(r['finding_kinds'])} "
              f"(scenario {r['scenario']})")
        if r["requires"]:
            print(f"{pad}requires {', '.join(r['requires'])}")
    print("\napply with --fix NAME (repeatable) or --fixes all; the default is V2 as posted")
    return 0
