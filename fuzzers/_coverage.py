"""Interleaving feedback: concurrency events as libFuzzer coverage counters.

Code coverage cannot see most of what makes an interleaving new: the same lines run in every
schedule of a race, only their order differs. This module turns order into features libFuzzer
can count, computed from the execution's event trace (the families are listed in
:func:`features`: task switches, locks held at a preemption, lock-order edges, pte transitions
and pairs of them, conflicting accesses of two tasks to one object in each order, refcount and
mapcount values, the shape of the interleaving).

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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # at run time the model is imported only under atheris' instrumentation
    from target.kernel import Event

NUM_COUNTERS = 4096

_base: int | None = None
_atheris: Any = None
enabled = True
"""Trace each execution and compute its features (off: ``--no-interleaving-feedback``)."""
FAMILIES = frozenset({"sw", "ph", "lk", "pte", "pp", "cf", "get_page", "put_page", "map",
                      "sw3", "nr", "hw", "av"})
"""Every feature family :func:`features` produces (the prefix before the first ``:``)."""
POSITION_FAMILIES = frozenset({"sw", "sw3", "ph"})
"""The families keyed on where a switch happens: with fuzz_preempt, moving a preemption by a
decision is a new feature of theirs, and they keep most of the feedback's extra inputs
(bench/fuzz.md). The bench's ``nopos`` mode reports every family but these."""
families: frozenset[str] | None = None
"""Report only the features of these families (the prefix before the first ``:``); None: all.
For ablations (``bench/fuzz_time_to_bug.py --modes``), from ``MIGFUZZ_FEEDBACK_FAMILIES``."""
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


def lock_class(ev: Event) -> str:
    """The lockdep class of the lock a ``lock``/``unlock`` event names, carried by the event
    (``mm1.ptl[0]`` and ``mm2.ptl[3]`` are both ``pte_lock``, every anon_vma's lock is
    ``anon_vma->lock``): instances of one class are one feature, classes stay apart. By
    name, never ``id()``, so a feature is the same counter in every run and process."""
    cls = ev.lock_class
    return cls.name if cls is not None else "?"


def _access(ev: Event) -> tuple[str, str] | None:
    """The shared object an event touches and what it does to it, or None.

    Objects are instances (this pte, this page, this lock), so that two tasks touching the
    same one is a conflict; the action is what a feature keeps of it."""
    event, f = ev.kind, ev.fields
    if event == "lock":
        return "L" + f["lock"], "acq:" + lock_class(ev)
    if event == "pte":
        return f"P{f['mm']}:{f['addr']}", f"pte:{_kind(f['old'])}{_kind(f['new'])}"
    if event == "peek":
        return f"P{f['mm']}:{f['addr']}", "peek:" + _kind(f["pte"])
    if event == "store":
        return f"G{f['pfn']}", "store"
    if event in ("get_page", "put_page", "mapcount", "alloc", "free"):
        return f"G{f['pfn']}", event
    return None


NEAR = 16
"""Two tasks' conflicting accesses this many steps apart or more are not "near" (``nr``)."""


def _window(out: set[str], runs: list[tuple[int, str, int]], tid: int, action: str, step: int,
            held: dict[int, list[str]]) -> None:
    """The features of task ``tid`` doing ``action`` at ``step`` to a page or pte whose
    recent accesses are ``runs`` (one ``(tid, last action, its step)`` per run of one task's
    accesses, oldest first; updated here).

    A race is two tasks' conflicting accesses to one object with the first task stopped in
    between, and code coverage sees neither the conflict nor how narrow the window was. Keyed
    by actions and lock classes only, never by tid, instance or position, so that the features
    are few and one schedule's shift of a preemption by a decision is not a new input:

    * ``nr``: a conflicting pair (at least one write) and how near: log2 of the steps between
      the two accesses (under :data:`NEAR`), so a preemption moved closer to the conflict is
      new coverage until it is as close as it can be;
    * ``hw``: the same pair with the lock classes the first task holds *now*, when the other
      task touches what it touched (``-``: none, the window after an unlock);
    * ``av``: a task's two accesses with another task's conflicting access between them (the
      unserializable local-remote-local triples of AVIO, Lu et al., ASPLOS 2006).
    """
    if not runs:
        runs.append((tid, action, step))
        return
    last_tid, last_action, last_step = runs[-1]
    if last_tid == tid:
        runs[-1] = (tid, action, step)
        return
    if last_action[:4] != "peek" or action[:4] != "peek":
        if step - last_step < NEAR:
            out.add(f"nr:{last_action}>{action}:{(step - last_step).bit_length()}")
        stack = held.get(last_tid)
        out.add(f"hw:{'+'.join(sorted(set(stack))) if stack else '-'}:{last_action}>{action}")
        if len(runs) > 1 and runs[-2][0] == tid:
            out.add(f"av:{runs[-2][1]}>{last_action}>{action}")
    runs[-2:] = [runs[-1], (tid, action, step)]


