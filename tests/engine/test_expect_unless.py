"""A selftest's expectation holds on the kernels it was written for: ``unless`` names the
kernel changes (switches) under which it no longer does. dirty-page's "expects 0" reported
an UNEXPECTED_RESULT on every 6.12.117 campaign, where folio_free_swap lets its swapcache
pages migrate; it is now checked on v5.x/v6.1 only."""
import copy

import pytest

from migfuzz.corpus.builtin import get_scenario
from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.scenario import ScenarioError, validate
from migfuzz.fuzzer.scheduler.round_robin import RoundRobin


def _kinds(sc, variant):
    return {f.kind for f in execute(sc, variant, RoundRobin(), check=False).findings}


def _without_unless(sc):
    sc = copy.deepcopy(sc)
    for a in sc["actors"]:
        for c in a["program"]:
            c.get("expect", {}).pop("unless", None)
    return sc


def test_the_expectation_is_skipped_only_where_the_kernel_changed():
    sc = get_scenario("dirty-page")
    assert "UNEXPECTED_RESULT" not in _kinds(sc, "6.12.117")
    # the same check without "unless" fires there: the skip is what keeps it quiet
    assert "UNEXPECTED_RESULT" in _kinds(_without_unless(sc), "6.12.117")
    # with the switch off the expectation is checked again (and holds: 0 migrated); a
    # wrong expectation there fires, so it is checked, not skipped
    off = "6.12.117-free_swap_to_device"
    assert "UNEXPECTED_RESULT" not in _kinds(sc, off)
    wrong = copy.deepcopy(sc)
    for a in wrong["actors"]:
        for c in a["program"]:
            if "expect" in c:
                c["expect"]["migrated"] = 2
    assert "UNEXPECTED_RESULT" in _kinds(wrong, off)
    assert "UNEXPECTED_RESULT" not in _kinds(wrong, "6.12.117")


@pytest.mark.parametrize("bad", [["no_such_switch"], "free_swap_to_device", [1]])
def test_unless_names_switches(bad):
    sc = copy.deepcopy(get_scenario("dirty-page"))
    for a in sc["actors"]:
        for c in a["program"]:
            if "expect" in c:
                c["expect"]["unless"] = bad
    with pytest.raises(ScenarioError, match="'unless' must be a list of switch names"):
        validate(sc)
