"""The layering rule of docs/architecture.md, checked over every import (ast, not grep).

* The model (``target``) imports nothing of the engine (``stress``), the fuzzers, the service
  (``migfuzz``) or ``trio``: it runs on its own scheduler hooks, and a kernel engineer reads it
  without the machinery around it.
* A private module (a dotted name with a component starting with ``_``) is imported only from
  inside the package that holds it: ``target.kernel._lockdep`` from ``target.kernel``,
  ``stress._execution`` from ``stress``. Whatever another layer needs is exported by the
  package's ``__init__``, so a package's inside can change without breaking its users.

Tests are not checked: they may reach into privates to test them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("target", "stress", "fuzzers", "migfuzz")
MODEL_MAY_NOT_IMPORT = ("stress", "fuzzers", "migfuzz", "trio")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of every import in ``path``, relative ones resolved;
    ``from a import b`` gives ``a.b`` (b may be a module)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def violations(paths: list[Path], root: Path = ROOT) -> list[str]:
    found = []
    for path in paths:
        me = module_name(path, root)
        for line, imported in imports(path, root):
            where = f"{path.relative_to(root)}:{line}: {imported}"
            top = imported.split(".")[0]
            if me.split(".")[0] == "target" and top in MODEL_MAY_NOT_IMPORT:
                found.append(f"{where} (the model imports the {top} layer)")
                continue
            parts = imported.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:i])
                    if not (me == owner or me.startswith(owner + ".")):
                        found.append(f"{where} (private to {owner})")
                    break
    return found


def source_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_the_layering_rule_holds() -> None:
    assert source_files(), "no sources found: the test would pass vacuously"
    assert violations(source_files()) == []


@pytest.mark.parametrize(("where", "line", "reason"), [
    ("target/mm/fake.py", "from stress.run import run_scenario", "the model imports"),
    ("target/mm/fake.py", "import trio", "the model imports"),
    ("migfuzz/fake.py", "from target.kernel._lockdep import LockGraph", "private to"),
    ("migfuzz/fake.py", "from stress import _execution", "private to stress"),
    ("fuzzers/fake.py", "from ..stress._execution import Executor", "private to stress"),
])
def test_a_bad_import_is_caught(tmp_path: Path, where: str, line: str, reason: str) -> None:
    """The rule is not vacuous: each kind of bad import, written into a module of a fake
    tree, is reported; the same module with public imports is not."""
    bad = tmp_path / where
    bad.parent.mkdir(parents=True)
    bad.write_text(line + "\n")
    found = violations([bad], tmp_path)
    assert len(found) == 1 and reason in found[0], found
    good = ["from target.kernel import LockGraph", "from .types import Page"]
    if not where.startswith("target/"):
        good.append("from stress import run")
    bad.write_text("\n".join(good) + "\n")
    assert violations([bad], tmp_path) == []


def test_importing_the_fuzzers_package_leaves_the_model_unimported() -> None:
    """``python -m fuzzers.fuzz_X`` imports the package before the target, whose
    ``atheris.instrument_imports`` must be the first to import the model (else libFuzzer sees
    no code coverage of it): the package's exports are lazy."""
    code = ("import sys, fuzzers; assert not [m for m in sys.modules if m.split('.')[0] in "
            "('target', 'stress')], sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
