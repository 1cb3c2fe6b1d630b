"""Helpers for the farm tests: a campaign session on a fresh SQLite store, a farm run with
hooks, and the exactly-once checks over what was stored."""
from __future__ import annotations

import collections

from migfuzz.db.store import Store
from migfuzz.fuzzer.search.loop import FuzzConfig
from migfuzz.commands.engine import load_scenario
from migfuzz.session import CampaignSession
from migfuzz.workers.farm import FarmOptions, run_campaign


def session(url: str, name: str, scenarios: list[str], seed: int = 1,
            generate: bool = False) -> CampaignSession:
    cfg = FuzzConfig("v5.16", [load_scenario(s) for s in scenarios], "portfolio", generate)
    return CampaignSession.new(cfg, seed, db=url, name=name, no_db=False)


def run(ray, sess: CampaignSession, workers: int, execs: int, **kw):
    """Run a farm on ``sess`` and store the end as the CLI does; (result, farm)."""
    opts = FarmOptions(workers=workers, batch=kw.pop("batch", 100),
                       minimize=kw.pop("minimize", False))
    res, stopped, farm = run_campaign(ray, sess.campaign, opts, recorder=sess.recorder,
                                      hub=sess.hub_state(), prior_workers=sess.prior_workers,
                                      base=sess.base, execs=execs, **kw)
    sess.finish(res, stopped)
    return res, farm


def check_stored_once(url: str, name: str) -> dict:
    """Every crash row unique, every bug's count equal to its crash rows; kinds found."""
    with Store.open(url) as st:
        crashes = st.list_crashes(campaign=name)
        keys = [(c["input_hash"], c["signature"]) for c in crashes]
        assert len(keys) == len(set(keys)), "a finding was stored twice"
        per_sig = collections.Counter(c["signature"] for c in crashes)
        bugs = {b.signature: b for b in st.list_bugs(campaign=name, status=None)}
        for sig, n in per_sig.items():
            assert sig in bugs, sig
            assert bugs[sig].count == n, (sig, bugs[sig].count, n)
        state = st.load_campaign_state(name)
        return {"crashes": len(crashes), "kinds": sorted({c["kind"] for c in crashes}),
                "signatures": per_sig, "status": state.campaign.status,
                "executions": state.executions, "workers": state.workers,
                "corpus": len(state.corpus)}
