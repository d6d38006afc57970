"""Catalog overrides stay exact: each is the faithful function it replaces, statement for
statement, except the statements marked ``BUG``; and two bugs that replace the same function
are refused.

The comparison is on the AST (docstrings stripped, so comments, formatting and docstrings may
differ freely). Both functions are flattened into their statements in source order, a compound
statement (``if``, ``with``, ``for``...) contributing its header only; the two sequences are
aligned with difflib. The override may differ only where it says so: an added or changed
statement must be marked ``BUG`` (a ``# BUG`` comment on its own lines or on the comment lines
just above it), and a faithful statement may be missing only where a ``# BUG`` comment stands
in its place.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from target.bugs import CATALOG, HistoricalBug, inject
from target.bugs._catalog import ConflictingOverridesError, _resolve

_BODIES = ("body", "orelse", "finalbody", "handlers")


class _Unalias(ast.NodeTransformer):
    """A global imported under another name (``from target.kernel import BUG as BUG_``, where
    the module's own ``BUG`` is its catalog entry) is compared by the name it was defined
    with: an import alias is not a difference in the code."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace

    def visit_Name(self, node: ast.Name) -> ast.Name:
        obj = self.namespace.get(node.id)
        real = getattr(obj, "__name__", None) if callable(obj) else None
        if isinstance(real, str) and real != node.id:
            return ast.copy_location(ast.Name(id=real, ctx=node.ctx), node)
        return node


def _flatten(fn: Callable[..., Any]) -> tuple[list[tuple[str, int, int]], list[str]]:
    """(statements as (dump, first line, last own line), source lines) of ``fn``."""
    lines = textwrap.dedent(inspect.getsource(fn)).splitlines()
    tree = _Unalias(fn.__globals__).visit(ast.parse("\n".join(lines)))
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef)
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring
    out: list[tuple[str, int, int]] = []
    header = f"{type(func).__name__} {ast.dump(func.args)} " \
        f"{ast.dump(func.returns) if func.returns else ''}"
    out.append((header, func.lineno, _header_end(func)))

    def walk(stmts: list[ast.stmt]) -> None:
        for s in stmts:
            children = [(f, getattr(s, f)) for f in _BODIES if getattr(s, f, None)]
            if not children:
                out.append((ast.dump(s), s.lineno, s.end_lineno or s.lineno))
                continue
            shell = ast.copy_location(type(s)(**{
                f: ([] if f in _BODIES else getattr(s, f, None)) for f in s._fields}), s)
            out.append((ast.dump(shell), s.lineno, _header_end(s)))
            for _, c in children:
                if isinstance(c[0], ast.ExceptHandler):
                    for h in c:
                        out.append((ast.dump(ast.copy_location(
                            ast.ExceptHandler(h.type, h.name, []), h)), h.lineno, h.lineno))
                        walk(h.body)
                else:
                    walk(c)

    walk(body)
    return out, lines


def _header_end(node: ast.AST) -> int:
    """The last line of a compound statement's header (its own fields, not its bodies)."""
    ends = [getattr(v, "end_lineno", None) or 0
            for f, v in ast.iter_fields(node) if f not in _BODIES and isinstance(v, ast.AST)]
    for f, v in ast.iter_fields(node):
        if f not in _BODIES and isinstance(v, list):
            ends += [getattr(x, "end_lineno", None) or 0 for x in v if isinstance(x, ast.AST)]
    return max([getattr(node, "lineno", 0), *ends])


def _delegates(faithful: Callable[..., Any], override: Callable[..., Any]) -> bool:
    """The override ends ``return await <faithful>(<its own parameters>)``: the faithful
    function itself (saved before injection) runs the rest, so that rest cannot drift."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(override)))
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef)
    last = func.body[-1]
    if not (isinstance(last, ast.Return) and isinstance(last.value, ast.Await)
            and isinstance(last.value.value, ast.Call)
            and isinstance(last.value.value.func, ast.Name)):
        return False
    call = last.value.value
    params = [a.arg for a in func.args.args]
    return (override.__globals__.get(call.func.id) is faithful and not call.keywords
            and [getattr(a, "id", None) for a in call.args] == params)


def _bug_lines(lines: list[str]) -> set[int]:
    """1-based numbers of the lines that carry a ``# BUG`` comment."""
    return {i + 1 for i, text in enumerate(lines) if "# BUG" in text}


