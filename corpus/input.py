"""The stored form of an input: scenario + variant + schedule, versioned.

One JSON object::

    {"format": "migfuzz-input", "version": 1, "engine_version": "1",
     "scenario": {...}, "variant": "v5.16", "strategy": "random", "seed": 7,
     "schedule": [[actor, steps], ...],
     "result": {"trace_hash": "...", "findings": [{"kind", "title", "signature"}]}}

``schedule`` (run-length encoded actor choices) makes replay exact; ``seed`` and
``strategy`` say where it came from (replay from the seed alone also works while the
engine version is unchanged). ``result`` is what the run gave when it was saved.
The content hash covers only what determines the execution: scenario, variant, schedule.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from fuzzer import ENGINE_VERSION
from fuzzer.scenario import ScenarioError, validate
from fuzzer.variants import VariantError, resolve_variant

FORMAT = "migfuzz-input"
VERSION = 1
MAX_BYTES = 4 << 20          # an input is a few KiB; 4 MiB leaves room and bounds the parse
MAX_DEPTH = 32               # scenarios nest 6 levels deep; anything deeper is hostile
MAX_SCHEDULE_RUNS = 1_000_000


class InputError(ValueError):
    """An input file that cannot be used: malformed, wrong version, or invalid content."""


def _depth(obj: Any, limit: int) -> int:
    stack = [(obj, 1)]
    deepest = 0
    while stack:
        cur, d = stack.pop()
        deepest = max(deepest, d)
        if d > limit:
            return d
        if isinstance(cur, dict):
            stack.extend((v, d + 1) for v in cur.values())
        elif isinstance(cur, list):
            stack.extend((v, d + 1) for v in cur)
    return deepest


def parse(text: str | bytes, source: str = "input") -> dict:
    """Parse and validate an input; InputError with one line on any problem."""
    if len(text) > MAX_BYTES:
        raise InputError(f"{source}: {len(text)} bytes is larger than the {MAX_BYTES}-byte limit")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{source}: malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (RecursionError, UnicodeDecodeError) as e:
        raise InputError(f"{source}: unreadable JSON ({type(e).__name__})") from None
    return check(obj, source)


def check(obj: Any, source: str = "input") -> dict:
    if not isinstance(obj, dict):
        raise InputError(f"{source}: expected a JSON object")
    if _depth(obj, MAX_DEPTH) > MAX_DEPTH:
        raise InputError(f"{source}: nested deeper than {MAX_DEPTH} levels")
    if obj.get("format") != FORMAT:
        raise InputError(f"{source}: not a migfuzz input (format {obj.get('format')!r})")
    ver = obj.get("version")
    if not isinstance(ver, int) or isinstance(ver, bool):
        raise InputError(f"{source}: 'version' must be an integer")
    if ver > VERSION:
        raise InputError(f"{source}: input format version {ver} is newer than this migfuzz "
                         f"understands ({VERSION}); upgrade migfuzz")
    if ver < 1:
        raise InputError(f"{source}: unknown input format version {ver}")
    allowed = {"format", "version", "engine_version", "scenario", "variant", "strategy",
               "seed", "schedule", "result"}
    extra = obj.keys() - allowed
    if extra:
        raise InputError(f"{source}: unknown key(s) {', '.join(sorted(map(str, extra)))}")
    for key in ("scenario", "variant", "schedule"):
        if key not in obj:
            raise InputError(f"{source}: missing {key!r}")
    try:
        validate(obj["scenario"])
        resolve_variant(obj["variant"])
    except (ScenarioError, VariantError) as e:
        raise InputError(f"{source}: {e}") from None
    sched = obj["schedule"]
    nactors = len(obj["scenario"]["actors"])
    if not isinstance(sched, list) or len(sched) > MAX_SCHEDULE_RUNS:
        raise InputError(f"{source}: 'schedule' must be a list of [actor, steps] runs")
    for run in sched:
        if (not isinstance(run, list) or len(run) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in run)
                or not 0 <= run[0] < nactors or run[1] < 1):
            raise InputError(f"{source}: bad schedule run {json.dumps(run)[:40]} "
                             f"(want [actor index < {nactors}, steps >= 1])")
    seed = obj.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise InputError(f"{source}: 'seed' must be an integer")
    if "engine_version" in obj and not isinstance(obj["engine_version"], str):
        raise InputError(f"{source}: 'engine_version' must be a string")
    return obj


def make(scenario: dict, variant, schedule: list, *, strategy: str = "", seed=None,
         result: dict | None = None) -> dict:
    obj = {"format": FORMAT, "version": VERSION, "engine_version": ENGINE_VERSION,
           "scenario": scenario, "variant": variant, "strategy": strategy, "seed": seed,
           "schedule": schedule}
    if result is not None:
        obj["result"] = result
    return obj


def canonical(obj: Any) -> str:
    """The canonical text of a JSON value: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(inp: dict) -> str:
    """Same execution, same hash: over scenario, canonical variant name and schedule."""
    vname, _ = resolve_variant(inp["variant"])
    core = {"scenario": inp["scenario"], "variant": vname, "schedule": inp["schedule"]}
    return hashlib.sha256(canonical(core).encode()).hexdigest()[:24]


def dumps(inp: dict) -> str:
    """Pretty, stable text for files (diff-friendly; the hash does not depend on it)."""
    return json.dumps(inp, sort_keys=True, indent=1) + "\n"


def load(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None
    return parse(data, path)
