"""Deliberately broken copies of engine steps, shared by the oracle and golden tests."""
from fuzzer.state import Kernel


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
