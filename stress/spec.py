"""What an address space must look like after each mm system call: a specification, not the model.

Ours (the kernel has no such check; LTP's mremap/munmap/mprotect tests play its part). The
model's vma code (split_vma, vma_adjust, vma_merge, move_vma, fixup_range ...) is what it is
for: an off-by-one in a split, a lost flag in a merge, an EINVAL that should have been a move
keep every page count and lock balanced, so no other oracle sees them. This one does: each mm
carries, as ghost state, the page-level layout its system calls must have left
(``mm.ghost_layout``: address -> (writable, locked)), updated here from the documented
semantics of munmap, mprotect, mlock/munlock and mremap as 2.6.17 implements them; the model's
vmas are compared with it, and the call's return value with the one specified, in the same
mmap_sem-for-write section (syscalls._with_mmap_sem_write's ``spec`` hook, built by
:func:`syscall_hook`), so the comparison is exact however many threads share the mm. fork
copies the layout in dup_mmap, with both mmap_sems held (VM_LOCKED is not inherited).

The other system calls' results are checked here too: a pin (get_user_pages) of a writable
page succeeds while memory is free, a move_pages status that names a node is where the page
is, swapoff returns 0 or -ENOMEM.

Vma *boundaries* are not specified (whether two neighbours with the same flags merge is the
model's business); pages and their flags are. Read from raw fields only (``vm_start``,
``vm_end``, ``vm_flags``), never with the model's helpers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from target.kernel import KernelFinding
from target.mm.types import (
    PTRS_PER_PTE,
    VM_LOCKED,
    VM_WRITE,
    MmStruct,
    Page,
    PresentPte,
    Pte,
    VmArea,
)
from target.mm.world import W

Layout = dict[int, tuple[bool, bool]]  # address -> (writable, locked)

# The specification's constants: the user address space and the bottom of the mmap area
# (i386's legacy layout, in pages as the model counts them), and the errnos.
TASK_SIZE = 64
TASK_UNMAPPED_BASE = 32
EINVAL, ENOMEM, EFAULT = -22, -12, -14
MREMAP_MAYMOVE, MREMAP_FIXED = 1, 2


Op = tuple[Any, ...]


def _mismatch(op: Op | str, message: str, **details: Any) -> NoReturn:
    """A ``syscall-mismatch`` finding about the workload operation ``op``; its text is built
    here, on the failure path only (the checks run on every mm system call)."""
    call = op if isinstance(op, str) else " ".join(str(x) for x in op)
    raise KernelFinding("syscall-mismatch", f"{call}{message}", {"call": call, **details},
                        function="spec")


def _memory_free(since: int) -> bool:
    """Every node has a free page and no allocation has failed since the world's
    ``alloc_failures`` was ``since`` (the call's start): no fault of the call can have given
    up for want of memory. Free memory at the check alone is not enough: with pagevecs,
    mmu_gather batches and asynchronous I/O, pages are freed late, so memory may be short
    while the call allocates and free again when it returns."""
    w = W()
    return w.alloc_failures == since and all(zone.free_list for zone in w.zones)


def _vma_at(mm: MmStruct, addr: int) -> VmArea | None:
    """The model's vma containing ``addr`` (raw fields), None if none does."""
    for vma in mm.mmap:
        if vma.vm_start <= addr < vma.vm_end:
            return vma
    return None


def _pte_at(mm: MmStruct, addr: int) -> Pte:
    """The pte at ``addr`` (raw page tables), None without a table."""
    table = mm.pgtables.get(addr // PTRS_PER_PTE)
    return table.ptes[addr - table.base] if table is not None else None


def actual_layout(mm: MmStruct) -> Layout:
    """The model's vmas at page granularity (raw fields)."""
    out: Layout = {}
    for vma in mm.mmap:
        for a in range(vma.vm_start, vma.vm_end):
            out[a] = (bool(vma.vm_flags & VM_WRITE), bool(vma.vm_flags & VM_LOCKED))
    return out


def vma_form(mm: MmStruct, addr: int, length: int | None) -> tuple[int, int]:
    """The range of a workload op without a length: the whole vma containing ``addr`` (the
    op's documented form, stress.workload), or an empty range if none does."""
    if length is not None:
        return addr, length
    vma = _vma_at(mm, addr)
    return (vma.vm_start, vma.vm_end - vma.vm_start) if vma is not None else (addr, 0)


def munmap(lay: Layout, start: int, length: int) -> int:
    """``do_munmap``: -EINVAL for a range outside the user space; else 0, holes or not."""
    if start < 0 or length <= 0 or start > TASK_SIZE or length > TASK_SIZE - start:
        return EINVAL
    for a in range(start, start + length):
        lay.pop(a, None)
    return 0


def _change_range(lay: Layout, start: int, length: int, writable: bool | None,
                  locked: bool | None) -> int:
    """mprotect / mlock: pages from ``start`` in order, up to the first hole (-ENOMEM; the
    pages before it keep their change, as sys_mprotect and do_mlock leave them)."""
    if length <= 0:
        return EINVAL
    if start not in lay:
        return ENOMEM
    for a in range(start, start + length):
        if a not in lay:
            return ENOMEM
        w, lk = lay[a]
        lay[a] = (w if writable is None else writable, lk if locked is None else locked)
    return 0


def mprotect(lay: Layout, start: int, length: int, writable: bool) -> int:
    return _change_range(lay, start, length, writable, None)


def mlock(lay: Layout, start: int, length: int, on: bool) -> int:
    return _change_range(lay, start, length, None, on)


def mremap(lay: Layout, addr: int, old_len: int, new_len: int, flags: int, new_addr: int,
           vma_end: int | None, ret: int) -> int | None:
    """``do_mremap``: the return value the call must have, or None when the kernel may
    choose (a move without MREMAP_FIXED: any free range of ``new_len`` pages at or above
    TASK_UNMAPPED_BASE, checked against ``ret``). ``lay`` is left as the call must leave it.

    ``vma_end`` is the end of the model's vma containing ``addr`` before the call (None: no
    vma there): where a vma ends decides "we can't remap across vm area boundaries"
    (-EFAULT) and growing in place, and vma boundaries are the one thing this specification
    takes from the model (whether neighbours with equal flags merged is not specified)."""
    if flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE) or new_len <= 0 or old_len < 0:
        return EINVAL
    if flags & MREMAP_FIXED:
        if not flags & MREMAP_MAYMOVE:
            return EINVAL
        if new_addr < 0 or new_len > TASK_SIZE or new_addr > TASK_SIZE - new_len:
            return EINVAL
        if new_addr <= addr < new_addr + new_len or addr <= new_addr < addr + old_len:
            return EINVAL
        munmap(lay, new_addr, new_len)
    if old_len >= new_len:
        if old_len > new_len:
            munmap(lay, addr + new_len, old_len - new_len)
        if not flags & MREMAP_FIXED or new_addr == addr:
            return addr
        old_len = new_len
    if addr in lay and vma_end is not None:  # the munmaps above may have cut the vma short
        vma_end = min([vma_end] + [a for a in range(addr, vma_end) if a not in lay])
    if addr not in lay or vma_end is None or old_len > vma_end - addr:
        return EFAULT
    flags_of = lay[addr]
    if (old_len == vma_end - addr and not (flags & MREMAP_FIXED and addr != new_addr)
            and (old_len != new_len or not flags & MREMAP_MAYMOVE)):
        nxt = min((a for a in lay if a >= vma_end), default=TASK_SIZE)
        if nxt - addr >= new_len:  # grow in place
            for a in range(addr + old_len, addr + new_len):
                lay[a] = flags_of
            return addr
    if not flags & MREMAP_MAYMOVE:
        return ENOMEM
    expected: int | None = new_addr
    if not flags & MREMAP_FIXED:
        free = [b for b in range(TASK_UNMAPPED_BASE, TASK_SIZE - new_len + 1)
                if all(a not in lay for a in range(b, b + new_len))]
        if not free:
            return ENOMEM
        if ret not in free:
            return free[0]  # not a free range: report the first one the kernel could take
        expected, new_addr = None, ret
    moved = {a: lay.pop(a) for a in range(addr, addr + old_len)}
    for k in range(new_len):
        lay[new_addr + k] = moved.get(addr + k, flags_of)
    return expected


def check(mm: MmStruct, op: Op, ret: int, expected: int | None, lay: Layout) -> None:
    """The call returned what it must and left the layout it must: else a finding."""
    if expected is not None and ret != expected:
        _mismatch(op, f" on {mm.name} returned {ret}, its specification {expected}",
                  mm=mm.name, ret=ret, expected=expected)
    # mprotect's other half: a pte may be writable only where the vma is (change_protection
    # after vm_flags and vm_page_prot are set). No fault runs while the caller holds mmap_sem
    # for write, and the MMU never sets the write bit, so this holds exactly here.
    for table in mm.pgtables.values():
        for i, pte in enumerate(table.ptes):
            a = table.base + i
            if type(pte) is PresentPte and pte.write and not lay.get(a, (False, False))[0]:
                _mismatch(op, f" (returned {ret}): {mm.name} has a writable pte at {a}, which "
                          f"its specification maps {lay.get(a, 'not at all')}",
                          mm=mm.name, ret=ret, addr=a)
    got = actual_layout(mm)
    if got != lay:
        diff = sorted(a for a in set(got) | set(lay) if got.get(a) != lay.get(a))
        a = diff[0]
        _mismatch(op, f" (returned {ret}): {mm.name} maps page {a} as {got.get(a)} (writable, "
                  f"locked), its specification {lay.get(a)}; {len(diff)} pages differ",
                  mm=mm.name, ret=ret, pages=diff[:16],
                  got={str(x): got.get(x) for x in diff[:16]},
                  expected={str(x): lay.get(x) for x in diff[:16]})


def check_mlock_resident(mm: MmStruct, op: Op, before: Layout, start: int,
                         length: int, failures: int) -> None:
    """After a successful mlock the pages it locked are resident (mlock_fixup's
    make_pages_present fails the call otherwise). Pages of a vma that was VM_LOCKED already
    are skipped (mlock_fixup does nothing for them: newflags == vm_flags), and so is a call
    made short of memory: the model's make_pages_present ignores a fault that gave up for
    want of memory, where 2.6.17 would fail the mlock (docs/model.md)."""
    if not _memory_free(failures):
        return
    for a in range(start, start + length):
        if not before.get(a, (False, True))[1] and type(_pte_at(mm, a)) is not PresentPte:
            _mismatch(op, f" returned 0 but page {a} of {mm.name} is not resident", addr=a)


def syscall_hook(op: Op) -> Callable[[MmStruct], Callable[[int], None]]:
    """The check of one munmap/mprotect/mlock/munlock/mremap of the workload: called with
    the mm once its mmap_sem is held for write (before the call), it returns the check of
    the call's return value (after it, before up_write): target.mm.syscalls.SpecHook."""
    name = op[0]

    def before(mm: MmStruct) -> Callable[[int], None]:
        lay = dict(mm.ghost_layout)
        failures = W().alloc_failures
        if name == "mremap":
            _, _, addr, old_len, new_len, new_addr = op
            flags = MREMAP_MAYMOVE | (MREMAP_FIXED if new_addr >= 0 else 0)
            vma = _vma_at(mm, addr)
            vma_end = vma.vm_end if vma is not None else None
        else:
            start, length = vma_form(mm, op[2], op[3] if len(op) > 3 else None)

        def after(ret: int) -> None:
            expected: int | None
            if name == "mremap":
                expected = mremap(lay, addr, old_len, new_len, flags, new_addr, vma_end, ret)
            elif not length:  # the op's vma form found no vma
                expected = EINVAL if name == "munmap" else ENOMEM
            elif name == "munmap":
                expected = munmap(lay, start, length)
            elif name == "mprotect":
                expected = mprotect(lay, start, length, bool(op[4]))
            else:
                expected = mlock(lay, start, length, name == "mlock")
            check(mm, op, ret, expected, lay)
            if name == "mlock" and ret == 0:
                check_mlock_resident(mm, op, mm.ghost_layout, start, length, failures)
            mm.ghost_layout = lay

        return after

    return before


def pin_hook(op: Op) -> Callable[[MmStruct, Page | None], None]:
    """get_user_pages(write=1) of a page the layout says is writable succeeds unless memory
    is short; checked under the pin's mmap_sem, where no munmap can change the answer."""
    addr = op[2]
    failures = W().alloc_failures  # made as the pin starts (stress/workload.py)

    def check_pin(mm: MmStruct, page: Page | None) -> None:
        writable = mm.ghost_layout.get(addr, (False, False))[0]
        if page is None and writable and _memory_free(failures):
            _mismatch(op, f": get_user_pages of writable page {addr} of {mm.name} failed "
                      "with free memory on every node", addr=addr)

    return check_pin


def mapped_page(mm: MmStruct | None, addr: int) -> tuple[int, int, int] | None:
    """(pfn, allocation generation, node) of the page ``mm`` maps at ``addr`` (raw fields)."""
    pte = _pte_at(mm, addr) if mm is not None else None
    if type(pte) is not PresentPte:
        return None
    page = W().mem_map[pte.pfn]
    return page.pfn, page.ghost_gen, page.nid


def check_move_pages(op: Op, status: int | None, before: tuple[int, int, int] | None,
                     after: tuple[int, int, int] | None) -> None:
    """move_pages(2): a status that names a node says the page is there. If the very page
    mapped before the call (same pfn, same allocation) is still mapped, nobody moved it, so
    it must have been on that node all along."""
    if status is None or status < 0 or before is None:
        return
    if after == before and after[2] != status:
        _mismatch(op, f": status {status}, but page pfn {after[0]} mapped there before and "
                  f"after the call is on node {after[2]}", status=status, pfn=after[0],
                  node=after[2])


def check_swapoff(ret: object) -> None:
    """swapoff(2) returns 0, or -ENOMEM from try_to_unuse."""
    if ret not in (0, ENOMEM):
        _mismatch("swapoff", f" returned {ret!r}", ret=repr(ret))
