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
}

_V515 = Switches(pfn_locked=True)
_V516 = Switches()
_V61 = Switches(flush_under_ptl=True, dirty_to_page=True, wait_takes_ref=False,
                dp_fault_pins=True, dp_check_refs=True, dp_idle_zero=True)

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
