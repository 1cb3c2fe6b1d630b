"""The model's ground truth (kernel-model.md section 4): the random strategy finds each known
bug on the variants that have it, and nothing on the variants that fixed it or on the
selftest scenarios run without concurrency."""
import pytest

from migfuzz.corpus.builtin import get_scenario, scenario_names
from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.scheduler import RandomWalk, RoundRobin

# (variant, scenario, kinds that count, executions allowed). The budgets are ~5x the seed
# of the first hit measured with this engine (dp-fault-race: first hit at seed 4-204 of
# random walk, 3-5 hits per 1000).
KNOWN = [
    ("blocking-lock", "cross-mm-opposite", {"DEADLOCK"}, 50),
    ("v5.15", "dirty-page", {"LOST_WRITE"}, 5),
    ("v5.16", "dirty-page", {"LOST_WRITE"}, 5),
    ("v5.15", "madvise-race", {"LOST_WRITE", "USE_AFTER_FREE"}, 2000),
    ("v5.16", "madvise-race", {"LOST_WRITE", "USE_AFTER_FREE"}, 2000),
    ("v5.15", "dp-fault-race", {"USE_AFTER_FREE"}, 3000),
    ("v5.16", "dp-fault-race", {"USE_AFTER_FREE"}, 3000),
    # issue 12: the THP leak is in every release read (README's ground-truth table)
    ("6.1.192", "thp-collect-race", {"REFCOUNT_LEAK"}, 100),
    ("6.12.117", "thp-collect-race", {"REFCOUNT_LEAK"}, 100),
    ("mainline", "thp-collect-race", {"REFCOUNT_LEAK"}, 100),
    # H2: first hit at seed 102 of random walk (19 in 2,000)
    ("mainline", "h2-split-window", {"LOST_WRITE"}, 1000),
    # H3: no race needed, the first execution shows it
    ("mainline", "migrate-swapcache", {"REFCOUNT_UNDERFLOW"}, 1),
]


def first_hit(variant, scenario, kinds, budget):
    sc = get_scenario(scenario)
    for seed in range(budget):
        r = execute(sc, variant, RandomWalk(seed), seed=seed, check=False)
        hit = [f for f in r.findings if f.kind in kinds]
        if hit:
            return seed, hit
    return None, []


@pytest.mark.parametrize("variant,scenario,kinds,budget", KNOWN,
                         ids=[f"{v}-{s}" for v, s, _, _ in KNOWN])
def test_known_bug_is_found(variant, scenario, kinds, budget):
    seed, hit = first_hit(variant, scenario, kinds, budget)
    assert seed is not None, f"{variant} x {scenario}: no {kinds} in {budget} executions"
    assert all(f.signature.startswith(f.kind) for f in hit)


@pytest.mark.parametrize("scenario", ["cross-mm-opposite", "dirty-page", "madvise-race",
                                      "dp-fault-race", "overlap-2", "fault-storm",
                                      "pin-compact-race", "fork-during-migration"])
def test_v61_finds_nothing(scenario):
    sc = get_scenario(scenario)
    for seed in range(600):
        r = execute(sc, "v6.1", RandomWalk(seed), seed=seed, check=False)
        assert not r.findings, f"seed {seed}: {[f.title for f in r.findings]}"


@pytest.mark.parametrize("variant", ["6.1.192", "6.12.117"])
@pytest.mark.parametrize("scenario", ["cross-mm-opposite", "dirty-page", "madvise-race",
                                      "dp-fault-race", "overlap-2", "fault-storm",
                                      "pin-compact-race", "fork-during-migration",
                                      "h2-split-window"])
def test_lts_find_nothing(variant, scenario):
    # dirty-page's swapcache pages migrate on 6.12.117 (folio_free_swap): its v5.x
    # selftest expectation says "unless free_swap_to_device", so nothing is reported
    sc = get_scenario(scenario)
    for seed in range(300):
        r = execute(sc, variant, RandomWalk(seed), seed=seed, check=False)
        bad = [f.title for f in r.findings]
        assert not bad, f"seed {seed}: {bad}"


@pytest.mark.parametrize("variant", ["v5.15", "v5.16", "v6.1", "blocking-lock", "6.1.192",
                                     "6.12.117", "mainline"])
