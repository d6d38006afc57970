"""The model's kernel structures: struct page, ptes, vm_area_struct, mm_struct, anon_vma.

Mirrors include/linux/mm_types.h, mm.h, page-flags.h, rmap.h and the pte accessors of
asm/pgtable.h as of 2.6.17. Addresses are virtual *page numbers* (the model never needs the
offset within a page); a page-table page covers ``PTRS_PER_PTE`` of them and has its own split
ptl, so two vmas of one mm can be under different ptls, as on a real machine.

Besides kernel state, a few fields are *ghost state* kept only for the oracles, each marked
"ghost" below: a page's data value (for lost-write checks), and counts of the ptes
that point at a page (for the mapcount and migration-entry oracles). The model's logic never
reads ghost state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from target.kernel import (
    BUG,
    READ,
    WRITE,
    KObject,
    WaitBit,
    might_sleep,
    rw_semaphore,
    spinlock_t,
    touch,
)

from .locking import ANON_VMA_LOCK, MMAP_SEM, PAGE_TABLE_LOCK, PG_LOCKED, PTL

if TYPE_CHECKING:
    from .world import AddressSpace

# -- page flags (include/linux/page-flags.h); PG_locked and PG_writeback are WaitBits -----------

PG_uptodate = 1 << 0
PG_dirty = 1 << 1
PG_lru = 1 << 2
PG_active = 1 << 3
PG_private = 1 << 4
PG_reserved = 1 << 5
PG_swapcache = 1 << 6
PG_referenced = 1 << 7

FLAG_NAMES = {
    PG_uptodate: "uptodate",
    PG_dirty: "dirty",
    PG_lru: "lru",
    PG_active: "active",
    PG_private: "private",
    PG_reserved: "reserved",
    PG_swapcache: "swapcache",
    PG_referenced: "referenced",
}

# -- vm_flags (include/linux/mm.h) ---------------------------------------------------------------

VM_READ = 0x1
VM_WRITE = 0x2
VM_SHARED = 0x8
VM_MAYWRITE = 0x20
VM_LOCKED = 0x2000

PTRS_PER_PTE = 4  # small on purpose: several page-table pages, hence several ptls, per mm


class Page:
    """``struct page``. One per pfn, never freed itself: "freed" means back on a free list.

    Invariants:
        ``count >= 0``; ``count == 0`` iff the page is on its node's free list.
        ``mapcount == _mapcount + 1 >= 0`` is the number of present ptes mapping it (I4).
        ``PageAnon(page)`` iff ``mapping`` is an ``AnonVma`` (the PAGE_MAPPING_ANON tag).
        ``private`` holds the swap entry while PG_swapcache is set.
        ``locked.is_set`` is PG_locked; ``writeback.is_set`` is PG_writeback.
    """

    __slots__ = (
        "_count",
        "_mapcount",
        "data",
        "flags",
        "ghost_gen",
        "ghost_migration_ptes",
        "ghost_ptes",
        "index",
        "locked",
        "lru",
        "mapping",
        "nid",
        "pfn",
        "private",
        "writeback",
    )

    def __init__(self, pfn: int, nid: int) -> None:
        self.pfn = pfn
        self.nid = nid
        self._count = 0
        self._mapcount = -1
        self.flags = 0
        self.locked = WaitBit(f"page{pfn}.PG_locked", PG_LOCKED)
        self.writeback = WaitBit(f"page{pfn}.PG_writeback")
        self.mapping: AnonVma | AddressSpace | None = None
        self.index = 0
        self.private = 0
        self.lru: list[Page] | None = None  # the list the page is on (LRU, a pagelist, free)
        # ghost state: content, identity across migration/swap, ptes that point here
        self.data = 0
        self.ghost_gen = 0  # allocations of this pfn so far: tells a reused page from itself
        self.ghost_ptes = 0
        self.ghost_migration_ptes = 0

    def __repr__(self) -> str:
        flags = ",".join(n for b, n in FLAG_NAMES.items() if self.flags & b)
        if self.locked.is_set:
            flags += ",locked"
        if self.writeback.is_set:
            flags += ",writeback"
        return (f"<page pfn={self.pfn} nid={self.nid} count={self._count} "
                f"map={self.mapcount} [{flags}]>")

    @property
    def count(self) -> int:
        return self._count

    @property
    def mapcount(self) -> int:
        return self._mapcount + 1


# The part of the page each mutable field is, as the model's points name them (PendingOp).
_PAGE_PARTS = {"_count": "count", "_mapcount": "mapcount", "flags": "flags", "data": "data",
               "mapping": "mapping", "index": "mapping", "private": "private", "lru": "lru",
               "ghost_gen": "ghost", "ghost_ptes": "ghost", "ghost_migration_ptes": "ghost"}


class TracedPage(Page):
    """A :class:`Page` each of whose field accesses is a :func:`~target.kernel.touch`.

    The model's points announce the page accesses its races are about, not all of them: a
    ``get_page`` under tree_lock (find_get_page), a flag set under the page lock, a fresh
    page's fields. A strategy that reorders only the steps that do not commute (DPOR) must
    know them all, or it takes a step that drops a reference while another takes one under
    tree_lock for independent (bench/dpor.md has the run). Rather than a touch at each of
    the ~90 places (a list nobody could keep complete), the pages of a world explored by
    DPOR are switched to this class (``World.trace_page_accesses``): the same slots, so the
    switch is an assignment to ``__class__``, and the other strategies keep the plain
    ``Page`` and pay nothing. pfn, nid and the two wait bits never change: not recorded.
    """

    __slots__ = ()


def _traced(name: str, part: str) -> property:
    """A property over ``Page``'s slot ``name`` that touches ``part`` (a property per field,
    not ``__getattribute__``: the other attributes and the methods stay at slot speed)."""
    slot: Any = Page.__dict__[name]

    def get(page: Page) -> Any:
        touch(page, READ, part)
        return slot.__get__(page)

    def put(page: Page, value: Any) -> None:
        touch(page, WRITE, part)
        slot.__set__(page, value)

    return property(get, put)


for _name, _part in _PAGE_PARTS.items():
    setattr(TracedPage, _name, _traced(_name, _part))


# -- ptes --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PresentPte:
    """``pte_present``: maps ``pfn``; write/dirty/young as the hardware bits."""

    pfn: int
    write: bool = False
    dirty: bool = False
    young: bool = True

    def __str__(self) -> str:
        bits = ("w" if self.write else "-") + ("d" if self.dirty else "-") + (
            "y" if self.young else "-"
        )
        return f"P({self.pfn},{bits})"


@dataclass(frozen=True, slots=True)
class SwapPte:
    """A non-present, non-file pte holding a swap entry (``swp_entry_t``): (type, offset).

    Migration entries are swap entries of type ``SWP_TYPE_MIGRATION`` whose offset is the pfn
    of the page under migration (V2 2/5; there is no read/write distinction in V2).
    """

    type: int
    offset: int

    def __str__(self) -> str:
        from .swapops import SWP_TYPE_MIGRATION

        if self.type == SWP_TYPE_MIGRATION:
            return f"M({self.offset})"
        return f"S({self.type}:{self.offset})"


Pte = PresentPte | SwapPte | None  # None is pte_none


def pte_none(pte: Pte) -> bool:
    return pte is None


def pte_present(pte: Pte) -> bool:
    return type(pte) is PresentPte


def is_swap_pte(pte: Pte) -> bool:
    """``!pte_none && !pte_present && !pte_file`` (the model has no nonlinear file ptes)."""
    return type(pte) is SwapPte


class ListHead:
    """``struct list_head``: a node of a circular doubly linked list (a list head is a node).

    Kept as the kernel has it because the *shape* matters: ``list_add(new, head)`` links
    ``new`` into whatever circle ``head`` is on, even one that is not the list the caller
    meant (copy_one_pte's mmlist add in 2006, see target.mm.memory). ``owner`` is the
    structure the node is embedded in (``list_entry``); None for a bare head (init_mm's).
    """

    __slots__ = ("next", "owner", "prev")

    def __init__(self, owner: object = None) -> None:
        self.owner = owner
        self.next: ListHead | None = self  # INIT_LIST_HEAD; None is LIST_POISON after list_del
        self.prev: ListHead | None = self

    def __repr__(self) -> str:
        return f"<list_head of {self.owner!r}>"


def list_empty(head: ListHead) -> bool:
    """``list_empty``: ``head->next == head`` (a poisoned, deleted entry is not empty)."""
    return head.next is head


def list_add(new: ListHead, head: ListHead) -> None:
    """``list_add``: insert ``new`` right after ``head``, in whatever circle ``head`` is on."""
    nxt = head.next
    if nxt is None:  # LIST_POISON1 dereference: an oops in the kernel
        BUG("bug", f"list_add after deleted entry {head!r}")
    nxt.prev = new
    new.next = nxt
    new.prev = head
    head.next = new


def list_del(entry: ListHead) -> None:
    """``list_del``: unlink ``entry`` and poison it."""
    prev, nxt = entry.prev, entry.next
    if prev is None or nxt is None:
        BUG("bug", f"list_del of deleted entry {entry!r}")
    nxt.prev = prev
    prev.next = nxt
    entry.next = entry.prev = None


def list_del_init(entry: ListHead) -> None:
    """``list_del_init``: unlink ``entry`` and make it an empty list again."""
    list_del(entry)
    entry.next = entry.prev = entry


def list_members(head: ListHead) -> list[object]:
    """The owners of the entries after ``head`` (``list_for_each_entry``), head excluded."""
    out = []
    node = head.next
    while node is not None and node is not head:
        out.append(node.owner)
        node = node.next
    return out


class PageTablePage(KObject):
    """A page-table page: ``PTRS_PER_PTE`` ptes and its split ptl (``pte_lockptr``).

    Invariant: a pte is written only with ``ptl`` held (reads may be unlocked peeks).
    Freed by free_pgtables; a walker that kept a pointer to it is a use-after-free.
    """

    __slots__ = ("base", "mm", "mm_name", "ptes", "ptl")
    kind = "page table"

    def __init__(self, mm: MmStruct, pmd_index: int) -> None:
        super().__init__()
        self.mm = mm  # a pte's pending operation names it as (mm, address): PendingOp
        self.mm_name = mm.name
        self.base = pmd_index * PTRS_PER_PTE
        self.ptes: list[Pte] = [None] * PTRS_PER_PTE
        self.ptl = spinlock_t(PTL, f"{mm.name}.ptl[{pmd_index}]", self)

    def __repr__(self) -> str:
        return f"<page table {self.mm_name}[{self.base}..]{' FREED' if self.freed else ''}>"


class AnonVma(KObject):
    """``struct anon_vma``: a lock and the ordered list of vmas that may map its pages.

    Invariants:
        ``head`` is in rmap walk order; fork appends the child's vma at the tail (I11).
        Freed by anon_vma_unlink when ``head`` empties; no refcount in 2006.
    """

    __slots__ = ("head", "id", "lock", "reused")
    kind = "anon_vma"
    slab_destroy_by_rcu = True  # anon_vma_cachep: SLAB_DESTROY_BY_RCU
    _ids = 0

    def __init__(self) -> None:
        super().__init__()
        AnonVma._ids += 1
        self.id = AnonVma._ids
        self.lock = spinlock_t(ANON_VMA_LOCK, f"anon_vma{self.id}.lock", self)
        self.head: list[VmArea] = []
        # Times the slab handed this memory out again (the id names the memory, as an
        # address would): reports tell the incarnations apart by it.
        self.reused = 0

    def __repr__(self) -> str:
        again = f"#{self.reused}" if self.reused else ""
        return f"<anon_vma {self.id}{again}{' FREED' if self.freed else ''}>"


class VmArea(KObject):
    """``struct vm_area_struct`` over virtual pages [vm_start, vm_end).

    ``vm_page_prot`` is reduced to one bit: whether a pte built from it is writable. Private
    writable mappings get read-only ptes (PAGE_COPY) so the first write takes a COW fault.
    """

    __slots__ = ("anon_vma", "vm_end", "vm_flags", "vm_mm", "vm_page_prot_write", "vm_pgoff",
                 "vm_start")
    kind = "vma"

    def __init__(self, mm: MmStruct, start: int, end: int, flags: int) -> None:
        super().__init__()
        self.vm_mm = mm
        self.vm_start = start
        self.vm_end = end
        self.vm_pgoff = start  # anonymous: pgoff is the address >> PAGE_SHIFT
        self.vm_flags = flags
        self.vm_page_prot_write = bool(flags & VM_SHARED) and bool(flags & VM_WRITE)
        self.anon_vma: AnonVma | None = None

    def __repr__(self) -> str:
        freed = " FREED" if self.freed else ""
        return f"<vma {self.vm_mm.name} [{self.vm_start},{self.vm_end}){freed}>"


class MmStruct(KObject):
    """``struct mm_struct``: mmap_sem, vmas, page tables, rss counters, users, mmlist.

    Invariants:
        ``mmap`` is sorted by vm_start and its vmas do not overlap.
        ``anon_rss`` counts present anon ptes, ``file_rss`` present ZERO_PAGE ptes (I5, V2
        semantics: try_to_unmap_one decrements for migration entries, remove_migration_pte
        increments again).
        ``mm_users > 0`` until exit_mmap; the struct is freed by mmput after it.
        Every mm that holds a swap entry is reachable from ``init_mm.mmlist`` (swapoff
        walks that list and nothing else to find them; checked at quiescence and by swapoff).
    """

    __slots__ = ("anon_rss", "file_rss", "ghost", "ghost_layout", "ghost_unmaps", "mm_users",
                 "mmap", "mmap_sem", "mmlist", "name", "page_table_lock", "pgtables")
    kind = "mm"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.mmap_sem = rw_semaphore(MMAP_SEM, f"{name}.mmap_sem", self)
        self.page_table_lock = spinlock_t(PAGE_TABLE_LOCK, f"{name}.page_table_lock", self)
        self.mmap: list[VmArea] = []
        self.pgtables: dict[int, PageTablePage] = {}
        self.anon_rss = 0
        self.file_rss = 0
        self.mm_users = 1
        # swapoff's list (init_mm.mmlist): INIT_LIST_HEAD at mm_init, so list_empty() until
        # something adds it; its *position* is what matters, see copy_one_pte.
        self.mmlist = ListHead(self)
        # Ours: the value each address must read back (target.mm.ghost, reference I10).
        self.ghost: dict[int, int] = {}
        self.ghost_unmaps: dict[int, int] = {}
        # Ours: the page-level layout the mm's system calls must have left, address ->
        # (writable, locked); maintained by the specification in stress/spec.py.
        self.ghost_layout: dict[int, tuple[bool, bool]] = {}

    def __repr__(self) -> str:
        return f"<mm {self.name}{' FREED' if self.freed else ''}>"

    def find_vma(self, addr: int) -> VmArea | None:
        for vma in self.mmap:
            if vma.vm_start <= addr < vma.vm_end:
                return vma
        return None

    def pte_alloc(self, addr: int) -> PageTablePage:
        """``pte_alloc_map``: the page-table page covering ``addr``, allocated if missing
        (allocation of page tables cannot fail in the model)."""
        table = self.pte_table(addr)
        assert table is not None  # harness: alloc=True always gives one
        return table

    def pte_table(self, addr: int, alloc: bool = True) -> PageTablePage | None:
        """``pte_alloc_map``/``pte_offset_map``: the page-table page covering ``addr``.

        Allocating one is ``__pte_alloc`` -> ``pte_alloc_one(GFP_KERNEL|__GFP_REPEAT)``, which
        may sleep: ``might_sleep`` (reference I9) catches a caller that holds a spinlock."""
        idx = addr // PTRS_PER_PTE
        table = self.pgtables.get(idx)
        if table is None and alloc:
            might_sleep("pte_alloc_one(GFP_KERNEL)")
            table = PageTablePage(self, idx)
            self.pgtables[idx] = table
        return table
