"""sys_move_pages (2.6.18, reference A.16) on the V2 model: statuses and ledgers, single task."""

from __future__ import annotations

from typing import Any

from test_model_ledgers import call, forked_pair, is_free, ledger, machine, page_at, rss

from stress.oracles import check_quiescent
from stress.workload import ProcessSpec, VmaSpec
from target.mm import syscalls
from target.mm.move_pages import EACCES, EFAULT, ENOENT

__all__ = ["machine"]


def test_move_one_page_and_its_ledger(machine: Any) -> None:
    """Status is the target node; the new page has the old one's count/mapcount (1/1), the
    old page is freed, rss unchanged, data intact."""
    world, procs = machine([ProcessSpec(1, [VmaSpec(0, 2)])])
    p = procs[1]
    call(syscalls.user_access, p, 0, True, 5)
    old = page_at(world, p.mm, 0)
    assert call(syscalls.move_pages, p, 0, 1, False) == 1
    new = page_at(world, p.mm, 0)
    assert new.nid == 1 and ledger(new) == (1, 1) and is_free(world, old)
    assert rss(p.mm) == (1, 0) and call(syscalls.user_access, p, 0, False) == 5
    assert call(syscalls.move_pages, p, 0, 1, False) == 1  # already there: its node
    check_quiescent(world)


def test_statuses_of_pages_that_do_not_move(machine: Any) -> None:
    """-ENOENT for an unfaulted page and for the ZERO_PAGE, -EFAULT past every vma."""
    world, procs = machine([ProcessSpec(1, [VmaSpec(0, 2)])])
    p = procs[1]
    assert call(syscalls.move_pages, p, 0, 1, False) == ENOENT  # never faulted
    call(syscalls.user_access, p, 1, False)  # read fault: the ZERO_PAGE
    assert call(syscalls.move_pages, p, 1, 1, False) == ENOENT
    assert call(syscalls.move_pages, p, 9, 1, False) == EFAULT
    check_quiescent(world)


def test_shared_page_needs_move_all(machine: Any) -> None:
    """A page mapped by parent and child: -EACCES with MPOL_MF_MOVE; MOVE_ALL moves it for
    both (mapcount 2 on the new page)."""
    world, parent, child, page = forked_pair(machine)
    assert call(syscalls.move_pages, child, 0, 1, False) == EACCES
    assert call(syscalls.move_pages, child, 0, 1, True) == 1
    new = page_at(world, parent.mm, 0)
    assert new is page_at(world, child.mm, 0) and ledger(new) == (2, 2)
    assert is_free(world, page)
    check_quiescent(world)
