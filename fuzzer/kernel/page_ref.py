"""The refcount freeze (include/linux/page_ref.h: folio_ref_freeze, page_ref_unfreeze)
that a THP split (huge_memory.py) and reclaim's __remove_mapping (reclaim.py) rely on.
"""
from __future__ import annotations

from .state import Kernel, Page


def ref_freeze(k: Kernel, page: Page, keep: int, site: str, own: int = 0) -> int:
    """The references a refcount freeze takes away: folio_ref_freeze() sets the count to 0
    and the user then sets it to what it computed (page_ref_unfreeze(), or nothing: the
    page is freed frozen), whatever references existed. The kernel's freeze is a cmpxchg
    on the expected count, so with the right expectation nothing is lost; a check that
    lets one more reference through (a miscounted extra_pins, expected count) freezes a
    page that still has another holder, and that holder's reference is gone: its later
    put_page underflows or frees a page still in use.

    Here: bring ``page`` down to ``keep`` references, keeping the running actor's own
    (up to ``own`` of them, its caller reference) and the mapping references ("map", up
    to the mapcount), dropping the others' latest first; each one dropped is an audit row
    "-<owner>" at ``site``, so the page's audit log shows who lost a reference where.
    Returns how many were dropped (0 whenever the count was already ``keep``: then nothing
    at all is touched)."""
    excess = page.refcount - keep
    if excess <= 0:
        return 0
    takers = page.takers           # (actor, step) per reference, index for index
    who = k.who
    mine, maps, others = [], [], []
    order = 0
    for owner, sites in page.refs.items():
        tk = takers.get(owner, ())
        for i in range(len(sites)):
            actor, step = tk[i] if i < len(tk) else ("?", -1)
            order += 1
            ent = (step, order, owner, i)
            if owner == "map":
                maps.append(ent)
            elif actor == who:
                mine.append(ent)
            else:
                others.append(ent)
    # dropped first: the other holders' references, latest taken first; then mapping
    # references beyond the mapcount; then the running actor's beyond ``own``; only then
    # (a count off in the other direction too) the kept ones
    maps.sort(reverse=True)
    mine.sort(reverse=True)
    spare_maps = max(0, len(maps) - page.mapcount)
    spare_mine = max(0, len(mine) - own)
    victims = (sorted(others, reverse=True) + maps[:spare_maps] + mine[:spare_mine]
               + maps[spare_maps:] + mine[spare_mine:])
    gone = victims[:excess]
    # remove by descending index per owner, so the indices of the others stay valid
    for _, _, owner, i in sorted(gone, key=lambda e: (e[2], -e[3])):
        del page.refs[owner][i]
        if i < len(takers.get(owner, ())):
            del takers[owner][i]
    for _, _, owner, _ in sorted(gone, key=lambda e: e[1]):
        page.refcount -= 1
        k._audit(site, page, "-" + owner)
    return len(gone)
