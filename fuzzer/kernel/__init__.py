"""The kernel model: one module per kernel mechanism, as mm/ has one file per mechanism.

The scheduler (fuzzer/scheduler/) and the search (fuzzer/search/) drive it; nothing here
imports them. What differs between kernel versions is a switch of ``variants.Switches``,
read where the behaviour differs (``k.sw.<switch>``): grep the switch name to find every
place a version changes. Kernel source files below are those of v6.1 unless a version is
named; v5.15 and v5.16 keep migrate_vma in mm/migrate.c.

mechanism                          module                kernel source it follows
---------------------------------  --------------------  -----------------------------------
state: page, vma, mm, pte kinds    state.py              include/linux/mm_types.h
  and Kernel (their composition)                         (struct page, vm_area_struct,
                                                         mm_struct)
page allocation, get/put_page      page_alloc.py         mm/page_alloc.c, include/linux/mm.h,
                                                         mm/memremap.c
page lock                          page_lock.py          mm/filemap.c (folio_lock,
                                                         folio_unlock, folio_wait_locked)
page-table lock, mmap lock         locks.py              include/linux/mm.h (pte_lockptr),
                                                         include/linux/mmap_lock.h
TLB shootdown                      tlb.py                arch/x86/mm/tlb.c (flush_tlb_range)
LRU, per-CPU add batches and       lru.py                mm/swap.c (folio_add_lru,
  lru_add_drain_all's per-CPU work                       lru_add_drain,
                                                         __lru_add_drain_all), mm/vmscan.c
                                                         (folio_isolate_lru)
swap slots                         swap.py               mm/swapfile.c
mapcount, rmap walk, audit log     rmap.py               mm/rmap.c
transparent huge pages (split)     huge_memory.py        mm/huge_memory.c
                                                         (split_huge_page_to_list)
migrate_vma: struct, flags, setup  migrate_vma.py        mm/migrate_device.c
                                                         (migrate_vma_setup)
migrate_vma: collect               collect.py            mm/migrate_device.c
                                                         (migrate_vma_collect,
                                                         migrate_vma_collect_pmd)
migrate_vma: check, prepare, unmap unmap.py              mm/migrate_device.c
                                                         (migrate_vma_check_page,
                                                         migrate_device_unmap); prepare:
                                                         mm/migrate.c before ab09243aa95a
migration entries                  migration_entries.py  mm/rmap.c (try_to_migrate),
                                                         mm/migrate.c (remove_migration_ptes)
migrate_vma: pages (the move)      move.py               mm/migrate_device.c
                                                         (migrate_vma_pages,
                                                         migrate_vma_insert_page)
migrate_vma: finalize              finalize.py           mm/migrate_device.c
                                                         (migrate_vma_finalize)
migration by pfn (no vma walk)     migrate_device_pfn.py mm/migrate_device.c
                                                         (migrate_device_range), lib/test_hmm.c
                                                         (dmirror_device_evict_chunk)
hmm_range_fault (a driver's fault) hmm.py                mm/hmm.c (hmm_range_fault,
                                                         hmm_vma_handle_pte)
CPU access and page faults         fault.py              mm/memory.c (handle_pte_fault,
                                                         do_anonymous_page, do_wp_page,
                                                         do_swap_page), mm/shmem.c,
                                                         mm/migrate.c (migration_entry_wait)
GUP pins and get_user_pages_fast   gup.py                mm/gup.c
compaction's isolation             compaction.py         mm/compaction.c
                                                         (isolate_migratepages_block)
reclaim                            reclaim.py            mm/vmscan.c (shrink_folio_list)
MADV_DONTNEED                      zap.py                mm/madvise.c, mm/memory.c
                                                         (zap_pte_range, zap_huge_pmd)
MADV_FREE and lazyfree discard     lazyfree.py           mm/madvise.c
                                                         (madvise_free_pte_range),
                                                         mm/rmap.c (try_to_unmap_one)
the refcount freeze                page_ref.py           include/linux/page_ref.h
                                                         (folio_ref_freeze, unfreeze)
a holder's path (leak titles)      trail.py              (the model's own: page_owner /
                                                         ref_tracker's idea, per decision)
fork                               fork.py               kernel/fork.c (dup_mmap),
                                                         mm/memory.c (copy_page_range)
the device driver (dmirror)        driver.py             lib/test_hmm.c
kernel versions as switches        variants.py           (the commits each switch names)

So "what does collect do on 6.12": collect.py, with the switches variants.py sets for the
version.
"""

# Kernel's mechanisms (page_alloc.py, ...) import state's data classes, and state imports
# them to compose Kernel: loading state first keeps that order whichever module a caller
# imports first.
from . import state  # noqa: F401
