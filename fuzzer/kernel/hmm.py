"""hmm_range_fault(): a device driver snapshots (and faults in) a range of a process's
memory for its own page table, after mm/hmm.c (hmm_range_fault, hmm_vma_walk_pmd,
hmm_vma_handle_pte, hmm_vma_fault) as lib/test_hmm.c's dmirror_range_fault calls it
(HMM_PFN_REQ_FAULT, plus HMM_PFN_REQ_WRITE for a write).

What matters to the races here is where it loops: every fault it takes returns -EBUSY and
the walk starts again from that address, all inside the kernel with the mmap lock held
and no cond_resched. A device-private fault that loses its trylock (1afaeb8293c9) is
therefore retried without a schedule point: the CPU spins, and per-CPU work queued on it
(lru_add_drain_all's) never runs. b570f37a2ce4's starvation.
"""
from __future__ import annotations

from .fault import handle_mm_fault, migration_entry_wait, spin_retry
from .state import DEVICE, MIGRATION, MM, PRESENT, ZERO, Kernel


def hmm_range_fault(k: Kernel, actor, mm: MM, start: int, end: int, write: bool,
                    owner: str | None):
    """dmirror_range_fault: mmap_read_lock, then hmm_range_fault over [start, end).

    Per address (hmm_vma_handle_pte, reading the pte without the PTL): a present pte
    (writable for a write) or, for a read, the zero page is a snapshot; a device-private
    entry of ``owner`` (range->dev_private_owner) is returned as the device pfn; a
    migration entry sleeps in migration_entry_wait and walks again; anything else faults
    (hmm_vma_fault -> handle_mm_fault) and walks again (-EBUSY). Returns False for
    -EFAULT (no vma, or a write to a read-only one)."""
    yield ("hmm:mmap_lock", ("mmap", mm.name))
    yield from k.mmap_read_lock(mm, "hmm:mmap_lock")
    ok = True
    vpn = start
    while vpn < end:
        yield ("hmm:walk", (mm.name, vpn))
        vma = mm.vma_at(vpn)
        if vma is None or vma.prot == "none" or (write and not vma.writable):
            k.branch("hmm:efault")
            ok = False
            break
        pte = mm.walk(vpn) if mm.pmds else mm.pte(vpn)
        kind = pte[0]
        if (kind == PRESENT and (pte[2] or not write)) or (kind == ZERO and not write):
            vpn += 1
            continue
        if kind == DEVICE and owner is not None and pte[1].device == owner:
            k.branch("hmm:device_pfn")        # the caller's own device memory: no fault
            vpn += 1
            continue
        if kind == MIGRATION:
            yield from migration_entry_wait(k, mm, vpn)
            continue
        k.branch("hmm:fault")
        faulted, spin = yield from handle_mm_fault(k, actor, mm, vpn, write)
        if not faulted:
            k.branch("hmm:efault")
            ok = False
            break
        if spin is not None:
            # hmm_range_fault's do { walk_page_range } while (-EBUSY): no schedule point
            yield from spin_retry(k, actor, spin, preemptible=False)
    k.mmap_read_unlock(mm)
    return ok
