"""Lock classes of the model and the documented lock order, copied from mm/rmap.c (2.6.17/18).

/*
 * Lock ordering in mm:
 *
 * inode->i_mutex	(while writing or truncating, not reading or faulting)
 *   inode->i_alloc_sem
 *
 * mm->mmap_sem
 *   page->flags PG_locked (lock_page)
 *     mapping->i_mmap_lock
 *       anon_vma->lock
 *         mm->page_table_lock or pte_lock
 *           zone->lru_lock (in mark_page_accessed, isolate_lru_page)
 *           swap_lock (in swap_duplicate, swap_info_get)
 *             mmlist_lock (in mmput, drain_mmlist and others)
 *             mapping->private_lock (in __set_page_dirty_buffers)
 *             inode_lock (in set_page_dirty's __mark_inode_dirty)
 *               sb_lock (within inode_lock in fs/fs-writeback.c)
 *               mapping->tree_lock (widely used, in set_page_dirty,
 *                         in arch-dependent flush_dcache_mmap_lock,
 *                         within inode_lock in __sync_single_inode)
 */

The model has no files, so i_mutex, i_mmap_lock, private_lock, inode_lock and sb_lock never
appear; the classes below keep the tree's shape for the ones it does take. Orders the code uses
but the comment does not spell out (reference A.1) are consistent with it: anon_vma_prepare
nests page_table_lock in anon_vma->lock; fork nests the source ptl in the destination ptl
(``spin_lock_nested(SINGLE_DEPTH_NESTING)``) and the child's mmap_sem in the parent's
(``down_write_nested``); zap takes the page lock under ptl and swap_lock only by trylock.

The page lock is a lock class here although 2006 lockdep did not track it: reference I8 asks
that a blocking lock_page never happens under ptl / anon_vma->lock / tree_lock / lru_lock,
and this makes lockdep check exactly that. Migration holds two page locks at once (old, then
new); the new page is private to the migrator, so that acquisition is annotated as subclass 1,
as ``lock_page_nested`` would be.
"""

from __future__ import annotations

from target.kernel import LockClass, declare_order

MMAP_SEM = LockClass("mm->mmap_sem", sleeping=True)
PG_LOCKED = LockClass("PG_locked", sleeping=True)
ANON_VMA_LOCK = LockClass("anon_vma->lock", sleeping=False)
PAGE_TABLE_LOCK = LockClass("mm->page_table_lock", sleeping=False)
PTL = LockClass("pte_lock", sleeping=False)
LRU_LOCK = LockClass("zone->lru_lock", sleeping=False)
SWAP_LOCK = LockClass("swap_lock", sleeping=False)
MMLIST_LOCK = LockClass("mmlist_lock", sleeping=False)
TREE_LOCK = LockClass("mapping->tree_lock", sleeping=False)

SINGLE_DEPTH_NESTING = 1

# The tree above as data: (class, [classes acquired inside it]).
LOCK_ORDER: list[tuple[str, list[object]]] = [
    (
        MMAP_SEM.name,
        [
            (
                PG_LOCKED.name,
                [
                    (
                        ANON_VMA_LOCK.name,
                        [
                            (PAGE_TABLE_LOCK.name, []),
                            (
                                PTL.name,
                                [
                                    (LRU_LOCK.name, []),
                                    (
                                        SWAP_LOCK.name,
                                        [(MMLIST_LOCK.name, []), (TREE_LOCK.name, [])],
                                    ),
                                ],
                            ),
                        ],
                    )
                ],
            )
        ],
    )
]

declare_order(LOCK_ORDER)
