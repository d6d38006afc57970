"""Mutation score of ``migfuzz stress``: sample mutants of the model, run the default stress on
each, count which are killed.

    .venv/bin/python bench/mutation.py [--mutants 70] [--runs 1500] [--seed 18] [--write]

Operators (issue 18 item 6), applied to function bodies of ``target/mm`` files:

    delete       a statement becomes ``pass``
    negate-if    ``if c:`` becomes ``if not (c):``
    compare      a comparison operator is swapped for its opposite (== !=, < >=, is / is not ...)
    constant     an integer constant c becomes c + 1 (True/False flip)
    drop-call    a get/put/lock/unlock statement is removed
    swap         two adjacent statements of one block change places

Functions that ``--fixes all`` replaces (V2's flawed ``remove_migration_pte`` ...) are not
sampled: their V2 versions never run in the measured stress.

Files: ``--files`` globs over target/mm (default: migrate.py, rmap.py, memory.py, the files
whose vma, mremap, mprotect, mlock and swapoff paths issue 10 added or rewrote, plus every
model file that did not exist when this tool was written, so files added later are sampled
too). Every mutation site is enumerated in a fixed order and ``--mutants`` are drawn with
``random.Random(--seed)``. Each mutant is a copy of ``target/`` in a temporary directory put
first on PYTHONPATH, and runs ``migfuzz stress --runs R -x --jobs 1 --seed 0 --executor
direct --fixes all`` in a subprocess with a timeout: a fixed number of runs, not seconds, so
the verdict does not depend on machine load (``--parallel`` mutants at a time changes only the
wall time). ``--fixes all`` applies the upstream fixes of V2's real flaws: the faithful model
finds those within seconds, and ``-x`` would stop every mutant's run at one of them, so a
mutant is judged against the model with the flaws fixed, which passes the same stress clean
(checked first). Exit 1 is killed (a finding), 3 killed by a harness error
(the mutant broke the model's Python), a timeout killed by a hang; exit 0 survived.
Survivors are argued in bench/mutation_notes.json (equivalent or not, and why), which this
tool merges into bench/mutation.md.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import copy
import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MM = ROOT / "target" / "mm"
NOTES = HERE / "mutation_notes.json"
# The model files when this tool was written: any other file of target/mm is new and sampled.
KNOWN_AT_WRITING = {
    "__init__.py", "filemap.py", "fork.py", "locking.py", "memory.py", "mempolicy.py",
    "migrate.py", "mlock.py", "mmap.py", "page_alloc.py", "pgtable.py", "rmap.py", "swap.py",
    "swap_state.py", "swapfile.py", "swapops.py", "syscalls.py", "types.py", "vmscan.py",
    "world.py",
}
DEFAULT_FILES = ("migrate.py", "rmap.py", "memory.py",
                 # rewritten by issue 10 (vma split/merge, ranged mlock) though they existed
                 "mmap.py", "mlock.py")
REFCOUNT_AND_LOCK_CALLS = {
    "get_page", "get_page_locked", "put_page", "__put_page", "lock", "unlock", "trylock",
    "lock_page", "unlock_page", "TestSetPageLocked", "down_read", "up_read", "down_write",
    "up_write", "rcu_read_lock", "rcu_read_unlock", "swap_duplicate", "swap_free",
}
OPPOSITE: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE,
    ast.LtE: ast.Gt, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


@dataclass(frozen=True)
class Mutant:
    file: str
    op: str
    line: int
    index: int  # which site of this operator in the file, in walk order
    detail: str

    @property
    def key(self) -> str:
        return f"{self.file}:{self.line}:{self.op}:{self.detail}"


def _call_name(node: ast.stmt) -> str | None:
    value = node.value if isinstance(node, ast.Expr) else None
    if isinstance(value, ast.Await):
        value = value.value
    if not isinstance(value, ast.Call):
        return None
    f = value.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def _blocks(tree: ast.AST) -> list[list[ast.stmt]]:
    """Statement lists inside functions (docstrings excluded), in walk order."""
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            for field in ("body", "orelse", "finalbody"):
                block = getattr(node, field, None)
                if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                    if node is fn and isinstance(block[0], ast.Expr) and isinstance(
                            block[0].value, ast.Constant):
                        block = block[1:]
                    if block:
                        out.append(block)
    return out


def _sites(tree: ast.Module) -> list[tuple[str, int, str, object]]:
    """(op, line, detail, handle) of every mutation site; handle locates it in ``tree``."""
    sites: list[tuple[str, int, str, object]] = []
    seen: set[int] = set()
    for bi, block in enumerate(_blocks(tree)):
        for si, st in enumerate(block):
            if id(st) in seen:
                continue
            seen.add(id(st))
            if not isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
                sites.append(("delete", st.lineno, ast.unparse(st).splitlines()[0][:60],
                              (bi, si)))
            name = _call_name(st)
            if name in REFCOUNT_AND_LOCK_CALLS:
                sites.append(("drop-call", st.lineno, name, (bi, si)))
            if si + 1 < len(block) and ast.dump(st) != ast.dump(block[si + 1]):
                sites.append(("swap", st.lineno, f"with line {block[si + 1].lineno}",
                              (bi, si)))
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.If):
                sites.append(("negate-if", node.lineno, ast.unparse(node.test)[:60], node))
            elif isinstance(node, ast.Compare):
                for i, cmp in enumerate(node.ops):
                    if type(cmp) in OPPOSITE:
                        sites.append(("compare", node.lineno,
                                      f"{type(cmp).__name__} #{i}", (node, i)))
            elif isinstance(node, ast.Constant) and type(node.value) in (int, bool):
                sites.append(("constant", node.lineno, repr(node.value), node))
    return sites


def mutate(source: str, op: str, index: int) -> str:
    """The source with the ``index``-th site of ``op`` mutated."""
    tree = ast.parse(source)
    blocks = _blocks(tree)
    matching = [s for s in _sites(tree) if s[0] == op]
    _, _, _, handle = matching[index]
    if op in ("delete", "drop-call"):
        bi, si = handle  # type: ignore[misc]
        blocks[bi][si].__class__ = ast.Pass
        blocks[bi][si].__dict__.clear()
        blocks[bi][si].lineno = 0
    elif op == "swap":
        bi, si = handle  # type: ignore[misc]
        a, b = blocks[bi][si], blocks[bi][si + 1]
        sa, sb = copy.copy(a.__dict__), copy.copy(b.__dict__)
        a.__class__, b.__class__ = b.__class__, a.__class__
        a.__dict__.clear()
        a.__dict__.update(sb)
        b.__dict__.clear()
        b.__dict__.update(sa)
    elif op == "negate-if":
        node = handle
        assert isinstance(node, ast.If)
        node.test = ast.UnaryOp(ast.Not(), node.test)
    elif op == "compare":
        node, i = handle  # type: ignore[misc]
        node.ops[i] = OPPOSITE[type(node.ops[i])]()
    elif op == "constant":
        node = handle
        assert isinstance(node, ast.Constant)
        node.value = (not node.value) if isinstance(node.value, bool) else node.value + 1
    ast.fix_missing_locations(tree)
    return ast.unparse(tree)


def replaced_by_fixes(path: Path) -> list[tuple[int, int]]:
    """Line ranges of the functions of ``path`` that ``--fixes all`` replaces: V2's flawed
    versions never run in the measured stress, so a mutant there measures nothing (the
    fixed versions in target/fixes/ are what runs)."""
    from target.fixes import FIXES

    module = f"target.mm.{path.stem}"
    names = {key.split(":", 1)[1] for fix in FIXES.values() for key in fix.overrides
             if key.split(":", 1)[0] == module}
    tree = ast.parse(path.read_text())
    return [(fn.lineno, fn.end_lineno or fn.lineno) for fn in tree.body
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name in names]


def enumerate_mutants(files: list[Path]) -> list[Mutant]:
    out = []
    for path in files:
        tree = ast.parse(path.read_text())
        skip = replaced_by_fixes(path)
        counts: dict[str, int] = {}
        for op, line, detail, _ in _sites(tree):
            i = counts.get(op, 0)  # the index counts every site: mutate() walks them all
            counts[op] = i + 1
            if not any(lo <= line <= hi for lo, hi in skip):
                out.append(Mutant(path.name, op, line, i, detail))
    return out


def run_mutant(m: Mutant | None, runs: int, timeout: float) -> tuple[str, float, str]:
    """(verdict, seconds, finding or error line) of one mutant (None: the model as it is)."""
    with tempfile.TemporaryDirectory(prefix="migfuzz-mutant-") as tmp:
        shutil.copytree(ROOT / "target", Path(tmp) / "target",
                        ignore=shutil.ignore_patterns("__pycache__"))
        if m is not None:
            path = Path(tmp) / "target" / "mm" / m.file
            path.write_text(mutate(path.read_text(), m.op, m.index))
        # The mutant's target/ first, then this checkout's stress/ and migfuzz/ (not whatever
        # the venv's editable install points at), so a copy of the tree measures itself.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join((tmp, str(ROOT))),
               "PYTHONDONTWRITEBYTECODE": "1"}
        cmd = [sys.executable, "-m", "migfuzz.cli", "stress", "--runs", str(runs), "-x",
               "--jobs", "1", "--seed", "0", "--executor", "direct", "--fixes", "all", "--json",
               "--out", str(Path(tmp) / "findings")]
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                               cwd=tmp)
        except subprocess.TimeoutExpired:
            return "killed-timeout", time.perf_counter() - t0, f"no verdict in {timeout:.0f} s"
        dt = time.perf_counter() - t0
        if p.returncode == 1:
            sig = json.loads(p.stdout)["findings"][0]["signature"]
            return "killed", dt, sig
        if p.returncode == 0:
            return "survived", dt, ""
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        if p.returncode == 3:
            return "killed-crash", dt, last[:100]
        return f"error-{p.returncode}", dt, last[:100]


def selected_files(globs: list[str] | None) -> list[Path]:
    if globs:
        return sorted({p for g in globs for p in MM.glob(g)})
    return sorted(p for p in MM.glob("*.py")
                  if p.name in DEFAULT_FILES or p.name not in KNOWN_AT_WRITING)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=int, default=70)
    ap.add_argument("--runs", type=int, default=1500, help="stress runs per mutant")
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--files", action="append", help="glob under target/mm (repeatable)")
    ap.add_argument("--write", action="store_true", help="write bench/mutation.md")
    ap.add_argument("--parallel", type=int, default=1, help="mutants run at a time")
    ap.add_argument("--notes-only", action="store_true",
                    help="with --resume: run nothing, render the resumed verdicts with the "
                         "current bench/mutation_notes.json (after arguing survivors)")
    ap.add_argument("--resume", metavar="MD",
                    help="a report of the same sample (same seed, --mutants and model files): "
                         "keep its killed verdicts, run only the rest again (after an oracle "
                         "was added; the model under test must be unchanged)")
    a = ap.parse_args(argv)
    files = selected_files(a.files)
    if not files:
        print(f"mutation: no file of {MM} matches {a.files}", file=sys.stderr)
        return 2
    everything = enumerate_mutants(files)
    sample = random.Random(a.seed).sample(everything, min(a.mutants, len(everything)))
    notes = json.loads(NOTES.read_text()) if NOTES.exists() else {}
    # The unmutated model must pass the same stress, or every "kill" means nothing.
    verdict, _, what = ("survived", 0.0, "") if a.notes_only else run_mutant(None, a.runs,
                                                                             a.timeout)
    if verdict != "survived":
        print(f"mutation: the unmutated model does not pass: {verdict} {what}", file=sys.stderr)
        return 1
    previous = resumed(a.resume, sample) if a.resume else {}
    if previous is None:
        print(f"mutation: {a.resume} is not a report of this sample (other seed, --mutants "
              "or model files): run the whole sample", file=sys.stderr)
        return 2
    t_all = time.perf_counter()
    done = 0

    def one(m: Mutant) -> tuple[Mutant, str, float, str]:
        nonlocal done
        if m.key in previous and (a.notes_only or previous[m.key][0].startswith("killed")):
            done += 1
            return (m, *previous[m.key])
        verdict, dt, what = run_mutant(m, a.runs, a.timeout)
        done += 1
        print(f"[{done}/{len(sample)}] {m.key}: {verdict} {dt:.1f}s {what}", file=sys.stderr,
              flush=True)
        return m, verdict, dt, what

    # Each mutant runs in its own subprocess; threads only wait on them. map keeps the sample
    # order, so the report does not depend on which mutant finished first.
    with concurrent.futures.ThreadPoolExecutor(max(1, a.parallel)) as pool:
        results = list(pool.map(one, sample))
    md = report(files, len(everything), results, notes, a, time.perf_counter() - t_all)
    if a.write:
        tmp = HERE / "mutation.md.tmp"
        tmp.write_text(md)
        tmp.replace(HERE / "mutation.md")
    print(md)
    return 0


def resumed(path: str, sample: list[Mutant]) -> dict[str, tuple[str, float, str]] | None:
    """The verdicts of the report at ``path`` by mutant key, or None if its "Every mutant"
    table is not exactly this sample (keys carry line numbers: any change to a sampled model
    file moves them, so a resumed run cannot mix two models)."""
    rows: dict[str, tuple[str, float, str]] = {}
    for line in Path(path).read_text().splitlines():
        if line.startswith("| `") and line.count(" | ") >= 3:
            # from the right: a key can hold " | " (``flags & ~(A | B)``); "what" cannot
            key, verdict, secs, what = (c.strip() for c in line[2:-2].rsplit(" | ", 3))
            rows[key.strip("`")] = (verdict, float(secs), what)
    return rows if sorted(rows) == sorted(m.key for m in sample) else None


def report(files: list[Path], total: int, results: list[tuple[Mutant, str, float, str]],
           notes: dict[str, dict[str, object]], a: argparse.Namespace, seconds: float) -> str:
    def status(m: Mutant, verdict: str) -> str:
        if verdict == "survived" and notes.get(m.key, {}).get("equivalent"):
            return "equivalent"
        return "killed" if verdict.startswith("killed") else verdict

    rows: dict[tuple[str, str], dict[str, int]] = {}
    for m, verdict, _, _ in results:
        for k in ((m.file, "all"), ("all", m.op), ("all", "all")):
            cell = rows.setdefault(k, {"killed": 0, "survived": 0, "equivalent": 0})
            st = status(m, verdict)
            cell[st if st in cell else "survived"] += 1
    tot = rows[("all", "all")]
    score = tot["killed"] / max(1, tot["killed"] + tot["survived"])
    crash = sum(1 for _, v, _, _ in results if v == "killed-crash")
    hang = sum(1 for _, v, _, _ in results if v == "killed-timeout")
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Mutation score of `migfuzz stress`",
        "",
        f"Machine: 2-core VM shared with other work (load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}); {date}; {seconds / 60:.1f} min.",
        "",
        f"Command: `.venv/bin/python bench/mutation.py --mutants {a.mutants} --runs {a.runs} "
        f"--seed {a.seed}{''.join(f' --files {g}' for g in a.files or [])} --write`"
        + (f", resuming `{a.resume}`: its killed verdicts kept, every other mutant run again "
           "on this tree" if a.resume else ""),
        "",
        f"Files: {', '.join(p.name for p in files)} ({total} mutation sites); "
        f"{len(results)} mutants sampled with seed {a.seed}; each runs "
        f"`migfuzz stress --runs {a.runs} -x --jobs 1 --seed 0 --executor direct --fixes all` "
        f"(timeout {a.timeout:.0f} s).",
        "",
        f"**Score: {tot['killed']} killed of {tot['killed'] + tot['survived']} non-equivalent "
        f"= {score:.1%}** ({tot['equivalent']} equivalent; of the killed, {crash} by a harness "
        f"error, exit 3, and {hang} by a timeout).",
        "",
        "| file / operator | killed | survived | equivalent |",
        "|---|---:|---:|---:|",
    ]
    for (f, op), c in sorted(rows.items()):
        if (f, op) == ("all", "all"):
            continue
        name = f if op == "all" else op
        lines.append(f"| {name} | {c['killed']} | {c['survived']} | {c['equivalent']} |")
    lines += ["", "## Survivors (and equivalent mutants)", ""]
    surv = [(m, v) for m, v, _, _ in results if v == "survived"]
    if not surv:
        lines.append("None.")
    for m, _ in surv:
        note = notes.get(m.key, {})
        tag = "equivalent" if note.get("equivalent") else "NOT equivalent"
        lines.append(f"- `{m.key}` ({tag}): {note.get('why', 'not argued yet')}")
    lines += ["", "## Every mutant", "", "| mutant | verdict | seconds | finding / error |",
              "|---|---|---:|---|"]
    for m, v, dt, what in results:
        lines.append(f"| `{m.key}` | {v} | {dt:.1f} | {what.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
