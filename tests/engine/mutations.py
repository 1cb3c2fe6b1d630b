"""Deliberately broken copies of engine steps, shared by the oracle and golden tests."""
import migfuzz.fuzzer.kernel.finalize as finalize
import migfuzz.fuzzer.oracles as oracles
from migfuzz.fuzzer.kernel.state import Kernel


def break_method(monkeypatch, name, site, times=0):
    """Replace Kernel.<name> so the call at ``site`` runs ``times`` times (0: removed)."""
    orig = getattr(Kernel, name)

    def broken(self, *args, **kw):
        called = kw.get("site", next((a for a in args if isinstance(a, str) and ":" in a), ""))
        if called == site:
            for _ in range(times):
                orig(self, *args, **kw)
            return None
        return orig(self, *args, **kw)

    monkeypatch.setattr(Kernel, name, broken)


def skip_restore(monkeypatch):
    """finalize no longer restores the migration entries of a page that did not move."""
    orig = finalize.remove_migration_ptes

    def broken(k, old, new, site, only=None):
        if site == "finalize:remove_migration_ptes" and old is new:
            return
        yield from orig(k, old, new, site, only)

    monkeypatch.setattr(finalize, "remove_migration_ptes", broken)


def negative_mapcount(monkeypatch):
    """At the end of a run a live page has mapcount -1 and its map references gone (the
    kind of damage a skipped reverse-map update does): oracles.end_state cannot read it."""
    orig = oracles.end_state

    def broken(k):
        for page in k.pages.values():
            if not page.free:
                page.refs["map"] = []
                page.mapcount = -1
        return orig(k)

    monkeypatch.setattr(oracles, "end_state", broken)
