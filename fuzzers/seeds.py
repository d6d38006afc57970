"""Seeds of the decoder's extension byte, generated from scenarios (not typed as bytes).

The committed corpora of fuzz_scenario and fuzz_sequential were written before the decoder's
extension byte (bit 7 of the first prefault mask: sibling threads, move_pages, a second
migrator; fuzzers/_ops.py). These scenarios are the races that byte opens, each in the form
the decoder can express, encoded by :func:`fuzzers._encode.encode_scenario`; libFuzzer starts
from them instead of waiting to flip that bit and the right ones after it.

    python -m fuzzers.seeds          write them into corpus/fuzz_scenario, corpus/fuzz_sequential,
                                     and fuzz_preempt's seeds into corpus/fuzz_preempt

Each file is named ``ext-<sha256 prefix>`` of its bytes, so writing twice changes nothing;
tests/test_fuzz_encode.py checks that the committed files are exactly these.
"""

from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path

from stress.workload import Op, ProcessSpec, Scenario, TaskSpec, VmaSpec
from target.mm.world import WorldConfig

from ._encode import encode_scenario

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("fuzz_scenario", "fuzz_sequential")


def _scenario(name: str, tasks: list[tuple[str, list[Op]]], *, pages: int = 1,
              prefault: tuple[int, ...] = (0,), swap: bool = False,
              two: bool = False) -> Scenario:
    """One or two processes with one vma of ``pages`` pages each, in the decoder's layout
    (process i at 8i, prefault value 10 + addr, 2 x mapped + 2 pages per node)."""
    procs = [ProcessSpec(i + 1, [VmaSpec(8 * i, 8 * i + pages)],
                         [(8 * i + a, 10 + 8 * i + a) for a in prefault])
             for i in range(2 if two else 1)]
    mapped = pages * len(procs)
    world = WorldConfig(nodes=2, pages_per_node=2 * mapped + 2, swap_slots=4 if swap else 0,
                        config_swap=swap)
    return Scenario(world, procs, [TaskSpec(n, ops) for n, ops in tasks], name=name)


def scenarios() -> list[Scenario]:
    """Stored values follow the decoder's counter: 1000 + the number of the user op."""
    return [
        # three threads of one mm spin on a page that two migrators move back and forth
        _scenario("threads-move-pages", [
            ("p1", [("read", 1, 0)] * 6),
            ("migrator", [("move_pages", 1, 0, 1, 0), ("move_pages", 1, 0, 0, 0),
                          ("move_pages", 1, 0, 1, 0)]),
            ("p1.t1", [("read", 1, 0)] * 4),
            ("p1.t2", [("read", 1, 0)] * 4),
            ("migrator2", [("move_pages", 1, 0, 0, 0), ("move_pages", 1, 0, 1, 0)]),
        ]),
        # two faults of two threads on one migration entry
        _scenario("two-faults-one-entry", [
            ("p1", [("read", 1, 0)]),
            ("migrator", [("migrate", 1, 0, 1, 0)]),
            ("p1.t1", [("read", 1, 0)]),
        ]),
        # COW break of one page by two threads of a forked mm, while it migrates
        _scenario("threads-cow-break", [
            ("p1", [("fork", 1, 10), ("write", 1, 0, 1002)]),
            ("migrator", [("migrate", 1, 0, 1, 1)]),
            ("p1.t1", [("write", 1, 0, 1003)]),
        ]),
        # get_user_pages in one thread while a sibling forks
        _scenario("gup-vs-fork-threads", [
            ("p1", [("fork", 1, 10)]),
            ("p10", [("read", 10, 0)]),
            ("migrator", [("migrate", 1, 0, 1, 0)]),
            ("p1.t1", [("pin", 1, 0, 1003)]),
        ]),
        # a thread exits while its sibling sleeps in migration_entry_wait
        _scenario("exit-vs-entry-wait", [
            ("p1", [("exit", 1)]),
            ("migrator", [("move_pages", 1, 0, 1, 0)]),
            ("p1.t1", [("read", 1, 0), ("read", 1, 0)]),
        ]),
        # two migrators on a page shared by fork, kswapd beside them
        _scenario("two-migrators-fork-kswapd", [
            ("p1", [("fork", 1, 10), ("write", 1, 1, 1002)]),
            ("p10", [("read", 10, 0), ("write", 10, 1, 1004)]),
            ("migrator", [("migrate", 1, 0, 1, 0)]),
            ("migrator2", [("migrate", 1, 0, 1, 1), ("move_pages", 1, 0, 0, 1)]),
            ("kswapd", [("swapout", 0), ("swapoff",)]),
        ], pages=2, prefault=(0, 1), swap=True),
        # move_pages of one process's page while the other's threads run
        _scenario("two-processes-threads", [
            ("p1", [("write", 1, 0, 1001)]),
            ("p2", [("read", 2, 8)]),
            ("migrator", [("move_pages", 2, 8, 1, 0), ("migrate", 1, 0, 1, 0)]),
            ("p1.t1", [("read", 1, 0)]),
            ("p2.t1", [("write", 2, 8, 1004)]),
            ("migrator2", [("move_pages", 1, 0, 1, 1)]),
        ], two=True),
    ]


def seeds() -> dict[str, dict[str, bytes]]:
    """target -> file name -> bytes. fuzz_scenario gets each scenario with no schedule and
    with a random one (seeded by the name); fuzz_sequential ignores the schedule."""
    out: dict[str, dict[str, bytes]] = {t: {} for t in TARGETS}
    for sc in scenarios():
        tail = random.Random(sc.name).randbytes(48)
        for target, tails in (("fuzz_scenario", (b"", tail)), ("fuzz_sequential", (b"",))):
            for t in tails:
                data = encode_scenario(sc, t)
                out[target][f"ext-{hashlib.sha256(data).hexdigest()[:12]}"] = data
    return out


def preempt_seeds() -> dict[str, bytes]:
    """fuzz_preempt's seeds: every canonical scenario started by each of its tasks, without a
    preemption (two bytes each, named ``run-<scenario>-<task>``): the runs libFuzzer preempts
    from, one per scenario and first task, so that no scenario waits to be drawn."""
    from ._targets import CANONICAL_NAMES, ntasks_of

    return {f"run-{name}-{t}": bytes([i, t]) for i, name in enumerate(CANONICAL_NAMES)
            for t in range(ntasks_of(i))}


def main() -> int:
    for target, files in [*seeds().items(), ("fuzz_preempt", preempt_seeds())]:
        d = ROOT / "corpus" / target
        d.mkdir(exist_ok=True)
        for name, data in files.items():
            tmp = d / f".{name}.tmp"  # a rename, so a reader never sees half a seed
            tmp.write_bytes(data)
            tmp.replace(d / name)
        print(f"{d}: {len(files)} seeds", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
