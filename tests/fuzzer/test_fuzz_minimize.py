"""Minimization: shrunk known bugs are small, reproduce exactly, and cost a bounded effort."""
from __future__ import annotations

import pytest

from migfuzz.corpus.builtin import get_scenario
from migfuzz.fuzzer.execute import execute, replay
from migfuzz.fuzzer.search.minimize import minimize
from migfuzz.fuzzer.scheduler.random_walk import RandomWalk

# (scenario, variant, kind, seed of a random walk that finds it, max pages, max
# preemptions, max executions) -- bounds from measured runs with ~2x headroom:
# dp-fault-race 2a/1p/1pre in 15 execs, madvise 3a/2p/2pre in 141, cross-mm 2a/4p/1pre in 16,
# dirty-page 1a/1p/0pre in 15
CASES = [
    ("dp-fault-race", "v5.16", "USE_AFTER_FREE", 2, 2, 60),
    ("madvise-race", "v5.16", "LOST_WRITE", 2, 3, 400),
    ("madvise-race", "v5.15", "LOST_WRITE", 2, 3, 400),
    ("cross-mm-opposite", "blocking-lock", "DEADLOCK", 4, 1, 60),
    ("dirty-page", "v5.16", "LOST_WRITE", 2, 0, 60),
]


def _first(sc, variant, kind):
    for seed in range(3000):
        r = execute(sc, variant, RandomWalk(seed))
        f = [f for f in r.findings if f.kind == kind]
        if f:
            return r, f[0]
    raise AssertionError("not found")


@pytest.mark.parametrize("name,variant,kind,max_pages,max_pre,max_execs", CASES)
def test_minimized_known_bugs(name, variant, kind, max_pages, max_pre, max_execs):
    sc = get_scenario(name)
    r, f = _first(sc, variant, kind)
    sh = minimize(sc, variant, r.schedule, f.signature, budget=2000)
    s = sh.summary()
    assert s["actors"] <= 3 and s["pages"] <= max_pages
    assert s["preemptions"] <= max_pre and s["preemptions"] <= r.preemptions
    assert sh.executions <= max_execs
    assert sh.after <= sh.before
    # the shrunk input replays exactly and still gives the same signature
    rr = replay(sh.scenario, variant, sh.schedule)
    assert rr.trace_hash == sh.result.trace_hash
    assert f.signature in [x.signature for x in rr.findings]


def test_minimization_is_deterministic_and_respects_the_budget():
    sc = get_scenario("madvise-race")
    r, f = _first(sc, "v5.16", "LOST_WRITE")
    a = minimize(sc, "v5.16", r.schedule, f.signature)
    b = minimize(sc, "v5.16", r.schedule, f.signature)
    assert a.schedule == b.schedule and a.scenario == b.scenario
    c = minimize(sc, "v5.16", r.schedule, f.signature, budget=10)
    assert c.executions <= 10


def test_an_input_without_the_signature_is_refused():
    sc = get_scenario("dp-fault-race")
    r = execute(sc, "v6.1", RandomWalk(0))
    with pytest.raises(ValueError):
        minimize(sc, "v6.1", r.schedule, "USE_AFTER_FREE-000000000000")


def test_the_time_budget_cuts_minimization_short_and_says_so():
    sc = get_scenario("madvise-race")
    r, f = _first(sc, "v5.16", "LOST_WRITE")
    cut = minimize(sc, "v5.16", r.schedule, f.signature, budget=2000, seconds=0.0)
    assert not cut.complete and cut.executions == 1     # only the input as given ran
    assert cut.summary()["complete"] is False
    full = minimize(sc, "v5.16", r.schedule, f.signature, budget=2000, seconds=60.0)
    assert full.complete and full.executions > 1


def test_a_campaign_past_its_minimization_time_leaves_buckets_not_minimized():
    from migfuzz.fuzzer.search.campaign import Campaign
    from migfuzz.fuzzer.search.loop import FuzzConfig
    c = Campaign(FuzzConfig("v5.16", [get_scenario("dp-fault-race"),
                                      get_scenario("dirty-page")]), 1)
    c.run(execs=1500)
    seen = []
    c.minimize_all(seconds=0.0, progress=lambda i, n, b: seen.append((i, n)))
    assert c.buckets and seen == [(i, len(seen)) for i in range(len(seen))]
    assert all(b.minimized == {"error": "not minimized (time budget)"} for b in c.buckets)


def test_a_minimized_input_with_a_longest_name_still_loads():
    """A scenario named with MAX_NAME characters gets a minimized name that still fits
    (appending "-min" used to make an input nobody could load), and minimizing twice does
    not stack suffixes."""
    from migfuzz.corpus import input as inputs
    from migfuzz.fuzzer.scenario import MAX_NAME
    from migfuzz.fuzzer.search.campaign import minimize_input
    sc = dict(get_scenario("dirty-page"), name="d" * MAX_NAME)
    r, f = _first(sc, "v5.16", "LOST_WRITE")
    inp = {"scenario": sc, "variant": "v5.16", "schedule": r.schedule}
    out = minimize_input(inp, f.signature, 200)["minimized"]
    name = out["scenario"]["name"]
    assert len(name) <= MAX_NAME and name.endswith("-min"), len(name)
    inputs.check(inputs.make(out["scenario"], "v5.16", out["schedule"]))   # loads again
    again = minimize_input({**inp, "scenario": out["scenario"],
                            "schedule": out["schedule"]}, f.signature, 200)["minimized"]
    assert again["scenario"]["name"] == name
