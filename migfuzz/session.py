"""A fuzz campaign tied to the store: create or resume it, record every batch, store the
minimized reproducers, and mark it finished or stopped (SIGTERM and Ctrl-C stop it
cleanly so ``--resume`` can continue it)."""
from __future__ import annotations

import random
import secrets
import signal
import time
from contextlib import contextmanager

from migfuzz.corpus import input as inputs
from migfuzz.fuzzer import ENGINE_VERSION
from migfuzz.fuzzer.search.campaign import Campaign
from migfuzz.fuzzer.search.loop import FuzzConfig

from .refs import open_store


def default_name(variant: str) -> str:
    """fuzz-VARIANT-UTCTIME-XXXXXX: two campaigns started in the same second (in one
    process or many) get different names; the suffix is random, not a counter."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"fuzz-{variant}-{stamp}-{secrets.token_hex(3)}"


def resumed_seed(seed: int, executions: int) -> int:
    """A fresh stream for a resumed loop: re-running the first stream would only repeat
    what is already stored. Seeding with a string is stable across processes."""
    return random.Random(f"{seed}:{executions}").getrandbits(32)


class CampaignSession:
    def __init__(self, campaign: Campaign, store=None, name: str = "", base: int = 0,
                 prior_workers: dict | None = None):
        self.campaign = campaign
        self.store = store
        self.name = name
        self.base = base                       # executions stored before this session
        # worker name -> its executions stored before this session ("local" in process,
        # "w0", "w1", ... on the farm); the store sums the workers' last samples
        self.prior_workers = dict(prior_workers or {})
        self.recorder = None
        if store is not None:
            from migfuzz.db.recorder import Recorder
            loop = campaign.loop
            self.recorder = Recorder(store, name, lambda n: loop.pool[n].sc, loop.variant)

    @classmethod
    def new(cls, cfg: FuzzConfig, seed: int, *, db: str | None, name: str | None,
            no_db: bool, max_crashes_per_bug: int = 100) -> "CampaignSession":
        camp = Campaign(cfg, seed)
        if no_db:
            return cls(camp)
        from migfuzz.db.recorder import campaign_config
        from migfuzz.db.store import Store
        from migfuzz.db.errors import CampaignExists
        store = Store.open(db, check_inputs=False,    # inputs are built here, from checked parts
                           max_crashes_per_bug=max_crashes_per_bug)
        try:
            for attempt in range(20):
                # the database's unique name decides (no list-then-insert race): a default
                # name that is taken, however unlikely, is drawn again
                try_name = name or default_name(camp.loop.variant)
                try:
                    store.create_campaign(try_name, camp.loop.variant, campaign_config(cfg),
                                          seed, ENGINE_VERSION, own=True)
                    break
                except CampaignExists:
                    if name or attempt == 19:
                        raise
        except Exception:
            store.close()
            raise
        return cls(camp, store, try_name)

    @classmethod
    def resume(cls, *, db: str | None, name: str,
               max_crashes_per_bug: int = 100) -> "CampaignSession":
        from migfuzz.db.recorder import resume_state
        store = open_store(db)
        store.max_crashes_per_bug = max_crashes_per_bug
        try:
            before = store.campaign(name)
            # one writer per campaign: refused while another live process runs it; a
            # killed or silent owner's campaign is taken over (see db.liveness)
            store.claim_campaign(name)
        except Exception:
            store.close()
            raise
        try:
            cfg, state, entries, generated = resume_state(store, name)
            seed = state.campaign.seed or 0
            camp = Campaign(cfg, resumed_seed(seed, state.executions))
            camp.seed = seed
            camp.loop.merge(entries=entries, scenarios=generated,
                            features_=state.coverage)
            camp.loop.executions = state.executions
        except Exception:
            try:
                store.restore_campaign(name, before)
            finally:
                store.close()
            raise
        prior = {w: int(s.get("executions") or 0) for w, s in state.workers.items()}
        return cls(camp, store, name, state.executions, prior)

    def hub_state(self) -> dict:
        """What the campaign knows before this session (nothing for a new one): corpus
        entries, generated scenarios and coverage, for a farm's coordinator to start from."""
        loop = self.campaign.loop
        return {"entries": [e for s in loop.pool.values() for e in s.entries],
                "scenarios": [s.sc for s in loop.pool.values() if s.generated],
                "features_": list(loop.coverage.hits)}

    def on_batch(self, rep) -> None:
        if self.recorder is not None:
            done = self.campaign.loop.executions - self.base
            self.recorder.record(rep, "local", self.prior_workers.get("local", 0) + done,
                                 len(self.campaign.buckets))

    @contextmanager
    def stop_on_signals(self, sigint: bool = False):
        """Yield a one-element list that turns True on SIGTERM (checked between batches).
        With ``sigint`` the first Ctrl-C does the same (a second one interrupts at once)."""
        stopped = [False]

        def handler(_sig, _frame):
            stopped[0] = True

        def int_handler(_sig, _frame):
            if stopped[0]:
                raise KeyboardInterrupt
            stopped[0] = True

        old = signal.signal(signal.SIGTERM, handler)
        old_int = signal.signal(signal.SIGINT, int_handler) if sigint else None
        try:
            yield stopped
        finally:
            signal.signal(signal.SIGTERM, old)
            if sigint:
                signal.signal(signal.SIGINT, old_int)

    def finish(self, res, interrupted: bool) -> dict | None:
        """Store minimized reproducers and the campaign's end; a summary for the user."""
        st = self.store
        if st is None:
            return None
        for b in res.buckets:
            m = b.minimized or {}
            if "scenario" in m:
                inp = inputs.make(m["scenario"], b.input["variant"], m["schedule"],
                                  strategy="minimized", seed=b.input.get("seed"),
                                  result={"trace_hash": m["trace_hash"],
                                          "findings": m["findings"]})
                # a minimization cut short by its time budget is stored as not minimized
                st.set_reproducer(b.signature, inp, steps=m.get("steps"),
                                  minimized=m.get("complete", True))
        status = "stopped" if interrupted else "finished"
        st.set_campaign_status(self.name, status)
        row = next((c for c in st.list_campaigns() if c["name"] == self.name), {})
        from migfuzz.db.engine import redact
        bugs = st.list_bugs(campaign=self.name)
        dups = sum(1 for b in bugs if b.status == "duplicate")
        return {"db": redact(st.url), "campaign": self.name, "status": status,
                "executions": res.executions,
                "corpus": row.get("corpus", 0), "crashes": row.get("crashes", 0),
                "bugs": len(bugs) - dups, "duplicates": dups}

    def mark_failed(self) -> None:
        """The campaign stopped on an engine error: say so in the store (not 'running')."""
        if self.store is not None:
            self.store.set_campaign_status(self.name, "failed")

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
