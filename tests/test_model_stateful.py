"""Hypothesis state machine: random *sequences* of operations on one persistent world.

Every rule executes one workload operation (``stress.workload.run_op``) as a single-task
execution against the same world, so there is no concurrency here: what is tested is that
each path of the model leaves the machine in a state the quiescence oracles accept (reference
A.21: I3 counts, I4 mapcounts, I5 rss, I6 anon_vma lists, I7 COW, swap counts), that no
in-model check (free_pages_check, put_page, KASAN, lockdep, migration-entry checks, the
lost-write check on every read) fires, and that pages are conserved. Sequences that a
concurrent run would interleave (fork after swap-out, migrate after mlock, pin after
migration's read-only restore ...) are reached here one at a time, which makes a failure
easy to read: Hypothesis prints the shrunk op sequence.

Processes come from a bundle: fork adds the child's pid. An op on a pid that has exited, or
whose fork was a no-op, is a no-op, as in the workload.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from stress.executors import run_direct
from stress.oracles import check_quiescent
from stress.schedulers import RandomScheduler
from stress.workload import Op, ProcessSpec, Scenario, TaskSpec, VmaSpec, build_world, run_op
from target.kernel import KernelFinding
from target.mm.world import WorldConfig, set_world

WORLD = WorldConfig(nodes=2, pages_per_node=8, swap_slots=4)
# Process 1: a writable vma over one page table and a read-only one in the next (stores there
# are SIGSEGV, loads map the ZERO_PAGE). Process 2: two writable vmas, one spanning two page
# tables (two ptls). Address 8 is outside every vma.
PROCESSES = [
    ProcessSpec(1, [VmaSpec(0, 4), VmaSpec(4, 6, writable=False)]),
    ProcessSpec(2, [VmaSpec(0, 2), VmaSpec(3, 8)]),
]
PREFAULT = [(1, 0), (1, 1), (2, 0), (2, 3), (2, 4)]
ADDRS = st.integers(0, 8)
NODES = st.integers(0, WORLD.nodes - 1)
VALUES = st.integers(1, 999)


class ModelMachine(RuleBasedStateMachine):
    pids = Bundle("pids")

    def __init__(self) -> None:
        super().__init__()
        scenario = Scenario(WORLD, PROCESSES, [TaskSpec("unused", [("read", 1, 0)])])
        self.world, _ = build_world(scenario)
        self.next_pid = 3
        self.ops: list[Op] = []

    def _do(self, op: Op) -> None:
        """One op, one single-task execution; any finding fails the example."""
        self.ops.append(op)
        sched = RandomScheduler(0)
        sched.new_execution()

        async def body() -> None:
            await run_op(op)

        set_world(self.world)
        try:
            out = run_direct(sched, [("op", body)])
        finally:
            set_world(None)
        assert out.finding is None, f"{op}: {out.finding}"

    @initialize(target=pids)
    def processes(self) -> object:
        # Start from populated memory, so that even a short sequence forks, migrates and
        # swaps real pages instead of faulting them in first.
        for pid, addr in PREFAULT:
            self._do(("write", pid, addr, 10 * pid + addr))
        return multiple(*(p.pid for p in PROCESSES))

    @rule(pid=pids, addr=ADDRS, value=VALUES)
    def write(self, pid: int, addr: int, value: int) -> None:
        self._do(("write", pid, addr, value))

    @rule(pid=pids, addr=ADDRS)
    def read(self, pid: int, addr: int) -> None:
        self._do(("read", pid, addr))

    @rule(target=pids, pid=pids)
    def fork(self, pid: int) -> int:
        child = self.next_pid
        self.next_pid += 1
        self._do(("fork", pid, child))
        return child

    def live(self) -> int:
        return sum(1 for p in self.world.processes.values() if p.mm is not None)

    # Hypothesis orders rules by (target, number of arguments, name) and favours the first:
    # this zero-argument rule is that one, so the favoured choice is a harmless full check
    # rather than, say, exit (which would leave every later op a no-op).
    @rule()
    def readback(self) -> None:
        """Every live process reads back every value it stored (I10, lost-write)."""
        for pid in sorted(self.world.processes):
            p = self.world.processes[pid]
            if p.mm is not None:
                for addr in sorted(p.expected):
                    self._do(("read", pid, addr))

    @precondition(lambda self: self.live() > 1)
    @rule(pid=pids)
    def exit(self, pid: int) -> None:
        self._do(("exit", pid))

    @rule(pid=pids, addr=ADDRS)
    def munmap(self, pid: int, addr: int) -> None:
        self._do(("munmap", pid, addr))

    @rule(pid=pids, addr=ADDRS)
    def mlock(self, pid: int, addr: int) -> None:
        self._do(("mlock", pid, addr))

    @rule(pid=pids, addr=ADDRS)
    def munlock(self, pid: int, addr: int) -> None:
        self._do(("munlock", pid, addr))

    @rule(pid=pids, addr=ADDRS, value=VALUES)
    def pin_dma_unpin(self, pid: int, addr: int, value: int) -> None:
        self._do(("pin", pid, addr, value))

    @rule(pid=pids, source=NODES, dest=NODES, move_all=st.booleans())
    def migrate(self, pid: int, source: int, dest: int, move_all: bool) -> None:
        self._do(("migrate", pid, source, dest, int(move_all)))

    @rule(nid=NODES, passes=st.integers(1, 3))
    def swapout(self, nid: int, passes: int) -> None:
        # A page needs three kswapd passes to leave memory (clear young, unmap + write,
        # free): drawing them one rule at a time would rarely get a page all the way out.
        for _ in range(passes):
            self._do(("swapout", nid))

    @invariant()
    def quiescent(self) -> None:
        try:
            check_quiescent(self.world)
        except KernelFinding as exc:
            raise AssertionError(f"{exc} after {self.ops}") from None

    @invariant()
    def pages_conserved(self) -> None:
        """A page is on a free list iff its count is 0 (every pfn is accounted for)."""
        free = {id(p) for z in self.world.zones for p in z.free_list}
        for page in self.world.mem_map:
            if page is self.world.zero_page:
                continue
            assert (page.count == 0) == (id(page) in free), (page, self.ops)


_COMMON = {
    "deadline": None,
    "derandomize": True,  # deterministic: the same examples on every run
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow],
}

TestModelStateful = ModelMachine.TestCase
TestModelStateful.settings = settings(max_examples=60, stateful_step_count=20, **_COMMON)


@pytest.mark.slow
def test_model_stateful_long() -> None:
    run_state_machine_as_test(
        ModelMachine, settings=settings(max_examples=400, stateful_step_count=40, **_COMMON)
    )
