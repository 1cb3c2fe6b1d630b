"""POTENTIAL_DEADLOCK: a lock-order graph across all executions, lockdep/DEPT style.

lockdep keeps one graph of "held A while acquiring B" over everything that ever ran, and
reports a cycle as soon as every edge of it has happened once, even if no run deadlocked.
It does not see page locks; DEPT does (and waits for events), which is exactly the
migrate_vma pattern: two migrations that lock the same pages in opposite orders. Here the
nodes are page identities (``Page.ident``: stable across executions of one scenario, e.g.
``init:A:0``), scoped by scenario, and each edge keeps the sites and the first input that
made it. A cycle is reported once per set of edge sites; its signature is built from the
sites only, so every such cycle lands in one bucket.

The engine records edges for blocking ``lock_page`` only (trylock cannot wait). Waits for
events such as a migration entry are not recorded by the engine yet (see docs/fuzzing.md).
"""
from __future__ import annotations

from ..findings import Finding


class LockGraph:
    def __init__(self):
        # (scope, held) -> {(scope, acquired): edge info}; dicts keep insertion order
        self.adj: dict[tuple, dict[tuple, dict]] = {}
        self.reported: dict[tuple, None] = {}
        self.edges = 0

    def add(self, scope: str, lock_edges, origin: dict | None = None,
            deadlocked: bool = False) -> list[Finding]:
        """Add one execution's edges; return POTENTIAL_DEADLOCK findings for new cycles.
        ``origin`` (any JSON-able dict: the input, say) is kept on each new edge."""
        found = []
        for held, hsite, acq, asite in lock_edges:
            if held == acq:
                continue                    # recursive locking is the engine's DEADLOCK
            u, v = (scope, held), (scope, acq)
            out = self.adj.setdefault(u, {})
            if v in out:
                continue
            out[v] = {"held_site": hsite, "site": asite, "origin": origin,
                      "deadlocked": deadlocked}
            self.edges += 1
            path = self._path(v, u)
            if path is not None:
                f = self._finding([u] + path)
                if f is not None:
                    found.append(f)
        return found

    def export(self) -> list[tuple]:
        """Every edge as (scope, held, held_site, acquired, site): for merging elsewhere."""
        return [(u[0], u[1], e["held_site"], v[1], e["site"])
                for u, out in self.adj.items() for v, e in out.items()]

    def merge(self, edges) -> list[Finding]:
        found = []
        for scope, held, hsite, acq, asite in edges:
            found += self.add(scope, [(held, hsite, acq, asite)], origin={"merged": True})
        return found

    def _path(self, src: tuple, dst: tuple) -> list[tuple] | None:
        """A path src -> ... -> dst (depth-first, in insertion order), as the node list."""
        stack = [(src, [src])]
        seen = {src}
        while stack:
            node, path = stack.pop()
            if node == dst:
                return path
            for nxt in reversed(list(self.adj.get(node, ()))):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    def _finding(self, cycle: list[tuple]) -> Finding | None:
        # cycle = [u, v, ..., u]: the edges are consecutive pairs
        edges = [(a, b, self.adj[a][b]) for a, b in zip(cycle, cycle[1:])]
        sites = tuple(sorted(f"{e['held_site']}->{e['site']}" for _, _, e in edges))
        key = (cycle[0][0],) + sites
        if key in self.reported:
            return None
        self.reported[key] = None
        parts = [f"held {a[1]} (taken at {e['held_site']}) while locking {b[1]} at "
                 f"{e['site']}" for a, b, e in edges]
        any_dead = any(e["deadlocked"] for _, _, e in edges)
        return Finding(
            "POTENTIAL_DEADLOCK",
            "POTENTIAL_DEADLOCK: page lock order cycle: " + "; ".join(parts),
            sites,
            detail={"scope": cycle[0][0],
                    "edges": [{"held": a[1], "held_site": e["held_site"], "acquired": b[1],
                               "site": e["site"], "origin": e["origin"],
                               "deadlocked": e["deadlocked"]} for a, b, e in edges],
                    "from_deadlocked_run": any_dead})
