"""Reclaim of the pages behind a range, after mm/vmscan.c (shrink_page_list /
shrink_folio_list: isolate, lock, try_to_unmap into swap entries, free).
"""
from __future__ import annotations

from .compaction import _pages_mapped_at
from .page_ref import ref_freeze
from .lazyfree import discard
from .state import MM, PRESENT, SWAP, Kernel


def reclaim(k: Kernel, mm: MM, start: int, end: int):
    """shrink_page_list on the pages behind a range: isolate, trylock, add to swap, unmap
    (moving pte dirty bits to the page), write out dirty pages, and drop clean swapcache
    pages whose only references are the swap cache's and the isolation's.

    The drop is __remove_mapping(): folio_ref_freeze(folio, 1 + nr) (the isolation's
    reference and the swap cache's, 2 for a small page) is the refcount check below;
    once it succeeds the page's count stays 0 and the page is freed (free_unref_page_list)
    without any put_page. With the check right the model drops those two references by
    put (delete_from_swap_cache, then the isolation's at reclaim:free), the same end. If
    the check let a third reference through, the freeze took it too: the page is freed at
    the freeze (free site reclaim:drop) with every reference gone, and its other holder's
    later access (a pin's write and unpin, a fault's put) is a use after free."""
    yield ("reclaim:scan", ("mm", mm.name))
    k.lru_add_drain_all()
    for page in _pages_mapped_at(k, mm, start, end):
        yield ("reclaim:isolate", ("page", page.pfn))
        # the LRU scan only meets pages still on the LRU: one freed (or isolated) since the
        # range was looked up is simply not there
        if page.free or page.device or not k.isolate_lru_page(page, "reclaim:isolate"):
            continue
        yield ("reclaim:trylock", ("page", page.pfn))
        if not k.trylock(page, "reclaim:trylock"):
            k.putback_lru_page(page, "reclaim:putback")
            continue
        if page.mapping == "shmem":
            k.unlock(page, "reclaim:unlock")
            k.putback_lru_page(page, "reclaim:putback")
            continue
        if page.lazyfree:
            # MADV_FREE'd (lazyfree.py): discarded if still clean, else swap-backed again
            # and kept this round (try_to_unmap fails, the folio is activated)
            gone = yield from discard(k, page)
            if not gone or page.refcount != 1:     # folio_ref_freeze(folio, 1) fails
                k.unlock(page, "reclaim:unlock")
                k.putback_lru_page(page, "reclaim:putback")
                continue
            k.unlock(page, "reclaim:unlock")
            k.put(page, "isolate", "reclaim:free")
            continue
        if page.mapping is None:
            slot = k.swap_alloc(page.data)
            page.mapping = "swapcache"
            page.swap_slot = slot
            k.swapcache[slot] = page
            k.get(page, "swapcache", "reclaim:add_to_swap")
            page.dirty = True
        slot = page.swap_slot
        for tmm, vpn in k.rmap(page, (PRESENT,)):
            yield ("reclaim:unmap", (tmm.name, vpn))
            yield from k.lock_ptl(tmm, "reclaim:unmap")
            pte = tmm.pte(vpn)
            if pte[0] == PRESENT and pte[1] is page:
                k.flush_tlb_range(tmm, vpn, vpn + 1, "reclaim:unmap")
                if pte[3]:
                    page.dirty = True
                k.set_pte(tmm, vpn, (SWAP, slot, False, False))
                k.swap[slot][1] += 1
                k.map_dec(page, "reclaim:unmap")
                k.put(page, "map", "reclaim:unmap")
            k.unlock_ptl(tmm)
        if page.mapcount:
            k.branch("reclaim:still_mapped", page)
            k.unlock(page, "reclaim:unlock")
            k.putback_lru_page(page, "reclaim:putback")
            continue
        if page.dirty:
            yield ("reclaim:pageout", ("page", page.pfn))
            k.swap[slot][0] = page.data
            page.dirty = False
        if page.refcount != 2:          # __remove_mapping: isolation + swap cache only
            k.branch("reclaim:busy", page)
            k.unlock(page, "reclaim:unlock")
            k.putback_lru_page(page, "reclaim:putback")
            continue
        # the references the freeze took beyond the two it expects: 0 unless the check
        # above was weakened. The model's freeze is that check; the drop is the next step,
        # and a reference taken in between (a swap-in's lookup, compaction's get: 22 of
        # 17,633 unmutated executions) is one the kernel's frozen count would refuse
        # (get_page_unless_zero): the model lets it through and its holder keeps the
        # page, as before the freeze was modelled
        extra = page.refcount - 2
        yield ("reclaim:drop", ("page", page.pfn))
        if page.data != k.swap[slot][0]:
            k.report("LOST_WRITE",
                     "LOST_WRITE: reclaim dropped a clean swapcache page whose data differs "
                     "from swap (its dirty bit was lost)", ("reclaim:drop_clean",),
                     pfn=page.pfn)
        k.branch("reclaim:dropped", page)
        del k.swapcache[slot]
        page.mapping = None
        page.swap_slot = None
        if extra > 0:
            # only a weakened check gets here: the freeze took every reference, the
            # unexpected holder's included (ref_freeze audits each as "-<owner>" at the
            # drop), and the page is freed frozen, unlocked first (folio_unlock comes
            # before the free in shrink_folio_list)
            ref_freeze(k, page, 0, "reclaim:drop")
            k.unlock(page, "reclaim:unlock")
            k._free(page, "reclaim:drop")
        else:
            k.put(page, "swapcache", "reclaim:delete_from_swap_cache")
            k.unlock(page, "reclaim:unlock")
            k.put(page, "isolate", "reclaim:free")
        if k.swap[slot][1] <= 0:
            del k.swap[slot]
