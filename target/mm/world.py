"""The simulated machine: nodes and zones, mem_map, the swap device and swapper_space.

The kernel keeps these as globals (``mem_map``, ``swap_info[]``, ``swapper_space``,
``init_mm.mmlist``); the model keeps them in one :class:`World`, installed as ``W`` for the
execution that uses it, so every execution starts from a fresh machine.

Simplifications (docs/model.md lists them all): one zone per node; no per-cpu free page lists;
pagevecs and mmu_gather batches only when the world config asks for them (otherwise an LRU add
or a zap's release happens at once); one swap device with a handful of slots; swap I/O
synchronous or completed by an interrupt actor (page_io.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from target.kernel import TracedWaitBit, spinlock_t

from .locking import LRU_LOCK, MMLIST_LOCK, SWAP_LOCK, TREE_LOCK
from .types import AnonVma, ListHead, MmStruct, Page, PG_reserved, TracedPage, VmArea


class Zone:
    """``struct zone`` (one per node here): LRU lists under lru_lock, and the free list.

    Invariants:
        A page is on at most one of ``active_list``, ``inactive_list`` (with PG_lru set) or
        ``free_list`` (count 0); ``page.lru`` names that list or a private isolation list.
    """

    def __init__(self, nid: int) -> None:
        self.nid = nid
        self.lru_lock = spinlock_t(LRU_LOCK, f"node{nid}.lru_lock")
        self.active_list: list[Page] = []
        self.inactive_list: list[Page] = []
        self.free_list: list[Page] = []


class AddressSpace:
    """``struct address_space``: only ``swapper_space`` exists in the model (no files).

    Invariant: ``page_tree[entry] is page`` iff page is in the swap cache for that entry.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.tree_lock = spinlock_t(TREE_LOCK, f"{name}.tree_lock")
        self.page_tree: dict[int, Page] = {}

    def __repr__(self) -> str:
        return f"<address_space {self.name}>"


@dataclass
class SwapSlot:
    """Ghost content of a swap slot: what swap_writepage wrote there."""

    data: int = 0


@dataclass
class WorldConfig:
    nodes: int = 2
    pages_per_node: int = 12
    swap_slots: int = 8
    config_swap: bool = True  # CONFIG_SWAP: MIGRATION no longer depends on it (V2 5/5)
    # CONFIG_HIGHPTE (i386 with highmem): page-table pages live in highmem, so every
    # pte_offset_map is a kmap_atomic and every pte_unmap a kunmap_atomic of that pointer.
    # Checked as CONFIG_DEBUG_HIGHMEM checks them (target.mm.pgtable). Off: pte_unmap is empty.
    config_highpte: bool = False
    # anon_vma_cachep is SLAB_DESTROY_BY_RCU: a freed anon_vma may be handed out again at once
    # as a new, live anon_vma (reference A.9), and only RCU readers are promised it stays an
    # anon_vma. "never": every anon_vma_alloc gets fresh memory, so every stale access is a
    # KASAN finding. "lifo": the most recently freed object comes back whenever there is one
    # (the slab's per-cpu array is LIFO). "seeded": each allocation that finds freed objects
    # chooses fresh memory or one of them, drawn from ``slab_seed``; the schedule decides
    # whether a free has happened by then, so campaigns explore both.
    anon_vma_reuse: str = "never"
    slab_seed: int = 0
    # Swap I/O (target.mm.page_io): 0 synchronous; N > 0 completed by the execution's
    # interrupt actor, whenever the scheduler runs it and at the latest N scheduling points
    # after the submission (IO_DELAY_UNBOUNDED: no bound below the run's step limit).
    swap_io_delay: int = 0
    # Laziness of references (issue 14). pagevec_size: pages a CPU's lru_add pagevec holds
    # before __pagevec_lru_add (PAGEVEC_SIZE = 14 in the kernel); tlb_batch: pages an
    # mmu_gather holds before tlb_flush_mmu frees them (FREE_PTE_NR in the kernel; 1 is
    # tlb_fast_mode, a uniprocessor's). 0 or 1: prompt, an add or a zap's put happens at once.
    pagevec_size: int = 0
    tlb_batch: int = 0
    # Swap readahead (mm/memory.c swapin_readahead): a swap-in miss reads the used slots of
    # its aligned cluster of 1 << page_cluster into the swap cache (the kernel's default is
    # 3 with more than 16 MB of memory; /proc/sys/vm/page-cluster). 0: no readahead, the
    # world every earlier reproducer was recorded in.
    page_cluster: int = 0


IO_DELAY_UNBOUNDED = 1 << 30

MAX_PAGE_CLUSTER = 3
"""The bound of ``WorldConfig.page_cluster``: 8-slot clusters, the kernel's default."""


ANON_VMA_REUSE = ("never", "lifo", "seeded")


