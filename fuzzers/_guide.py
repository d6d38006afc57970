"""Trace-guided preemptions: fuzz_preempt's mutator, told where the races of an input are.

The custom mutator (fuzzers/_mutate.py) places a new preemption blind: a gap drawn mostly
short, a task drawn uniformly. A race needs it at one decision of a few hundred: right after
the running task touched (or let go of) something another task touches too, switching to that
other task. The interleaving feedback traces every execution anyway, so the trace of the input
being mutated says where those decisions are. The target runs every input with a
:class:`Recording` scheduler and :func:`remember` keeps, by the input's bytes, its *race
points* (decision ``d``, task ``t``: at ``d`` the running task has just accessed a page or pte,
or released a lock, that ``t`` also accesses in this execution, and ``t`` can run); when
libFuzzer mutates that input, :func:`mutate` inserts a preemption at one of them, keeping or
dropping the preemptions after it.

Only with the feedback on (``_coverage.enabled``): without it the fuzzer traces nothing, and
plain coverage keeps the blind mutator (the control of bench/fuzz.md). Classes of races only:
nothing here names a bug, a function or a scenario.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from stress.schedulers import PreemptScheduler
from stress.workload import Scenario
from target.kernel import HOOKS, Event

from ._coverage import access_object
from ._targets import decode_preempt_input

CACHE_SIZE = 4096
"""Race points kept for this many inputs (a corpus is mutated over and over; when the cache is
full the least recently used input goes, so a long run's memory stays bounded)."""

_cache: dict[bytes, tuple[int, list[tuple[int, int]], list[int]]] = {}


class Recording(PreemptScheduler):
    """A PreemptScheduler that notes, at each decision, the step, the running task, the
    runnable tasks and its choice (the same choices: it only watches)."""

    def __init__(self, data: bytes, ntasks: int) -> None:
        super().__init__(data, ntasks)
        self.points: list[tuple[int, int | None, tuple[int, ...]]] = []
        self.chosen: list[int] = []

    def next_task(self, runnable: Sequence[int], current: int | None, yielding: bool) -> int:
        self.points.append((HOOKS.rq.step, current, tuple(runnable)))
        tid = super().next_task(runnable, current, yielding)
        self.chosen.append(tid)
        return tid


def _touches(ev: Event) -> str | None:
    """The shared object an event accesses or releases (:func:`access_object`, and a lock
    instance on ``unlock``: the window after an unlock is where most races of this code
    live), or None."""
    if ev.kind == "unlock":
        return f"L{ev.fields['lock']}"
    return access_object(ev)


def race_points(points: Sequence[tuple[int, int | None, tuple[int, ...]]],
                events: Sequence[Event]) -> list[tuple[int, int]]:
    """(decision, task) pairs of one execution: at that decision the running task has, since
    its previous decision, touched an object that ``task`` (runnable there) touches too."""
    who: dict[str, set[int]] = {}
    touched: list[tuple[int, int, str]] = []
    for ev in events:
        obj = _touches(ev)
        if obj is not None:
            who.setdefault(obj, set()).add(ev.tid)
            touched.append((ev.step, ev.tid, obj))
    out: set[tuple[int, int]] = set()
    i = 0
    for d, (step, cur, runnable) in enumerate(points):
        objs = set()
        while i < len(touched) and touched[i][0] < step:
            if touched[i][1] == cur:
                objs.add(touched[i][2])
            i += 1
        if cur is None or cur not in runnable:
            continue
        for obj in objs:
            out.update((d, t) for t in who[obj] if t != cur and t in runnable)
    return sorted(out)


def decode(data: bytes) -> tuple[Scenario, Recording]:
    """fuzz_preempt's decoding of ``data`` (``decode_preempt_input``), with a scheduler
    that makes the same choices and notes the decisions :func:`remember` needs."""
    scenario, _ = decode_preempt_input(data)
    return scenario, Recording(data[1:], len(scenario.tasks))


def remember(data: bytes, sched: Recording, events: Sequence[Event]) -> None:
    """Keep the race points of an executed input, for when libFuzzer mutates it. Every
    execution is remembered (a linear pass over its trace, far cheaper than running it
    again): libFuzzer does not say which inputs join its corpus. The least recently used
    input goes first when the cache is full."""
    if len(_cache) >= CACHE_SIZE:
        del _cache[next(iter(_cache))]
    _cache[data] = (sched.ntasks, race_points(sched.points, events), sched.chosen)


def preempt_at(data: bytes, d: int, task: int, n: int, chosen: Sequence[int],
               keep_tail: bool) -> bytes | None:
    """``data`` (a fuzz_preempt input, ``n`` tasks) with a preemption to ``task`` at decision
    ``d``: the records before it unchanged, the one after it shortened so that it still
    applies at its own decision (or dropped with the rest, without ``keep_tail``). A gap
    longer than a record can say is bridged by records naming the task that ran there anyway
    (``chosen``: the input's own choices), which do not preempt. None if ``d`` is not after
    the start, or if the record already there cannot name ``task`` in one byte."""
    if d < 1:
        return None
    head, recs = bytearray(data[:2]), list(data[2:])
    at = 0  # the decision of the last switch so far (0: the start)
    for k, r in enumerate(recs):
        nxt = at + 1 + r // n
        if d == nxt:  # a preemption there already: retarget it (if a byte can say it)
            recs[k] = r - r % n + task
            if recs[k] > 255:
                return None
            return bytes(head + bytes(recs if keep_tail else recs[:k + 1]))
        if d < nxt:
            tail = [(nxt - d - 1) * n + r % n, *recs[k + 1:]] if keep_tail else []
            return bytes(head + bytes([*recs[:k], *_bridge(at, d, task, n, chosen), *tail]))
        at = nxt
    return bytes(head + bytes([*recs, *_bridge(at, d, task, n, chosen)]))


def _bridge(at: int, d: int, task: int, n: int, chosen: Sequence[int]) -> list[int]:
    """Records from the switch at decision ``at`` to one to ``task`` at decision ``d``."""
    out = []
    while d - at - 1 > (255 - task) // n:  # too far for one record: run on, then go on
        at += 1 + (255 - (n - 1)) // n
        stay = chosen[at] if at < len(chosen) else 0
        out.append((255 - (n - 1)) // n * n + stay)
    out.append((d - at - 1) * n + task)
    return out


def mutate(data: bytes, max_size: int, rng: random.Random) -> bytes | None:
    """A preemption inserted at one of ``data``'s race points; None if it has none or was
    not executed lately (libFuzzer mutates a mutant again before running it: running every
    such intermediate input only to guide it doubled the cost of an execution)."""
    hit = _cache.pop(data, None)
    if hit is None:
        return None
    _cache[data] = hit  # most recently used: libFuzzer's corpus inputs stay in the cache
    n, points, chosen = hit
    if not points:
        return None
    d, task = rng.choice(points)
    out = preempt_at(data, d, task, n, chosen, keep_tail=rng.random() < 0.5)
    return out[:max_size] if out is not None else None
