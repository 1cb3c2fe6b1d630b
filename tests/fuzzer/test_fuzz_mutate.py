"""Scenario mutation: mutants and generated scenarios are valid and deterministic."""
from __future__ import annotations

import json
import random

from hypothesis import given, settings, strategies as st

from migfuzz.corpus.builtin import get_scenario, scenario_names
from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.scenario import validate
from migfuzz.fuzzer.search.mutate import MUTATORS, generate, migrators, mutate
from migfuzz.fuzzer.scheduler.random_walk import RandomWalk

BASE = scenario_names("concurrency") + scenario_names("known-bug") + scenario_names("selftest")


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(BASE))
def test_mutants_validate_keep_two_migrations_and_run(seed, name):
    """Also checks determinism: the same seed gives the same mutant."""
    sc = get_scenario(name)
    m, done = mutate(sc, random.Random(seed))
    validate(m)
    assert len(migrators(m)) >= 2
    assert not any("expect" in c for a in m["actors"] for c in a["program"])
    assert json.dumps(mutate(sc, random.Random(seed))[0], sort_keys=True) == \
        json.dumps(m, sort_keys=True)
    execute(m, "v5.16", RandomWalk(seed))       # the builder accepts it too


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_generated_scenarios_validate_and_run(seed):
    sc = generate(random.Random(seed))
    validate(sc)
    assert len(migrators(sc)) >= 2 and sc["kind"] == "generated"
    execute(sc, "v6.1", RandomWalk(seed))


def test_every_mutator_applies_somewhere():
    rng = random.Random(0)
    labels = set()
    for i in range(400):
        sc = get_scenario(BASE[i % len(BASE)])
        _, done = mutate(sc, rng)
        labels.update(d.split("-")[0] for d in done)
    # resize, range, overlap, add, drop, command, share, state, fail_alloc/isolate, cpu
    assert {"resize", "range", "overlap", "add", "drop", "command", "share", "state",
            "fail_alloc", "fail_isolate", "cpu"} <= labels
    assert len(MUTATORS) == 10


def test_mutation_does_not_touch_the_parent():
    sc = get_scenario("overlap-2")
    before = json.dumps(sc, sort_keys=True)
    for s in range(20):
        mutate(sc, random.Random(s))
    assert json.dumps(sc, sort_keys=True) == before


def test_campaigns_generate_every_command_kind():
    """A command kind the scenario language has but mutation never writes is checked only
    on the built-in scenarios that name it (hmm_fault and evict_pfns were, once): every
    kind shows up in generated and mutated scenarios, and so does a migration that also
    selects device-private pages."""
    from migfuzz.fuzzer.scenario import OPS
    seen, select_device = set(), False
    rng = random.Random(1)
    for i in range(600):
        sc = generate(rng) if i % 2 else mutate(get_scenario(BASE[i % len(BASE)]), rng)[0]
        for a in sc["actors"]:
            for c in a["program"]:
                seen.add(c["op"])
                select_device |= bool(c.get("select_device"))
    # fork: a mutated fork would orphan every later command naming its child mm; the
    # built-in fork scenarios (and their mutants, which keep the fork) cover it
    assert set(OPS) - {"fork"} <= seen, set(OPS) - seen
    assert select_device
