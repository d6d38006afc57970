"""``migfuzz scenarios``: list the canonical scenarios."""

from __future__ import annotations

import argparse
import json

from stress.scenarios import CANONICAL

HELP = "list the canonical scenarios"
DESCRIPTION: str | None = None


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


def run(a: argparse.Namespace) -> int:
    rows = []
    for name, factory in CANONICAL.items():
        sc = factory()
        tasks, ops = sc.size()
        para = (factory.__doc__ or "").strip().split("\n\n")[0]
        rows.append({"name": name, "tasks": tasks, "ops": ops,
                     "summary": " ".join(para.split())})
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    w = max(len(str(r["name"])) for r in rows)
    print(f"{'scenario':<{w}}  tasks  ops  summary")
    for row in rows:
        print(f"{row['name']:<{w}}  {row['tasks']:>5}  {row['ops']:>3}  {row['summary']}")
    return 0
