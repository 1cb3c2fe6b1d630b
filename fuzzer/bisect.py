"""Bisection across variants and single behaviour switches.

Replays a reproducer on other variants (leniently: a schedule that stops fitting carries on
and the divergence is noted) and, where the replay no longer fits or does not show the bug,
searches briefly around it with the random strategy, so a fix that merely changes the code
path is not mistaken for "absent". Then flips one switch at a time from the reproducer's
own variant: the switch whose flip makes the bug disappear is named as the fix.
"""
from __future__ import annotations

from dataclasses import dataclass

from dataclasses import replace

from .execute import execute, replay
from .scheduler import RandomWalk
from .kernel.variants import SWITCH_NAMES, VARIANTS, canonical_name, resolve_variant


@dataclass
class Outcome:
    variant: str
    present: bool            # the signature showed up
    how: str                 # "replay", "replay (diverged at step N)", "search: seed S", ...
    findings: list[str]      # the signatures seen there

    def to_json(self) -> dict:
        return {"variant": self.variant, "present": self.present, "how": self.how,
                "findings": self.findings}


def probe(inp: dict, variant, signature: str, search_budget: int = 300) -> Outcome:
    """Does ``signature`` show on ``variant``? Replay first, then a short random search."""
    r = replay(inp["scenario"], variant, inp["schedule"], strict=False, check=False)
    sigs = [f.signature for f in r.findings]
    how = "replay" if r.diverged is None else f"replay ({r.diverged})"
    if signature in sigs:
        return Outcome(r.variant, True, how, sigs)
    for seed in range(search_budget):
        s = execute(inp["scenario"], variant, RandomWalk(seed), check=False)
        if any(f.signature == signature for f in s.findings):
            return Outcome(r.variant, True, f"search: seed {seed}",
                           [f.signature for f in s.findings])
    return Outcome(r.variant, False, how + f"; not in {search_budget} searched executions",
                   sigs)


def _flips(preset: str, base, inp, signature, budget) -> list[dict]:
    out = []
    for name in SWITCH_NAMES:
        flipped = replace(base, **{name: not getattr(base, name)})
        o = probe(inp, canonical_name(preset, flipped), signature, budget)
        out.append({"switch": name, "turned": "on" if getattr(flipped, name) else "off",
                    **o.to_json()})
    return out


def bisect(inp: dict, signature: str, variants=None, search_budget: int = 300) -> dict:
    """Which variants show the bug; which single switch, flipped on the reproducer's own
    variant, makes it disappear (the fix); and which, flipped on a variant where it is
    absent, makes it appear (the cause)."""
    variants = list(variants or VARIANTS)
    across = [probe(inp, v, signature, search_budget) for v in variants]
    base_name, base = resolve_variant(inp["variant"])
    switches = _flips(_preset_of(base_name), base, inp, signature, search_budget)
    causes = []
    for o in across:
        if not o.present and o.variant in VARIANTS:
            for s in _flips(o.variant, VARIANTS[o.variant][0], inp, signature,
                            search_budget):
                if s["present"]:
                    causes.append(f"present on {o.variant} when {s['switch']} is "
                                  f"{s['turned']}")
    return {"signature": signature, "base": base_name,
            "variants": [o.to_json() for o in across], "switches": switches,
            "fixed_by": [f"absent when {s['switch']} is {s['turned']}"
                         for s in switches if not s["present"]],
            "caused_by": causes}


def _preset_of(name: str) -> str:
    """The preset a canonical variant name starts from (``v5.16+x`` -> ``v5.16``)."""
    for preset in sorted(VARIANTS, key=len, reverse=True):
        if name == preset or name.startswith(preset + "+") or name.startswith(preset + "-"):
            return preset
    return "v5.16"