def access_object(ev: Event) -> str | None:
    """The shared object (a pte, a page, a lock instance) an event accesses, or None."""
    access = _access(ev)
    return access[0] if access is not None else None


def features(events: Iterable[Event]) -> set[str]:
    """The interleaving features of one execution's events.

    Besides what code coverage sees, these see order:

    * ``sw``: a task switch, keyed by what the preempted task last did and who comes in;
    * ``ph``: the lock classes the preempted task holds at the switch (a preemption inside
      a critical section is what most races of this code need);
    * ``lk``: a lock acquired while another lock class is held (a lock-order edge);
    * ``pte``: a pte transition, keyed by the task doing it; ``pp``: two consecutive
      transitions of one pte (present->migration then migration->none is a zap of a
      migration entry, present->migration then migration->present a completed migration);
    * ``cf``: two tasks touching one object (a pte, a page, a lock instance) one after the
      other, with both actions, in that order: the conflicting-access pairs a race is made
      of, so that the two orders of a race are two features;
    * ``get_page``/``put_page``/``map``: refcount and mapcount values after a change;
    * ``sw3``: three consecutive switches (the shape of the interleaving);
    * ``nr``, ``hw``, ``av``: the window of a race, by class only (:func:`_window`).
    """
    out: set[str] = set()
    last: dict[int, str] = {}
    held: dict[int, list[str]] = {}
    toucher: dict[str, tuple[int, str]] = {}
    pte_last: dict[str, str] = {}
    runs: dict[str, list[tuple[int, str, int]]] = {}
    switches: list[int] = []
    prev = -1
    for ev in events:
        _, tid, event, f = ev
        if event == "switch":
            out.add(f"sw:{last.get(prev, '-')}>{tid}")
            stack = held.get(prev)
            if stack:
                out.add(f"ph:{'+'.join(stack)}>{tid}")
            switches.append(tid)
            if len(switches) >= 3:
                out.add(f"sw3:{switches[-3]}{switches[-2]}{switches[-1]}")
            prev = tid
            continue
        access = _access(ev)
        if access is not None:
            obj, action = access
            before = toucher.get(obj)
            if before is not None and before[0] != tid:
                out.add(f"cf:{before[0]}.{before[1]}>{tid}.{action}")
            toucher[obj] = (tid, action)
            if obj[0] != "L":
                _window(out, runs.setdefault(obj, []), tid, action, ev.step, held)
        if event == "lock":
            cls = lock_class(ev)
            stack = held.setdefault(tid, [])
            out.add(f"lk:{stack[-1] if stack else '-'}>{cls}")
            stack.append(cls)
            last[tid] = "lock:" + cls
        elif event == "unlock":
            cls = lock_class(ev)
            stack = held.get(tid, [])
            if cls in stack:
                stack.reverse()
                stack.remove(cls)
                stack.reverse()
            last[tid] = "unlock"
        elif event == "pte":
            t = f"{_kind(f['old'])}{_kind(f['new'])}"
            out.add(f"pte:{t}:{tid}")
            key = f"{f['mm']}:{f['addr']}"
            before_t = pte_last.get(key)
            if before_t is not None:
                out.add(f"pp:{before_t}>{t}")
            pte_last[key] = t
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


def selected(feats: Iterable[str], chosen: frozenset[str] | None) -> list[str]:
    """The features of ``feats`` in the families ``chosen`` (None: all of them)."""
    return [f for f in feats if chosen is None or f.split(":", 1)[0] in chosen]


def report(feats: Iterable[str]) -> None:
    """Bump one counter per feature of the chosen :data:`families`."""
    if not (enabled and reporting) or _base is None:
        return
    base = _base
    tb = _atheris._trace_branch  # at call time: atheris.Fuzz() rebinds it (module docstring)
    for feat in selected(feats, families):
        tb(base + counter(feat))