def _marked(stmt: tuple[str, int, int], lines: list[str], bug: set[int]) -> bool:
    """A statement is marked by a ``# BUG`` on its own lines or in the comments above it."""
    _, first, last = stmt
    if any(first <= n <= last for n in bug):
        return True
    n = first - 1
    while n >= 1 and lines[n - 1].strip().startswith("#"):
        if n in bug:
            return True
        n -= 1
    return False


def unmarked_differences(faithful: Callable[..., Any],
                         override: Callable[..., Any]) -> list[str]:
    """Every difference between the two functions that no ``# BUG`` comment accounts for."""
    a, _ = _flatten(faithful)
    b, lines = _flatten(override)
    bug = _bug_lines(lines)
    if _delegates(faithful, override):
        # Compare what precedes the delegation with the faithful function's start.
        b = b[:-1]
        a = a[:len(b)]
    problems: list[str] = []
    sm = difflib.SequenceMatcher(a=[x[0] for x in a], b=[x[0] for x in b], autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            continue
        for s in b[j1:j2]:
            if not _marked(s, lines, bug):
                problems.append(f"line {s[1]} of the override differs without a BUG mark: "
                                f"{lines[s[1] - 1].strip()}")
        if i2 - i1 > j2 - j1:
            # Faithful statements with nothing in their place: a comment-only BUG line must
            # stand there, between the override's statements around the change.
            lo = b[j1 - 1][2] if j1 > 0 else 0
            hi = b[j2][1] if j2 < len(b) else len(lines) + 1
            if not any(lo < n < hi and lines[n - 1].lstrip().startswith("#") for n in bug):
                problems.append(f"the override drops {i2 - i1 - (j2 - j1)} faithful "
                                f"statement(s) "
                                f"(first at line {a[i1][1]} of the faithful function) without "
                                f"a BUG mark in their place")
    return problems


OVERRIDES = sorted((bug.name, target) for bug in CATALOG.values() for target in bug.overrides)


@pytest.mark.parametrize(("name", "target"), OVERRIDES)
def test_override_differs_only_where_marked(name: str, target: str) -> None:
    _, _, faithful = _resolve(target)
    problems = unmarked_differences(faithful, CATALOG[name].overrides[target])
    assert not problems, "\n".join(problems)


def _copy(fn: Callable[..., Any]) -> list[tuple[str, int, int]]:
    return _flatten(fn)[0]


def test_the_comparison_sees_an_unmarked_dropped_statement() -> None:
    """The exactness check is not vacuous: a dropped statement without a mark is caught, the
    same statement dropped under a ``# BUG`` comment is accepted."""

    def faithful(x: list[int]) -> None:
        """Docstrings may differ."""
        x.append(1)
        if x:
            x.append(2)
        x.append(3)

    def unmarked(x: list[int]) -> None:
        x.append(1)
        if x:
            pass  # BUG: the marked change
        # (x.append(3) silently dropped)

    def marked(x: list[int]) -> None:
        """Another docstring."""
        x.append(1)
        if x:
            x.append(2)
        # BUG: no x.append(3)

    assert len(unmarked_differences(faithful, unmarked)) == 1
    assert unmarked_differences(faithful, marked) == []
    assert len(_copy(faithful)) == 5  # def, append, if, append, append


def test_two_bugs_replacing_one_function_are_refused() -> None:
    by_target: dict[str, list[HistoricalBug]] = {}
    for bug in CATALOG.values():
        for target in bug.overrides:
            by_target.setdefault(target, []).append(bug)
    target, bugs = next((t, b) for t, b in sorted(by_target.items(), key=lambda kv: kv[0])
                        if len(b) >= 2)
    _, _, original = _resolve(target)
    with pytest.raises(ConflictingOverridesError, match=f"{bugs[0].name}.*{bugs[1].name}"), \
            inject(bugs[:2]):
        pass
    assert _resolve(target)[2] is original  # nothing half-applied


def test_cli_refuses_two_bugs_replacing_one_function(
        capsys: pytest.CaptureFixture[str]) -> None:
    from migfuzz.cli import main

    code = main(["stress", "--runs", "1", "--bug", "unlock-before-remove",
                 "--bug", "nr-refs-constant"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "both replace target.mm.migrate:migrate_page" in err
    assert "Traceback" not in err
