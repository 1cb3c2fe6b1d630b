"""The refcount freeze (folio_ref_freeze / page_ref_unfreeze) at a THP split and at
reclaim's __remove_mapping (kernel/page_ref.py ref_freeze, used by huge_memory.py and reclaim.py).

The kernel's freeze sets the count to 0 and the user sets what it computed (or frees the
page frozen), whatever references there were: with a check that lets one reference too
many through, that reference's holder loses it. These tests apply the two bench mutants
that weaken those checks (bench/mutants/other.toml, issue 13) and require the damage to
show; and on the unmutated model they require the freeze never to take a reference, so
no execution changes."""
import tomllib
import types
from pathlib import Path

from migfuzz.corpus.builtin import get_scenario, scenario_names
from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.kernel import collect, huge_memory, reclaim
from migfuzz.fuzzer.kernel.variants import VARIANTS
from migfuzz.fuzzer.oracles import page_audit
from migfuzz.fuzzer.scheduler import RandomWalk, RoundRobin

ROOT = Path(__file__).resolve().parents[2]


def mutated(mid: str) -> types.ModuleType:
    """The module bench mutant ``mid`` edits, with its edit applied, loaded beside the
    real one (its relative imports resolve to the real package)."""
    for path in sorted((ROOT / "bench" / "mutants").glob("*.toml")):
        for m in tomllib.loads(path.read_text()).get("mutant", []):
            if m["id"] != mid:
                continue
            src = "\n" + (ROOT / m["file"]).read_text()
            assert src.count("\n" + m["old"]) == 1, f"{mid}: stale old text"
            src = src.replace("\n" + m["old"], "\n" + m["new"])[1:]
            mod = types.ModuleType("migfuzz.fuzzer.kernel._mutant_" + Path(m["file"]).stem)
            mod.__package__ = "migfuzz.fuzzer.kernel"
            exec(compile(src, m["file"], "exec"), mod.__dict__)
            return mod
    raise LookupError(mid)


# ---- split_huge_page ---------------------------------------------------------------------

# thp-collect-race with the split check weakened: the second migration's collect_pmd
# reference survives the check, the split's unfreeze takes it, and that migration's put
# after its own (failed) split attempt finds nothing to drop. Measured: 42 of the first 300
# random-walk seeds on v6.1 (first at seed 6); 120 keeps a margin.
SPLIT_BUDGET = 120


def split_findings(monkeypatch, budget=SPLIT_BUDGET):
    monkeypatch.setattr(collect, "split_huge_page",
                        mutated("split-refcount-weakened").split_huge_page)
    sc = get_scenario("thp-collect-race")
    for seed in range(budget):
        r = execute(sc, "v6.1", RandomWalk(seed), check=False)
        damage = [f for f in r.findings
                  if f.kind in ("REFCOUNT_UNDERFLOW", "USE_AFTER_FREE")]
        if damage:
            return r, damage
    return None, []


def test_split_with_an_extra_reference_takes_it(monkeypatch):
    r, damage = split_findings(monkeypatch)
    assert damage, "the weakened split check did no visible damage"
    assert damage[0].kind == "REFCOUNT_UNDERFLOW"
    assert damage[0].title.startswith("REFCOUNT_UNDERFLOW: collect_pmd:put_page dropped a "
                                      "migrate reference that nobody holds")
    head = r.kernel.pages[damage[0].detail["pfn"]]
    ops = [(row[2], row[3]) for row in page_audit(r.kernel, head.pfn)]
    # two migrations took a reference; the split took one of them away, not the
    # splitter's own (it drops its own at collect_pmd:put_page afterwards)
    assert ops.count(("collect_pmd:get_page", "+migrate")) == 2
    assert ("collect_pmd:split", "-migrate") in ops
    split_at = ops.index(("collect_pmd:split", "-migrate"))
    splitter = page_audit(r.kernel, head.pfn)[split_at][1]
    puts = [row[1] for row in page_audit(r.kernel, head.pfn)
            if row[2:4] == ["collect_pmd:put_page", "-migrate"]]
    assert puts[0] == splitter


