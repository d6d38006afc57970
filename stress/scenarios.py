"""Named canonical scenarios and the swarm-testing scenario generator.

Canonical scenarios are small, hand-written races that each exercise one path of the seed
patch against one other path; the gate explores the tiny ones exhaustively. The race each
docstring draws is written down as a predicate on the model in tests/test_canonical_reach.py,
which checks that some seeded schedule reaches it (``fuzz_schedule`` fuzzes only these).

The generator makes random scenarios with *swarm testing* (Groce et al., "Swarm Testing",
ISSTA 2012): each scenario enables a random subset of operation kinds, so that rare
combinations (say, migrate + mlock without any swap-out noise) get whole runs to themselves
instead of being diluted.

Addresses are virtual page numbers; with PTRS_PER_PTE = 4, addresses 0-3 share one page table
(one ptl), 4-7 the next, and so on.

This module is the one public face of three private ones: the canonical scenarios of a
migration against one other path (``_canonical_migration``), those of threads, reclaim and the
lazy worlds (``_canonical_races``), and the generator (``_generate``).
"""

from __future__ import annotations

from collections.abc import Callable

from ._canonical_migration import (
    migrate_fork_swapoff,
    migrate_highpte,
    migrate_split_vma,
    migrate_vs_cow_exit,
    migrate_vs_fault,
    migrate_vs_fork_exit,
    migrate_vs_mlock,
    migrate_vs_mremap,
    migrate_vs_mremap_back,
    migrate_vs_munmap,
    migrate_vs_swap_pin,
    tiny_migrate_fault,
    tiny_migrate_pin,
)
from ._canonical_races import (
    gup_vs_fork,
    migrate_vs_child_mremap,
    migrate_vs_pagevec,
    migrate_vs_writeback,
    reclaim_vs_exit,
    swapin_vs_reclaim,
    thread_exit_vs_entry_wait,
    threads_cow_break,
    threads_vs_migrate,
)
from ._generate import KERNEL_OPS as KERNEL_OPS
from ._generate import MREMAP_BASE as MREMAP_BASE
from ._generate import THREAD_OPS as THREAD_OPS
from ._generate import USER_OPS as USER_OPS
from ._generate import Chooser as Chooser
from ._generate import compose as compose
from ._generate import generate as generate
from .workload import Scenario, ScenarioError

CANONICAL: dict[str, Callable[[], Scenario]] = {
    "migrate-vs-fault": migrate_vs_fault,
    "migrate-vs-fork-exit": migrate_vs_fork_exit,
    "migrate-vs-swap-pin": migrate_vs_swap_pin,
    "migrate-vs-munmap": migrate_vs_munmap,
    "migrate-vs-mlock": migrate_vs_mlock,
    "migrate-vs-cow-exit": migrate_vs_cow_exit,
    "migrate-split-vma": migrate_split_vma,
    "migrate-highpte": migrate_highpte,
    "migrate-fork-swapoff": migrate_fork_swapoff,
    "migrate-vs-mremap": migrate_vs_mremap,
    "migrate-vs-mremap-back": migrate_vs_mremap_back,
    "threads-vs-migrate": threads_vs_migrate,
    "gup-vs-fork": gup_vs_fork,
    "threads-cow-break": threads_cow_break,
    "thread-exit-vs-entry-wait": thread_exit_vs_entry_wait,
    "swapin-vs-reclaim": swapin_vs_reclaim,
    "migrate-vs-child-mremap": migrate_vs_child_mremap,
    "reclaim-vs-exit": reclaim_vs_exit,
    "migrate-vs-writeback": migrate_vs_writeback,
    "migrate-vs-pagevec": migrate_vs_pagevec,
    "tiny-migrate-fault": tiny_migrate_fault,
    "tiny-migrate-pin": tiny_migrate_pin,
}

# The gate's exhaustive part (bound 2): small enough to explore every schedule. swapin-vs-reclaim
# is there because no sampling strategy finds its deep race (find-get-page-after-unlock) within
# thousands of runs; migrate-vs-writeback because neither does its window (random walk runs the
# interrupt within a few steps; PCT's change points, spread over the few decisions a random
# walk of it makes, always lower the user task inside it); reclaim-vs-exit is the only
# scenario where reclaim races an exit.
TINY = ("tiny-migrate-fault", "tiny-migrate-pin", "swapin-vs-reclaim", "reclaim-vs-exit",
        "migrate-vs-writeback")

TINY_BOUND = {"swapin-vs-reclaim": 3}
"""TINY scenarios the gate explores at another preemption bound than its default (2):
swapin-vs-reclaim at bound 3 is a search DFS cannot finish in the gate's cap (more than
50,000 schedules) and DPOR finishes in 4,561 (bench/dpor.md): every trace of a swap-in
against two reclaim passes with up to three preemptions. (migrate-vs-writeback was at 1:
DFS runs 5,330 schedules at bound 2, the interrupt preempting each of the migration's ~100
steps; DPOR, which tells the completions' accesses apart, runs 9.)"""


def canonical(name: str) -> Scenario:
    try:
        return CANONICAL[name]()
    except KeyError:
        raise ScenarioError(
            f"unknown scenario {name!r}; choose one of: {', '.join(CANONICAL)}"
        ) from None
