"""Kernel invariants in the model are typed findings, never a bare ``assert`` (issue 18 item 4).

An ``AssertionError`` escaping a model task is a harness error (exit 3); a violated kernel
invariant must be a :class:`KernelFinding`, so that a real race is reported as a finding.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest

from stress.executors import run_direct
from stress.schedulers import RandomScheduler
from stress.workload import ProcessSpec, Scenario, TaskSpec, VmaSpec, build_world
from target.mm import rmap, syscalls
from target.mm.types import PTRS_PER_PTE, PresentPte
from target.mm.world import WorldConfig, set_world

TARGET = pathlib.Path(__file__).resolve().parent.parent / "target"
ASSERT = re.compile(r"^\s*assert\b")


def test_model_has_no_bare_assert() -> None:
    """Every ``assert`` left in target/ says why it is the harness's own (``# harness:``)."""
    bare = []
    for path in sorted(TARGET.rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if ASSERT.match(line) and "# harness:" not in line:
                bare.append(f"{path.relative_to(TARGET.parent)}:{n}: {line.strip()}")
    assert not bare, "kernel invariants must be BUG_ON/VM_BUG_ON:\n" + "\n".join(bare)
    assert any(ASSERT.match(line) for line in (TARGET / "kernel" / "_sched.py").read_text()
               .splitlines()), "the grep must see the harness asserts it allows"


def _single(body: Any) -> Any:
    sched = RandomScheduler(0)
    sched.new_execution()
    return run_direct(sched, [("t", body)])


def test_try_to_unmap_one_non_present_pte_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """try_to_unmap_one clearing a pte that is not present is a ``bug`` finding in that
    function (it used to be ``assert type(pteval) is PresentPte``: a harness error)."""
    sc = Scenario(WorldConfig(nodes=2, pages_per_node=6, swap_slots=4),
                  [ProcessSpec(1, [VmaSpec(0, PTRS_PER_PTE)])], [TaskSpec("t", [("read", 1, 0)])])
    world, procs = build_world(sc)
    set_world(world)
    try:
        p = procs[1]
        box: dict[str, Any] = {}

        async def fault() -> None:
            await syscalls.user_access(p, 0, True, 7)

        assert _single(fault).finding is None
        assert p.mm is not None
        pte = p.mm.pgtables[0].ptes[0]
        assert type(pte) is PresentPte
        page = world.mem_map[pte.pfn]

        async def cleared(*args: Any) -> None:
            return None  # a racing zap got there first: the pte is already none

        monkeypatch.setattr(rmap, "ptep_clear_flush", cleared)

        async def unmap() -> None:
            await page.locked.lock()
            box["r"] = await rmap.try_to_unmap(page, True)

        out = _single(unmap)
        assert out.finding is not None
        assert (out.finding.kind, out.finding.function) == ("bug", "try_to_unmap_one")
    finally:
        set_world(None)
