"""The size rules of docs/architecture.md, checked over the source (ast, not grep).

* No function over :data:`MAX_FUNCTION_LINES` lines outside tests (its ``def`` line to its
  last line, decorators and docstring included): a longer one does several things, and the
  model in particular must read beside the kernel function it mirrors.
* No module of ``migfuzz``, ``stress`` or ``fuzzers`` over :data:`MAX_MODULE_LINES` lines: a
  service module has one concern (a package of small modules, like trio's ``_core``, when
  it has several). ``target`` mirrors mm/ file by file, as the kernel's files are, so it is not
  held to this bound.

Each exception is listed with its reason; an entry that no longer applies fails too, so the
lists only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 450

_FORMAT = ("reads (or writes) one input format top to bottom, in the order of its bytes: "
           "the decoder, the encoder that mirrors it line by line, and the format's "
           "documentation read side by side; split, the byte order would be spread over "
           "helpers that each consume an unknown share of the input")

LONG_FUNCTIONS: dict[str, str] = {
    "fuzzers/_coverage.py:features": (
        "the fuzzers' hot path, run on every event of every execution: one loop with one "
        "dispatch per event (bench/fuzz.md measures what the feedback costs)"),
    "fuzzers/_encode.py:_Writer.encode": _FORMAT,
    "fuzzers/_ops.py:decode_scenario": _FORMAT,
    "target/mm/migrate.py:migrate_pages": (
        "mirrors mm/migrate.c:migrate_pages() of 2.6.17 statement by statement, its retry "
        "loop whole, so that it reads beside the kernel function (docs/model.md)"),
}
"""``path:qualified.name`` -> why it may be longer than :data:`MAX_FUNCTION_LINES`."""

LONG_MODULES: dict[str, str] = {}
"""``path`` -> why it may be longer than :data:`MAX_MODULE_LINES`."""


def functions(path: Path) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function and method in ``path``."""
    out: list[tuple[str, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                assert child.end_lineno is not None
                out.append((prefix + child.name, child.end_lineno - first + 1))
                walk(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                walk(child, prefix + child.name + ".")
            else:
                walk(child, prefix)

    walk(ast.parse(path.read_text(), str(path)), "")
    return out


def sources(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def long_functions(paths: list[Path], root: Path = ROOT) -> dict[str, int]:
    return {f"{p.relative_to(root)}:{name}": n for p in paths for name, n in functions(p)
            if n > MAX_FUNCTION_LINES}


def long_modules(paths: list[Path], root: Path = ROOT) -> dict[str, int]:
    return {str(p.relative_to(root)): n for p in paths
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}


def test_no_function_is_longer_than_the_rule() -> None:
    paths = sources("migfuzz", "stress", "fuzzers", "target")
    assert len(paths) > 50, "no sources found: the test would pass vacuously"
    found = long_functions(paths)
    assert {k: v for k, v in found.items() if k not in LONG_FUNCTIONS} == {}
    assert sorted(set(LONG_FUNCTIONS) - set(found)) == [], "stale exceptions: remove them"


def test_no_service_module_is_longer_than_the_rule() -> None:
    found = long_modules(sources("migfuzz", "stress", "fuzzers"))
    assert {k: v for k, v in found.items() if k not in LONG_MODULES} == {}
    assert sorted(set(LONG_MODULES) - set(found)) == [], "stale exceptions: remove them"


def test_the_rules_see_a_long_method_and_a_long_module(tmp_path: Path) -> None:
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    bad = tmp_path / "pkg" / "bad.py"
    bad.parent.mkdir()
    bad.write_text(f"class C:\n    @staticmethod\n    def f() -> None:\n{body}\n"
                   + "\n" * MAX_MODULE_LINES + "def short() -> None:\n    pass\n")
    assert functions(bad) == [("C.f", MAX_FUNCTION_LINES + 2), ("short", 2)]
    assert long_functions([bad], tmp_path) == {"pkg/bad.py:C.f": MAX_FUNCTION_LINES + 2}
    assert list(long_modules([bad], tmp_path)) == ["pkg/bad.py"]
