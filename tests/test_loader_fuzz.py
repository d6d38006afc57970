"""Hypothesis over our own loaders: no finding file, scenario or raw input, however mangled,
gets anything but a record or a one-line input error (never a traceback or a hang).

Mutations start from a real finding file (corpus/known), so they reach the deep fields, not
only the top-level checks that random JSON stops at.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migfuzz._errors import UsageError
from migfuzz.commands.repro import _load_any
from migfuzz.findings import FindingRecord, load
from stress.workload import Scenario, ScenarioError

KNOWN = Path(__file__).resolve().parent.parent / "corpus" / "known" / "get-after-unlock.json"
BASE = json.loads(KNOWN.read_text())

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12,
)


def _paths(d: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(d, dict):
        for k, v in d.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += _paths(v, (*prefix, i))
    return out


PATHS = [p for p in _paths(BASE) if p]


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    d = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = d
        try:
            for part in path[:-1]:
                parent = parent[part]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the way there
    return d


def _accepts_or_rejects(path: Path) -> None:
    try:
        rec = load(path)
    except UsageError as exc:  # FindingFileError: one line naming the file
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert isinstance(rec, FindingRecord)
    rec.file_name()  # whatever was accepted is safe to write


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=mutated())
def test_mutated_finding_files_load_or_fail_with_one_line(tmp_path: Path, doc: Any) -> None:
    path = tmp_path / "f.json"
    path.write_text(json.dumps(doc))
    _accepts_or_rejects(path)
    # ... and as `repro --bug` sees them: never replayed as a raw input with that bug
    try:
        _load_any(str(path), None, ["get-after-unlock"])
    except UsageError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_random_bytes_and_json_load_or_fail_with_one_line(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(data)
    _accepts_or_rejects(path)


@settings(max_examples=300)
@given(doc=st.builds(lambda v, p: (v, p), json_values, st.sampled_from(
    [p[1:] for p in PATHS if p and p[0] == "scenario" and len(p) > 1])))
def test_mutated_scenarios_load_or_fail_with_one_line(doc: tuple[Any, tuple[Any, ...]]) -> None:
    value, path = doc
    sc = copy.deepcopy(BASE["scenario"])
    parent: Any = sc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    try:
        Scenario.from_json(sc)
    except ScenarioError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("field scenario")
