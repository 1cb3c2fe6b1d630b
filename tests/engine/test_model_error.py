"""An exception inside the model or an oracle during one execution is a finding
(MODEL_ERROR, the traceback as its report), never the end of a campaign. Found by
injecting a bug that drives a mapcount below its map references: oracles.end_state raised
IndexError and the whole campaign exited 1 with every bucket lost (issue 13, item 1)."""
from __future__ import annotations

import json
import subprocess
import sys

import migfuzz.fuzzer.execute as ex
from migfuzz.corpus.builtin import get_scenario, scenario_names
from migfuzz.fuzzer.search.campaign import Campaign
from migfuzz.fuzzer.search.loop import FuzzConfig
from migfuzz.fuzzer.scheduler.random_walk import RandomWalk
from mutations import negative_mapcount

SCS = [get_scenario(n) for n in scenario_names("concurrency") + scenario_names("known-bug")]


def test_an_oracle_exception_is_a_model_error_finding(monkeypatch):
    negative_mapcount(monkeypatch)
    r = ex.execute(get_scenario("migrate"), "v6.1", RandomWalk(1))
    errs = [f for f in r.findings if f.kind == "MODEL_ERROR"]
    assert len(errs) == 1, [f.title for f in r.findings]
    f = errs[0]
    # the injected state (map references emptied behind the engine's back, their takers
    # left) now breaks the reference-leak naming with a TypeError; IndexError before
    assert f.sites == ("TypeError", "oracles.end_state")
    assert "Traceback" in f.detail["traceback"] and "end_state" in f.detail["traceback"]
    # replaying the input gives the same finding at the same step
    again = ex.replay(get_scenario("migrate"), "v6.1", r.schedule)
    assert [(g.signature, g.step) for g in again.findings
            if g.kind == "MODEL_ERROR"] == [(f.signature, f.step)]


def test_a_model_step_exception_stops_that_execution_only(monkeypatch):
    import migfuzz.fuzzer.kernel.unmap as mv
    orig = mv.unmap

    def broken(k, m):
        yield from orig(k, m)
        raise AssertionError("VM_BUG_ON: injected")

    monkeypatch.setattr(mv, "unmap", broken)
    r = ex.execute(get_scenario("overlap-2"), "v6.1", RandomWalk(3))
    errs = [f for f in r.findings if f.kind == "MODEL_ERROR"]
    assert errs and errs[0].sites[0] == "AssertionError", [f.title for f in r.findings]
    assert r.steps > 0 and "VM_BUG_ON: injected" in errs[0].title


def test_the_campaign_goes_on_and_keeps_its_other_buckets(monkeypatch):
    negative_mapcount(monkeypatch)
    c = Campaign(FuzzConfig("v5.16", SCS), 1)
    c.run(execs=600)
    assert c.loop.executions == 600
    sigs = {s for b in c.buckets for s in b.signatures}
    errors = {s for s in sigs if s.startswith("MODEL_ERROR")}
    # one broken rule, one signature (it names the function, not the pages), and the
    # campaign's other findings are still there
    assert len(errors) == 1 and sigs - errors, sigs
