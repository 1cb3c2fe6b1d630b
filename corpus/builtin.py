"""The built-in seed scenarios: the kernel's HMM selftests and the concurrency cases."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from migfuzz.fuzzer.scenario import ScenarioError, validate

SCENARIO_DIR = Path(__file__).with_name("scenarios")


@lru_cache(maxsize=None)
def _load_all() -> dict[str, dict]:
    out = {}
    for path in sorted(SCENARIO_DIR.glob("*.json")):
        sc = validate(json.loads(path.read_text()))
        out[sc["name"]] = sc
    return out


def scenario_names(kind: str | None = None) -> list[str]:
    return [n for n, sc in _load_all().items() if kind is None or sc.get("kind") == kind]


def get_scenario(name: str) -> dict:
    """A deep copy of a built-in scenario; ScenarioError for an unknown name."""
    sc = _load_all().get(name)
    if sc is None:
        raise ScenarioError(f"unknown scenario {name!r} (see 'migfuzz scenarios')")
    return json.loads(json.dumps(sc))