@dataclass
class World:
    """The machine one execution runs on."""

    config: WorldConfig
    zones: list[Zone] = field(default_factory=list)
    mem_map: list[Page] = field(default_factory=list)
    zero_page: Page | None = None
    swap_lock: spinlock_t = field(default_factory=lambda: spinlock_t(SWAP_LOCK, "swap_lock"))
    swap_map: list[int] = field(default_factory=list)  # slot 0 is the header, never used
    swap_slots: list[SwapSlot] = field(default_factory=list)
    swapper_space: AddressSpace = field(default_factory=lambda: AddressSpace("swapper_space"))
    mmlist_lock: spinlock_t = field(
        default_factory=lambda: spinlock_t(MMLIST_LOCK, "mmlist_lock")
    )
    mmlist: ListHead = field(default_factory=ListHead)  # init_mm.mmlist, a bare head
    # SWP_WRITEOK of the one swap area: cleared by swapoff while it empties the area, so
    # get_swap_page allocates nothing from it meanwhile.
    swap_writeok: bool = True
    # CONFIG_HIGHPTE: the pte mapped in each (cpu, km_type) kmap_atomic slot (pgtable.py).
    kmap_slots: dict[tuple[int, int], Any] = field(default_factory=dict)
    pending_writeback: list[Page] = field(default_factory=list)  # synchronous I/O in flight
    # Allocations that found their node empty (ours, for the oracles: a call that failed for
    # want of memory at some step may find memory free again when it is checked, since
    # pagevecs, mmu_gather and I/O completions free pages late).
    alloc_failures: int = 0
    # Asynchronous I/O in flight, oldest first: page_io.Bio records (page_io imports this
    # module, hence Any), completed by the interrupt actor.
    bio_queue: list[Any] = field(default_factory=list)
    # anon_vma_cachep's live objects (what /proc/slabinfo counts as active), by anon_vma id:
    # anon_vma_alloc adds, anon_vma_free removes. Quiescence checks that each one is reachable
    # from a live vma (stress/oracles.py): a leaked anon_vma breaks no other invariant.
    anon_vma_cachep: dict[int, AnonVma] = field(default_factory=dict)
    # anon_vma_cachep's free objects, most recently freed last: what anon_vma_alloc may hand
    # out again (WorldConfig.anon_vma_reuse). Python objects keep their identity, so a stale
    # page->mapping that points at one sees the new anon_vma, as the kernel's pointer would.
    anon_vma_free_objs: list[AnonVma] = field(default_factory=list)
    slab_rng: random.Random = field(default_factory=lambda: random.Random(0))
    # vm_area_cachep's live objects, by id(): vm_area_alloc adds, vm_area_free removes; each
    # must be on its live mm's list at quiescence (a vma off every list is never freed).
    vm_area_cachep: dict[int, VmArea] = field(default_factory=dict)
    # mm_cachep's live mms, by id(): allocate_mm (fork) and the scenario's setup add, mmput's
    # free removes; at quiescence each is a live process's mm with one mm_users per thread.
    mm_cachep: dict[int, MmStruct] = field(default_factory=dict)
    processes: dict[int, Any] = field(default_factory=dict)  # pid -> fork.Process
    # Per-CPU lru_add_pvecs / lru_add_active_pvecs (mm/swap.c), by task id: a task is a CPU.
    lru_add_pvecs: dict[int, list[Page]] = field(default_factory=dict)
    lru_add_active_pvecs: dict[int, list[Page]] = field(default_factory=dict)

    @classmethod
    def create(cls, config: WorldConfig | None = None) -> World:
        config = config or WorldConfig()
        if config.anon_vma_reuse not in ANON_VMA_REUSE:
            raise ValueError(f"anon_vma_reuse must be one of {ANON_VMA_REUSE}, "
                             f"not {config.anon_vma_reuse!r}")
        w = cls(config)
        w.slab_rng = random.Random(f"slab:{config.slab_seed}")
        # anon_vma ids name their locks in traces and reports: number them per machine, so
        # that an execution's trace does not depend on what ran before it in this process.
        AnonVma._ids = 0
        pfn = 0
        for nid in range(config.nodes):
            zone = Zone(nid)
            w.zones.append(zone)
            for _ in range(config.pages_per_node):
                page = Page(pfn, nid)
                page.lru = zone.free_list
                zone.free_list.append(page)
                w.mem_map.append(page)
                pfn += 1
        # ZERO_PAGE: reserved, never freed; read faults on untouched anon memory map it.
        zp = Page(pfn, 0)
        zp.flags = PG_reserved
        zp._count = 1 << 20
        w.mem_map.append(zp)
        w.zero_page = zp
        w.swap_map = [0] * (config.swap_slots + 1 if config.config_swap else 0)
        w.swap_slots = [SwapSlot() for _ in w.swap_map]
        return w

    def trace_page_accesses(self) -> None:
        """Make every page access of this machine a touch (:class:`~.types.TracedPage`):
        for DPOR, which must know all a step touches."""
        for page in self.mem_map:
            page.__class__ = TracedPage
            page.locked.__class__ = TracedWaitBit
            page.writeback.__class__ = TracedWaitBit


class _Current:
    """Holder for the world of the running execution (the kernel's globals)."""

    world: World | None = None


_CURRENT = _Current()


def set_world(world: World | None) -> None:
    _CURRENT.world = world


def W() -> World:
    world = _CURRENT.world
    if world is None:
        raise RuntimeError("no world installed: build one with World.create() and set_world()")
    return world