def test_split_leaves_the_counts_the_unfreeze_sets(monkeypatch):
    """Right after a split that went ahead with an extra holder: the head has the
    caller's reference and its pte's, each tail its pte's, and the owner books agree."""
    seen = []
    real = huge_memory.ref_freeze

    def spy(k, page, keep, site, own=0):
        n = real(k, page, keep, site, own)
        seen.append((page, keep, n, page.refcount, sum(map(len, page.refs.values()))))
        return n
    monkeypatch.setattr(huge_memory, "ref_freeze", spy)
    mod = mutated("split-refcount-weakened")
    monkeypatch.setattr(mod, "ref_freeze", spy)
    monkeypatch.setattr(collect, "split_huge_page", mod.split_huge_page)
    sc = get_scenario("thp-collect-race")
    for seed in range(SPLIT_BUDGET):
        seen.clear()
        execute(sc, "v6.1", RandomWalk(seed), check=False)
        if any(n for _, _, n, _, _ in seen):
            break
    took = [s for s in seen if s[2]]
    assert took, "no split went ahead with an extra reference"
    page, keep, n, count, books = took[0]
    assert (keep, n, count, books) == (2, 1, 2, 2)


# ---- reclaim -----------------------------------------------------------------------------

PIN_RECLAIM = {
    "name": "pin-reclaim",
    "mms": [{"name": "A", "vmas": [{"start": 0, "npages": 2}]}],
    "layout": [{"mm": "A", "start": 0, "npages": 2}],
    "actors": [{"name": "t", "program": [
        {"op": "pin", "mm": "A", "start": 0, "npages": 1, "write": True},
        {"op": "reclaim", "mm": "A", "start": 0, "npages": 2},
        {"op": "unpin"},
        {"op": "read", "mm": "A", "start": 0, "npages": 2}]}]}


def test_reclaim_freeze_frees_a_page_another_holder_still_has(monkeypatch):
    """A write pin holds page 0 while reclaim swaps it out: with the check weakened the
    freeze takes the pin's reference too and the page is freed at the drop, so the
    device's write through the pin is a use after free naming the freeze."""
    monkeypatch.setattr(reclaim, "reclaim", mutated("reclaim-refcount-weakened").reclaim)
    r = execute(PIN_RECLAIM, "v6.1", RoundRobin())
    assert [f.title for f in r.findings] == [
        "USE_AFTER_FREE: write through a GUP pin at gup:unpin on a page freed at "
        "reclaim:drop"]
    page = r.kernel.pages[r.findings[0].detail["pfn"]]
    assert page.free and page.free_site == "reclaim:drop"
    assert page.refcount == 0 and not any(page.refs.values())
    ops = [(row[2], row[3]) for row in page_audit(r.kernel, page.pfn)]
    assert ("reclaim:drop", "-pin") in ops and ops[-1] == ("reclaim:drop", "free")


def test_reclaim_unmutated_keeps_the_pinned_page():
    r = execute(PIN_RECLAIM, "v6.1", RoundRobin())
    assert r.findings == []
    assert "reclaim:busy" in r.branches


# ---- no change on the unmutated model ----------------------------------------------------

# every built-in scenario on every variant, round-robin and three random walks: ~800
# executions, ~2 s
SEEDS = 3


def test_the_freeze_takes_nothing_on_the_unmutated_model(monkeypatch):
    """With the checks right the freeze's count is the computed one: ref_freeze never
    drops a reference (and then touches nothing), so every trace, finding and audit row
    is what it was before the freeze was modelled. Checked at every call, splits and
    reclaim drops alike (reclaim calls it only when its check let a reference too many
    through)."""
    calls, took = [], []
    real = huge_memory.ref_freeze

    def spy(k, page, keep, site, own=0):
        n = real(k, page, keep, site, own)
        calls.append(site)
        if n:
            took.append((site, page.pfn, n))
        return n
    monkeypatch.setattr(huge_memory, "ref_freeze", spy)
    monkeypatch.setattr(reclaim, "ref_freeze", spy)
    for name in scenario_names():
        sc = get_scenario(name)
        for variant in VARIANTS:
            execute(sc, variant, RoundRobin(), check=False)
            for seed in range(SEEDS):
                execute(sc, variant, RandomWalk(seed), check=False)
    assert calls, "no split ran: the check proves nothing"
    assert {"collect_pmd:split", "collect:split_folio"} <= set(calls)
    assert took == []
