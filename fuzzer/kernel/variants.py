"""Variants: named presets of behaviour switches.

A switch is one kernel behaviour that changed between the versions the model names. A variant
is a preset of switches; users define their own (``base+switch`` / ``base-switch`` strings or a
JSON object) without touching the engine, and bisection walks single switches.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace


class VariantError(ValueError):
    """An unknown variant or switch name, or a malformed variant spec."""


@dataclass(frozen=True)
class Switches:
    # MIGRATE_PFN_LOCKED and migrate_vma_prepare(): collect keeps pages whose trylock lost
    # and prepare retries them (removed by ab09243aa95a, v5.16: the seed patch).
    pfn_locked: bool = False
    # collect flushes the TLB before dropping the PTL (60bae7370896, v6.0).
    flush_under_ptl: bool = False
    # collect moves a dirty pte's dirty bit to the page (fd35ca3d12cc, v6.0).
    dirty_to_page: bool = False
    # migration_entry_wait takes a temporary page reference until queued (gone in ffa65753c431).
    wait_takes_ref: bool = True
    # device-private fault rechecks the pte under the PTL, pins the page and passes
    # fault_page to migrate_vma (16ce101db85d, v6.1).
    dp_fault_pins: bool = False
    # collect locks pages with a blocking lock_page() in address order instead of trylock
    # (dropping the PTL to sleep): what the prepare comment warns against ("2 concurrent
    # migration where each are waiting on each other page lock"); reconstructed, not a release.
    blocking_lock: bool = False
    # check_page counts references on device-private pages instead of always passing (v5.17+).
    dp_check_refs: bool = False
    # free device-private pages have refcount 0, not 1 (ef233450898f, v6.1).
    dp_idle_zero: bool = False
    # collect's THP path drops the reference it took when the head's trylock fails. No
    # kernel does: upstream returns migrate_vma_collect_skip() with the reference held (a
    # leak; kernel-model.md section 4). A hypothetical fix, off in every preset.
    thp_skip_put: bool = False
    # do_swap_page's device-private branch takes a reference and trylocks the device folio;
    # a failed trylock drops the reference and returns so the fault is retried: a spin
    # (1afaeb8293c9 "Trylock device page in do_swap_page", ~v6.15).
    dp_fault_trylock: bool = False
    # ... and waits for the device folio's lock instead of spinning, so a CPU stuck in the
    # fault no longer starves lru_add_drain_all's per-CPU work (b570f37a2ce4, 2026).
    dp_fault_waits: bool = False
    # collect clears an anon-exclusive pte with ptep_clear_flush (a flush of that address
    # under the PTL) and, when page_try_share_anon_rmap fails (the page may be GUP-pinned),
    # puts the pte back and refuses the page: a pinned exclusive page never gets a
    # migration entry (6c287605fd56, v5.19, "remember exclusively mapped anonymous pages
    # with PG_anon_exclusive").
    try_share_anon: bool = False
    # migration entries carry the pte's dirty (and young) bit and remove_migration_pte puts
    # it back on the restored pte (2e3468778dbe, v6.1, "remember young/dirty bit for page
    # migrations"); without it a restored pte is clean.
    migration_entry_dirty: bool = False
    # finalize puts dst on the LRU (folio_add_lru) before remove_migration_ptes and drops
    # src with folio_put, so a migrated-away src is freed instead of going through the LRU
    # (v6.13 "don't add folio to be freed to LRU in migrate_device_finalize()"; in 6.1.192's
    # and 6.12.117's source as a stable backport).
    finalize_lru_first: bool = False
    # migrate_vma_pages: a swapcache anon page bound for device memory is taken out of the
    # swap cache with folio_free_swap() instead of being refused (6.12.117 and mainline).
    free_swap_to_device: bool = False
    # ... and the mapping is read again after folio_free_swap() (6.12.117's source, a
    # stable fix; not in the mainline text the `mainline` preset follows: H3).
    refresh_mapping: bool = False
    # folio_migrate_mapping's expected count comes from folio_expected_ref_count() (the
    # folio's own swapcache flag) plus 1, not from the mapping argument
    # (86ebd50224c0, v6.16, backported to 6.12.y).
    expected_ref_count: bool = False
    # collect's pte loop splits a pte-mapped large folio itself: pte_unmap_unlock,
    # migrate_vma_split_folio (folio_get + a blocking folio_lock + split_folio), then
    # "goto again"; on failure the TLB is flushed only after the PTL was dropped
    # (device-private THP series, late 2025; hypothesis H2).
    collect_split_folio: bool = False
    # collect's THP branch: "if (WARN_ON_ONCE(fault_folio == folio)) return
    # migrate_vma_collect_skip()" after folio_get, keeping the reference (~v6.15).
    thp_fault_skip: bool = False
    # the device-private THP series (v6.19): the THP branch trylocks the folio under the
    # pmd lock and drops its reference when the trylock fails (the 6.1-6.18 leak gone).
    thp_collect_locked: bool = False
    # collect_split_folio with the large folio's reference taken before pte_unmap_unlock
    # (as the THP branch does: folio_get, then spin_unlock). No kernel does: mainline takes
    # it in migrate_vma_split_folio after the unlock (a use-after-free window,
    # bench/results/hypotheses.md). A hypothetical fix, off in every preset.
    split_folio_get_first: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {f.name: getattr(self, f.name) for f in fields(self)}



SWITCH_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Switches))

SWITCH_DOCS: dict[str, str] = {
    "pfn_locked": "MIGRATE_PFN_LOCKED + migrate_vma_prepare (before ab09243aa95a)",
    "flush_under_ptl": "collect flushes the TLB while holding the PTL (60bae7370896)",
    "dirty_to_page": "collect copies the pte dirty bit to the page (fd35ca3d12cc)",
    "wait_takes_ref": "migration_entry_wait takes a temporary reference (before ffa65753c431)",
    "dp_fault_pins": "device-private fault rechecks the pte and pins the page (16ce101db85d)",
    "blocking_lock": "collect locks pages with a blocking lock_page (what trylock avoids)",
    "dp_check_refs": "check_page counts device-private references (v5.17+)",
    "dp_idle_zero": "free device-private pages have refcount 0 (ef233450898f)",
    "thp_skip_put": "collect's THP path puts its reference when trylock fails (hypothetical "
                    "fix; none upstream)",
    "dp_fault_trylock": "device-private fault trylocks the device folio and retries on "
                        "failure (1afaeb8293c9)",
    "dp_fault_waits": "device-private fault waits for the folio lock instead of spinning "
                      "(b570f37a2ce4)",
    "try_share_anon": "collect flushes an anon-exclusive pte and refuses a pinned page "
                      "(page_try_share_anon_rmap, 6c287605fd56)",
    "migration_entry_dirty": "migration entries carry the pte dirty bit back to the "
                             "restored pte (2e3468778dbe)",
    "finalize_lru_first": "finalize: folio_add_lru(dst) before remove_migration_ptes, "
                          "folio_put(src) (v6.13, stable backport)",
    "free_swap_to_device": "pages: folio_free_swap() a swapcache page bound for the device "
                           "instead of refusing it",
    "refresh_mapping": "pages: mapping read again after folio_free_swap() (fix of H3)",
    "expected_ref_count": "folio_migrate_mapping counts via folio_expected_ref_count() "
                          "(86ebd50224c0)",
    "collect_split_folio": "collect splits a pte-mapped large folio after dropping the PTL "
                           "(migrate_vma_split_folio, late 2025; H2)",
    "thp_fault_skip": "collect's THP branch skips the fault folio with its reference held "
                      "(WARN_ON_ONCE, ~v6.15)",
    "thp_collect_locked": "collect's THP branch trylocks under the pmd lock and drops the "
                          "reference on failure (device-private THP series, v6.19)",
    "split_folio_get_first": "collect takes the large folio's reference before dropping "
                             "the PTL (hypothetical fix of the split-folio use-after-free)",
}

_V515 = Switches(pfn_locked=True)
_V516 = Switches()
_V61 = Switches(flush_under_ptl=True, dirty_to_page=True, wait_takes_ref=False,
                dp_fault_pins=True, dp_check_refs=True, dp_idle_zero=True)
# 6.1.192 (Debian's linux-source-6.1): v6.1 plus what the source check found in it:
# collect's anon-exclusive flush and try-share refusal, dirty bits through migration
# entries, and finalize's LRU-first order (a stable backport). Read function by function
# in mm/migrate_device.c, mm/rmap.c (try_to_migrate_one, remove_migration_pte) and
# mm/memory.c (do_swap_page) of that tree.
_V6_1_192 = replace(_V61, try_share_anon=True, migration_entry_dirty=True,
                    finalize_lru_first=True)
# 6.12.117 (Debian's linux-source-6.12): 6.1.192 plus folio_free_swap for swapcache pages
# bound for the device, with the mapping refreshed after it (mm/migrate_device.c:745-754),
# and folio_expected_ref_count() in folio_migrate_mapping (mm/migrate.c:643).
_V6_12_117 = replace(_V6_1_192, free_swap_to_device=True, refresh_mapping=True,
                     expected_ref_count=True)
# mainline: torvalds/linux mm/migrate_device.c at 022a12deda53 (the code index's copy):
# page_pgmap(), migrate_device_pfns, the fault_folio handling of 1afaeb8293c9,
# folio_expected_ref_count() (v6.16) and migrate_vma_split_folio in the pte loop (patch
# 06/16 of Balbir Singh's device-private THP series, "handle partially mapped folios
# during collection", v7 posted 2025-10-01), but not yet that series' pmd-level collect
# (migrate_vma_collect_huge_pmd) nor b570f37a2ce4 (2026): late-2025 text. It does not
# refresh the mapping after folio_free_swap() (H3).
_MAINLINE = replace(_V6_12_117, refresh_mapping=False, collect_split_folio=True,
                    thp_fault_skip=True, dp_fault_trylock=True)

# name -> (switches, description); the description does not repeat the name (listings print
# "name: description")
VARIANTS: dict[str, tuple[Switches, str]] = {
    # v5.15 is mainline v5.15.0, not the 5.15.y LTS: the LTS backported 60bae7370896
    # (5.15.y flushes under the PTL), so stable users should read madvise-race's finding
    # as fixed there
    "v5.15": (_V515, "mainline v5.15.0 (not the 5.15.y LTS, which backported the flush "
                     "under the PTL, 60bae7370896): MIGRATE_PFN_LOCKED and prepare, flush "
                     "after the PTL, dirty bit dropped, waiters take a reference, DP faults "
                     "unpinned"),
    "v5.16": (_V516, "v5.15 with the seed patch (ab09243aa95a) applied, nothing else"),
    "v6.1": (_V61, "dirty bit to the page, flush under the PTL, waiters take no "
                   "reference, DP fault pins the page and passes fault_page"),
    "6.1.192": (_V6_1_192, "source: Debian linux-source-6.1 (6.1.192-3), checked function "
                           "by function; v6.1 plus collect's anon-exclusive flush and "
                           "pinned-page refusal, dirty bits through migration entries, "
                           "finalize's LRU-first order"),
    "6.12.117": (_V6_12_117, "source: Debian linux-source-6.12 (6.12.117-1~deb12u1); "
                             "6.1.192 plus folio_free_swap for swapcache pages bound for "
                             "the device (mapping refreshed) and folio_expected_ref_count"),
    "mainline": (_MAINLINE, "source: torvalds/linux mm/migrate_device.c at 022a12deda53 "
                            "(late 2025) as stored in the code index; 6.12.117 plus "
                            "migrate_vma_split_folio in collect (H2), the fault folio "
                            "locked by do_swap_page (1afaeb8293c9), the THP fault-folio "
                            "skip; mapping not refreshed after folio_free_swap (H3)"),
    "blocking-lock": (replace(_V61, blocking_lock=True),
                      "v6.1 with pages locked by a blocking lock_page in address order"),
}


def resolve_variant(spec: str | dict) -> tuple[str, Switches]:
    """Turn a variant spec into (canonical name, switches).

    Accepted: a preset name (``v5.16``); a preset with switch edits
    (``v5.16+dirty_to_page-wait_takes_ref``); a dict ``{"base": "v5.16", "dirty_to_page": true}``.
    """
    if isinstance(spec, dict):
        base = spec.get("base", "v5.16")
        if base not in VARIANTS:
            raise VariantError(f"unknown base variant {base!r} (known: {', '.join(VARIANTS)})")
        edits = {k: v for k, v in spec.items() if k != "base"}
        for k, v in edits.items():
            if k not in SWITCH_NAMES:
                raise VariantError(f"unknown switch {k!r} (known: {', '.join(SWITCH_NAMES)})")
            if not isinstance(v, bool):
                raise VariantError(f"switch {k!r} must be true or false")
        sw = replace(VARIANTS[base][0], **edits)
        return canonical_name(base, sw), sw
    if not isinstance(spec, str) or not spec:
        raise VariantError("a variant must be a name such as v5.16")
    # the base is the longest preset the spec starts with; the rest is [+-]switch edits
    base = max((p for p in VARIANTS if spec.startswith(p)), key=len, default=None)
    if base is None:
        raise VariantError(f"unknown variant {spec.split('+')[0]!r} "
                           f"(known: {', '.join(VARIANTS)})")
    rest = spec[len(base):]
    edits = re.findall(r"([+-])([^+-]*)", rest)
    if "".join(sign + name for sign, name in edits) != rest:
        raise VariantError(f"unknown variant {spec!r} (known: {', '.join(VARIANTS)})")
    for _, name in edits:
        if name not in SWITCH_NAMES:
            raise VariantError(f"unknown switch {name!r} in {spec!r} "
                               f"(known: {', '.join(SWITCH_NAMES)})")
    sw = replace(VARIANTS[base][0], **{name: sign == "+" for sign, name in edits})
    return canonical_name(base, sw), sw


def canonical_name(base: str, sw: Switches) -> str:
    """The shortest spelling: the base plus the switches that differ from it, sorted."""
    ref = VARIANTS[base][0]
    diffs = [("+" if getattr(sw, n) else "-") + n for n in SWITCH_NAMES
             if getattr(sw, n) != getattr(ref, n)]
    for name, (preset, _) in VARIANTS.items():
        if preset == sw:
            return name
    return base + "".join(sorted(diffs, key=lambda d: d[1:]))
