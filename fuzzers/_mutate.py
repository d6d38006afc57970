"""A custom mutator for fuzz_preempt: edits preemptions, not bytes.

fuzz_preempt's input is ``[scenario][first task][record]...``, one record (byte) per
preemption (stress/schedulers/preempt.py). libFuzzer's own mutations keep records aligned, but
they draw a changed byte uniformly, and a depth-2 race needs each preemption within a window of
one or two decisions, usually a few decisions after the last one: a uniform byte is in such a
window about once in a hundred draws. This mutator edits the records as preemptions, and draws
new gaps mostly short:

* insert a preemption (at the end more often: the next step of a schedule that got somewhere);
* delete one; swap two neighbours;
* move one by a few decisions (its gap +-1 to +-3, same task) or retarget it (same gap);
* change the scenario or the starting task.

One mutation in four is libFuzzer's own (``atheris.Mutate``), so nothing libFuzzer could reach
is given up. Deterministic in ``seed`` (libFuzzer passes one per call), so a run is replayable.
"""

from __future__ import annotations

import random
from collections.abc import Callable

SHORT_GAP = 8.0
"""The mean of a new preemption's gap when drawn short (half of the draws; the other half are
uniform over the whole byte, so that long runs stay reachable)."""


def _gap(rng: random.Random, ntasks: int) -> int:
    if rng.random() < 0.5:
        return min(int(rng.expovariate(1 / SHORT_GAP)), 255 // ntasks)
    return rng.randrange(256 // ntasks)


def _record(gap: int, task: int, ntasks: int) -> int:
    return min(gap * ntasks + task, 255 - (255 - task) % ntasks)


GUIDED = 0.5
"""The share of mutations that insert a preemption at a race point of the input
(fuzzers/_guide.py), when the mutator is given ``guide`` (the interleaving feedback is on)."""


def mutate(data: bytes, max_size: int, seed: int, ntasks_of: Callable[[int], int],
           fallback: Callable[[bytes, int], bytes], *, own: bool = True,
           pin: int | None = None,
           guide: Callable[[bytes, int, random.Random], bytes | None] | None = None) -> bytes:
    """One mutation of a fuzz_preempt input; ``ntasks_of(scenario_byte)`` is the number of
    tasks of the scenario that byte picks, ``fallback`` libFuzzer's own mutation (the only
    one without ``own``: the control of this mutator's measurement). ``pin``: the scenario
    byte every output gets (``MIGFUZZ_SCENARIO``), so that a run fuzzes one scenario's
    preemptions and its inputs still replay as they are. ``guide``: a mutation from the
    input's trace (fuzzers/_guide.py), tried first in a share :data:`GUIDED` of the calls."""
    rng = random.Random(seed)
    if guide is not None and own and len(data) >= 2 and (pin is None or data[0] == pin) \
            and rng.random() < GUIDED:
        guided = guide(data, max_size, rng)
        if guided is not None:
            return guided
    if not own or len(data) < 2 or rng.random() < 0.25:
        out = bytearray(fallback(data, max_size) or bytes(2))
        if pin is not None:
            out[0] = pin
        return bytes(out)
    head, recs = bytearray(data[:2]), bytearray(data[2:])
    if pin is not None:
        head[0] = pin
    n = ntasks_of(head[0])
    op = rng.randrange(8)
    if op == 0 and pin is None:
        head[0] = rng.randrange(256)
    elif op in (0, 1):
        head[1] = rng.randrange(256)
    elif op in (2, 3) or not recs:  # insert, at the end half of the time
        at = len(recs) if op == 2 else rng.randrange(len(recs) + 1)
        recs.insert(at, _record(_gap(rng, n), rng.randrange(n), n))
    elif op == 4:
        del recs[rng.randrange(len(recs))]
    elif op == 5 and len(recs) > 1:
        i = rng.randrange(len(recs) - 1)
        recs[i], recs[i + 1] = recs[i + 1], recs[i]
    elif op == 6:
        i = rng.randrange(len(recs))
        gap, task = divmod(recs[i], n)
        recs[i] = _record(max(gap + rng.choice((-3, -2, -1, 1, 2, 3)), 0), task, n)
    else:
        i = rng.randrange(len(recs))
        recs[i] = _record(recs[i] // n, rng.randrange(n), n)
    return bytes(head + recs)[:max_size]
