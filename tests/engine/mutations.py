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


def skip_lock_ptl(monkeypatch, site):
    """Kernel.lock_ptl at ``site`` takes no lock (a spin_lock dropped from a path)."""
    orig = Kernel.lock_ptl

    def broken(self, mm, s):
        if s == site:
            return
            yield
        yield from orig(self, mm, s)

    monkeypatch.setattr(Kernel, "lock_ptl", broken)


def isolate_without_flag(monkeypatch):
    """isolate_lru_page takes the isolation reference but leaves the page on the LRU (the
    TestClearPageLRU forgotten): refcounts all agree, the page is moved while on the LRU."""
    def broken(self, page, site):
        if page.free or not page.lru:
            return False
        self.get(page, "isolate", site)
        return True

    monkeypatch.setattr(Kernel, "isolate_lru_page", broken)


def partial_restore(monkeypatch):
    """finalize's restore of a page that did not move restores only its first migration
    entry (an rmap walk that stops after one mapping)."""
    import migfuzz.fuzzer.kernel.migration_entries as me
    orig = finalize.remove_migration_ptes

    def broken(k, old, new, site, only=None):
        if site == "finalize:remove_migration_ptes" and old is new and only is None:
            only = k.rmap(old, (me.MIGRATION,))[:1]
        yield from orig(k, old, new, site, only)

    monkeypatch.setattr(finalize, "remove_migration_ptes", broken)


def without_assertions(monkeypatch):
    """The engine as it was before issue 13's assertions (to measure what they add): no
    rule checks at pte changes, PTL releases, unlocks, moves and restores."""
    import migfuzz.fuzzer.kernel.migration_entries as me
    monkeypatch.setattr(Kernel, "_pte_rules", lambda self, *a: None)
    monkeypatch.setattr(Kernel, "check_mapcounts", lambda self: setattr(self, "touched", {}))
    monkeypatch.setattr(Kernel, "assert_move", lambda self, *a: None)
    monkeypatch.setattr(Kernel, "assert_locked", lambda self, *a: None)
    monkeypatch.setattr(Kernel, "migration_entry_of", lambda self, page: None)
