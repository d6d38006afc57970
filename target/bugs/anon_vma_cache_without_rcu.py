"""anon-vma-cache-without-rcu: anon_vma_cachep is created without SLAB_DESTROY_BY_RCU.

Hugh Dickins's rmaplock series (2.6.8.1-mm3, 2004; mainline 2.6.9) removed page_map_lock in
patch 2/5, leaving ``page_referenced_anon`` and ``try_to_unmap_anon`` to take
``anon_vma->lock`` through ``page->mapping`` with no lock and no reference on the anon_vma;
patch 3/5, "rmaplock: SLAB_DESTROY_BY_RCU" (77631565ae40), explains the hazard of that
state: a page_mapped test cannot stop the page being unmapped and its anon_vma freed the
instant after; taking the lock of a freed anon_vma is harmless only while the memory is still
an anon_vma, so the patch adds the flag that keeps it one until RCU readers are done.
This bug is the code between the two patches: ``page_lock_anon_vma`` as 2.6.17 has it
(reference A.5), over a cache without the flag, where ``kmem_cache_free`` may give the
memory to other use at once:

    kswapd (shrink_page_list)               exit_mmap
    page_referenced: page_mapped
    page_lock_anon_vma: rcu_read_lock
      page_mapped: yes
                                            zap_pte_range: page_remove_rmap (mapcount 0)
                                            free_pgtables: anon_vma_unlink: anon_vma_free
      spin_lock(&anon_vma->lock)            // use-after-free

No lazy window is needed: reclaim holds its isolation reference, so the page outlives the
exit whatever the mmu_gather does; a reuse of the freed anon_vma before the spin_lock
(``anon_vma_reuse``) hides it instead, as the lock is then a live object's. Breaks A.9's
guarantee to RCU readers. Detected as a KASAN use-after-free on the anon_vma's lock.
"""

from __future__ import annotations

from target.kernel import kfree
from target.mm.types import AnonVma
from target.mm.world import W

from ._catalog import HistoricalBug


def anon_vma_free(anon_vma: AnonVma) -> None:
    w = W()
    w.anon_vma_cachep.pop(anon_vma.id, None)
    kfree(anon_vma, destroy_by_rcu=False)  # BUG: a cache without SLAB_DESTROY_BY_RCU
    w.anon_vma_free_objs.append(anon_vma)


BUG = HistoricalBug(
    name="anon-vma-cache-without-rcu",
    year=2004,
    reference="Hugh Dickins, rmaplock 2/5 (page_map_lock removed) before 3/5 "
    "\"rmaplock: SLAB_DESTROY_BY_RCU\" (77631565ae40, 2.6.8.1-mm3, mainline 2.6.9); the "
    "flag's purpose restated in d9d332e0874f (2008)",
    breaks="A.9: an anon_vma freed under an RCU reader stays an anon_vma",
    summary="anon_vma_cachep without SLAB_DESTROY_BY_RCU: page_lock_anon_vma locks freed memory",
    expected_kinds=("use-after-free",),
    scenario="reclaim-vs-exit",
    strategy="random",
    overrides={"target.mm.rmap:anon_vma_free": anon_vma_free},
    depth=1,
)