def test_selftests_are_clean_without_concurrency(variant):
    names = scenario_names("selftest")
    if variant == "mainline":
        names.remove("migrate-swapcache")      # H3: its finding, in KNOWN above
    assert len(names) >= 10
    for name in names:
        sc = get_scenario(name)
        assert len(sc["actors"]) == 1, name
        r = execute(sc, variant, RoundRobin(), check=False)
        assert not r.findings, f"{name}: {[f.title for f in r.findings]}"


def test_deadlock_names_the_cycle():
    _, hit = first_hit("blocking-lock", "cross-mm-opposite", {"DEADLOCK"}, 50)
    f = hit[0]
    assert sorted(f.detail["cycle"]) == ["migA", "migB"]
    assert f.sites == ("collect:lock_page<-collect:lock_page",) * 2
    assert "migA waits at collect:lock_page" in f.title


def test_one_bucket_for_the_stale_tlb_race():
    """Both faces of the stale-TLB race (a swallowed write, a stale read) share one
    signature, so they land in one bucket with two titles."""
    titles: dict[str, set] = {}
    sc = get_scenario("madvise-race")
    for seed in range(3000):
        for f in execute(sc, "v5.16", RandomWalk(seed), check=False).findings:
            titles.setdefault(f.signature, set()).add(f.title.split(" (")[0])
    assert len(titles) == 1, titles
    (found,) = titles.values()
    assert found == {"LOST_WRITE: a write through a stale TLB entry",
                     "LOST_WRITE: a read through a stale TLB entry"}


def test_fault_storm_starves_migrations_before_v517():
    """Waiters' temporary references fail check_page (ffa65753c431): a measured rate."""
    sc = get_scenario("fault-storm")
    rate = {}
    for variant in ("v5.16", "v6.1"):
        req = mig = 0
        for seed in range(300):
            r = execute(sc, variant, RandomWalk(seed), check=False)
            req, mig = req + r.requested, mig + r.migrated
        rate[variant] = mig / req
    assert rate["v6.1"] == 1.0
    assert rate["v5.16"] < 0.97


def _release_table():
    """The README's per-scenario table for 6.1.192, 6.12.117 and mainline: (scenario,
    variant, the finding kinds its cell names)."""
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    head = "| scenario | 6.1.192 | 6.12.117 | mainline |"
    lines = text[text.index(head):].splitlines()
    variants = [c.strip() for c in lines[0].strip("|").split("|")][1:]
    rows = []
    for line in lines[2:]:
        if not line.startswith("| `"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        scenario = cells[0].strip("`")
        for v, cell in zip(variants, cells[1:]):
            rows.append((scenario, v, frozenset(re.findall(r"\b[A-Z][A-Z_]{3,}\b", cell))))
    return rows


RELEASE_TABLE = _release_table()
# executions that run to the step bound (H3's livelocked fault) are slow: 5 are enough,
# every one shows it; H2 needs about 100 (first hit at seed 102 of 2,000)
_BUDGET = {"dirty-page": 5, "migrate-swapcache": 5, "h2-split-window": 1000,
           "h2-split-fail": 1000, "h2-split-uaf": 1000}


def test_release_table_covers_the_ground_truth_scenarios():
    assert len(RELEASE_TABLE) == 3 * 13
    assert {s for s, _, _ in RELEASE_TABLE} >= {"thp-collect-race", "h2-split-window",
                                                 "migrate-swapcache", "madvise-race"}


@pytest.mark.parametrize("scenario,variant,kinds", RELEASE_TABLE,
                         ids=[f"{v}-{s}" for s, v, _ in RELEASE_TABLE])
def test_release_table_cell_holds(scenario, variant, kinds):
    sc = get_scenario(scenario)
    seen: set[str] = set()
    for seed in range(_BUDGET.get(scenario, 300)):
        r = execute(sc, variant, RandomWalk(seed), seed=seed, check=False)
        seen |= {f.kind for f in r.findings}
        if kinds and seen >= kinds:
            break
    assert seen == kinds, f"{variant} x {scenario}: README says {sorted(kinds)}, " \
                          f"random walk shows {sorted(seen)}"
