"""Variants are presets of switches; users define their own without editing the engine."""
import pytest

from migfuzz.fuzzer.kernel.variants import SWITCH_NAMES, VARIANTS, VariantError, resolve_variant


def test_presets_match_the_kernel_versions():
    v515, v516, v61 = (VARIANTS[n][0] for n in ("v5.15", "v5.16", "v6.1"))
    assert v515.pfn_locked and not v516.pfn_locked          # the seed patch
    assert not v516.flush_under_ptl and v61.flush_under_ptl  # 60bae7370896
    assert not v516.dirty_to_page and v61.dirty_to_page      # fd35ca3d12cc
    assert v516.wait_takes_ref and not v61.wait_takes_ref    # ffa65753c431
    assert not v516.dp_fault_pins and v61.dp_fault_pins      # 16ce101db85d
    assert VARIANTS["blocking-lock"][0].blocking_lock
    assert set(SWITCH_NAMES) >= {"pfn_locked", "flush_under_ptl", "dirty_to_page",
                                 "wait_takes_ref", "dp_fault_pins", "blocking_lock"}


@pytest.mark.parametrize("spec,name,on,off", [
    ("v5.16", "v5.16", [], []),
    ("v5.16+dirty_to_page", "v5.16+dirty_to_page", ["dirty_to_page"], []),
    ("v6.1-flush_under_ptl+wait_takes_ref", "v6.1-flush_under_ptl+wait_takes_ref",
     ["wait_takes_ref"], ["flush_under_ptl"]),
    ({"base": "v6.1", "blocking_lock": True}, "blocking-lock", ["blocking_lock"], []),
    ("v5.15-pfn_locked", "v5.16", [], ["pfn_locked"]),
])
def test_user_defined_variants(spec, name, on, off):
    got, sw = resolve_variant(spec)
    assert got == name
    assert all(getattr(sw, s) for s in on) and not any(getattr(sw, s) for s in off)
    assert resolve_variant(got)[1] == sw          # the canonical name resolves back


@pytest.mark.parametrize("spec", ["v9", "v5.16+bogus", {"base": "v5.16", "x": True},
                                  {"base": "v5.16", "pfn_locked": "yes"}, "", 3])
def test_bad_variant_specs(spec):
    with pytest.raises(VariantError):
        resolve_variant(spec)
