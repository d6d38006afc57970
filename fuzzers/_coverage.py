"""Interleaving feedback: concurrency events as libFuzzer coverage counters.

Code coverage cannot see most of what makes an interleaving new: the same lines run in every
schedule of a race, only their order differs. This module turns order into features libFuzzer
can count, computed from the execution's event trace:

* a task switch, keyed by what the preempted task last did and which task comes in;
* a lock acquired while another lock class is held (a lock-order edge, per task);
* a pte transition (none/present/swap/migration -> ...), keyed by the task doing it;
* refcount and mapcount values after a change (0, 1, 2, 3+);
* three consecutive switches (the shape of the interleaving).

Each feature is hashed onto one of ``NUM_COUNTERS`` counters reserved from atheris once, and
the counter is bumped when the feature is seen. atheris exposes this only through private
functions (``_reserve_counter``, ``_trace_branch``, 3.0.0); they are wrapped here and nowhere
else, and without atheris (or with feedback disabled) :func:`report` does nothing.

``atheris._trace_branch`` is looked up on every :func:`report`, never kept: ``atheris.Fuzz()``
rebinds it when fuzzing starts, and a reference taken before that bumps counters libFuzzer
never reads (libFuzzer's ``cov``/``ft`` were identical with and without the feedback).
``tests/test_fuzzers.py::test_feedback_reaches_libfuzzer`` holds this to libFuzzer's own figures.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

NUM_COUNTERS = 4096

_base: int | None = None
_atheris: Any = None
enabled = True
"""Trace each execution and compute its features (off: ``--no-interleaving-feedback``)."""
reporting = True
"""Hand the features to libFuzzer (off with tracing still on: ``--feedback-trace-only``, so
that a with/without comparison differs only in what libFuzzer is told)."""


def setup() -> bool:
    """Reserve the counters; False (feedback off) if atheris or its private API is missing."""
    global _base, _atheris
    if _base is not None:
        return True
    try:
        import atheris

        reserve = atheris._reserve_counter
        atheris._trace_branch  # noqa: B018  (present in this atheris, checked once)
    except (ImportError, AttributeError):
        return False
    _atheris = atheris
    _base = reserve()
    for _ in range(NUM_COUNTERS - 1):
        reserve()
    return True


def _kind(pte: str) -> str:
    return pte[0] if pte != "None" else "N"


def _bucket(n: int) -> int:
    return n if n < 3 else 3


def features(events: Iterable[tuple[int, int, str, dict[str, Any]]]) -> set[str]:
    """The interleaving features of one execution's events."""
    out: set[str] = set()
    last: dict[int, str] = {}
    held: dict[int, list[str]] = {}
    switches: list[int] = []
    prev = -1
    for _, tid, event, f in events:
        if event == "switch":
            out.add(f"sw:{last.get(prev, '-')}>{tid}")
            switches.append(tid)
            if len(switches) >= 3:
                out.add(f"sw3:{switches[-3]}{switches[-2]}{switches[-1]}")
            prev = tid
            continue
        if event == "lock":
            cls = f["lock"].split(".")[-1]
            stack = held.setdefault(tid, [])
            out.add(f"lk:{stack[-1] if stack else '-'}>{cls}")
            stack.append(cls)
            last[tid] = "lock:" + cls
        elif event == "unlock":
            cls = f["lock"].split(".")[-1]
            stack = held.get(tid, [])
            if cls in stack:
                stack.reverse()
                stack.remove(cls)
                stack.reverse()
            last[tid] = "unlock"
        elif event == "pte":
            t = f"{_kind(f['old'])}{_kind(f['new'])}"
            out.add(f"pte:{t}:{tid}")
            last[tid] = "pte:" + t
        elif event in ("get_page", "put_page"):
            out.add(f"{event}:{_bucket(f['count'])}")
            last[tid] = event
        elif event == "mapcount":
            out.add(f"map:{_bucket(f['mapcount'])}")
            last[tid] = event
        else:
            last[tid] = event
    return out


def counter(feat: str) -> int:
    """The counter (offset from the reserved base) that ``feat`` bumps."""
    return zlib.crc32(feat.encode()) % NUM_COUNTERS


def report(feats: Iterable[str]) -> None:
    """Bump one counter per feature."""
    if not (enabled and reporting) or _base is None:
        return
    base = _base
    tb = _atheris._trace_branch  # at call time: atheris.Fuzz() rebinds it (module docstring)
    for feat in feats:
        tb(base + counter(feat))
