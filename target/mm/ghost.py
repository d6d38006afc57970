"""Ghost memory: what each address space's user program must read back (reference I10).

Ours, not the kernel's. Every ``mm`` carries ``ghost``: address -> the value of the last store
to that address, in the run's global step order. A store updates it in the same step as the
page data (the MMU access and a DMA burst are atomic steps of the model), so with several
threads in one mm the expectation is exact, not a window: two racing stores leave whichever
ran last, and the ghost says the same. The kernel's page moves carry the ghost with them in
the step that moves the pte, so that a sibling thread's store just before or after is on the
right side:

    fork    copy_one_pte copies the address's value to the child in the step that makes the
            pte read-only in the parent (after it, the parent's stores COW away from the child)
    mremap  move_ptes moves it in the step that clears the old pte
    munmap  zap_pte_range forgets it in the step that clears the pte (a later mapping at that
            address starts zero-filled)

An address with no ghost value reads 0 (anonymous memory is zero-filled). A load that returns
anything other than the ghost value at the step it read is a ``lost-write``.

DMA through a pin (``get_user_pages``) writes the page, not an address. Each burst is expected
wherever the process maps that page now, and at the pinned address as long as the user has
not unmapped or moved that address since the pin (``ghost_unmaps`` counts those, per
address): the kernel owes the process its DMA there, so a burst that lands in a page the
address no longer maps for a reason of the kernel's (a COW after fork) is a lost write, and
one the user's own munmap or mremap sent elsewhere is not.
"""

from __future__ import annotations

from .types import MmStruct, PresentPte


def ghost_value(mm: MmStruct, addr: int) -> int:
    """The value ``mm``'s user program must read at ``addr`` now."""
    return mm.ghost.get(addr, 0)


def ghost_store(mm: MmStruct, addr: int, value: int) -> None:
    """A store to ``addr`` took effect in this step."""
    mm.ghost[addr] = value


def ghost_copy(src: MmStruct, dst: MmStruct, addr: int) -> None:
    """fork: the child's ``addr`` holds what the parent's holds at this step."""
    if addr in src.ghost:
        dst.ghost[addr] = src.ghost[addr]


def ghost_move(mm: MmStruct, old_addr: int, new_addr: int) -> None:
    """mremap: the value at ``old_addr`` is at ``new_addr`` from this step on."""
    mm.ghost_unmaps[old_addr] = mm.ghost_unmaps.get(old_addr, 0) + 1
    if old_addr in mm.ghost:
        mm.ghost[new_addr] = mm.ghost.pop(old_addr)
    else:
        mm.ghost.pop(new_addr, None)


def ghost_forget(mm: MmStruct, addr: int) -> None:
    """munmap/exit: nothing is mapped at ``addr`` from this step on."""
    mm.ghost_unmaps[addr] = mm.ghost_unmaps.get(addr, 0) + 1
    mm.ghost.pop(addr, None)


def ghost_fork_layout(oldmm: MmStruct, mm: MmStruct) -> None:
    """dup_mmap, both mmap_sems held: the child's address space is the parent's, unlocked
    (VM_LOCKED is not inherited)."""
    mm.ghost_layout = {a: (w, False) for a, (w, _) in oldmm.ghost_layout.items()}


def ghost_unmaps(mm: MmStruct, addr: int) -> int:
    """How often the user has unmapped or moved ``addr`` so far (a pin records it)."""
    return mm.ghost_unmaps.get(addr, 0)


def ghost_dma(mm: MmStruct, addr: int, unmaps_at_pin: int, pfn: int, value: int) -> None:
    """A DMA burst of ``value`` into page ``pfn``, pinned at ``addr``, took effect now."""
    for table in mm.pgtables.values():
        for i, pte in enumerate(table.ptes):
            if type(pte) is PresentPte and pte.pfn == pfn:
                mm.ghost[table.base + i] = value
    if ghost_unmaps(mm, addr) == unmaps_at_pin:
        mm.ghost[addr] = value
