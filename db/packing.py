"""How an input is laid out in a corpus or crash row (schema revision 0003).

An input is ``{"format", "version", "engine_version", "scenario", "variant", "strategy",
"seed", "schedule"}`` (``corpus.input.make``). Measured on the default campaign (bench/farm.py,
10,000 executions of v5.16): the scenario's canonical JSON is 550-780 characters, the
schedule's 55-100 (median), the rest ~110. Before 0003 every corpus entry and crash row held
all of it; a campaign has a few dozen scenarios and tens of thousands of rows. So:

- the scenario is stored once, by the hash of its canonical JSON, in ``scenarios``;
- the row keeps the rest of the input with its schedule *packed*: a schedule is a list of
  ``[actor, steps]`` pairs and most pairs are ``[a, 1]`` (one step, then a switch), which
  packs to the bare integer ``a`` (``[[3,1],[0,1],[2,4]]`` -> ``[3,0,[2,4]]``, about a third
  of the text). The packed schedule keeps the key ``schedule``; a schedule that is not all
  pairs of integers (only an unchecked input can have one) is kept as it is under the
  key ``~schedule`` (a key no input has) instead.

``unpack(pack(x))`` gives back an object whose canonical JSON is byte-for-byte that of
``x``, so content hashes and exported inputs do not change.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

RAW_SCHEDULE = "~schedule"


def canonical(obj: Any) -> str:
    """corpus.input.canonical (sorted keys, no spaces, UTF-8 as is); repeated here so the
    migration can run without importing the fuzzer."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def scenario_hash(text: str) -> str:
    """The hash of a scenario's canonical JSON (24 hex digits, as input hashes)."""
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _pair(x: Any) -> bool:
    return (type(x) is list and len(x) == 2 and type(x[0]) is int and type(x[1]) is int)


def pack_schedule(sched: Any) -> list | None:
    """The packed schedule, or None if ``sched`` is not a list of integer pairs."""
    if type(sched) is not list or not all(_pair(p) for p in sched):
        return None
    return [a if n == 1 else [a, n] for a, n in sched]


def unpack_schedule(packed: list) -> list:
    return [[p, 1] if type(p) is int else p for p in packed]


def pack_rest(inp: dict) -> str:
    """The text a row keeps: the input without its scenario, schedule packed."""
    rest = {k: v for k, v in inp.items() if k != "scenario"}
    packed = pack_schedule(rest.get("schedule"))
    if packed is not None:
        rest["schedule"] = packed
    elif "schedule" in rest:
        rest[RAW_SCHEDULE] = rest.pop("schedule")
    return canonical(rest)


def pack(inp: dict) -> tuple[str, str, str]:
    """(scenario text, scenario hash, packed rest text) of an input dict."""
    sc_text = canonical(inp["scenario"])
    return sc_text, scenario_hash(sc_text), pack_rest(inp)


def unpack(rest_text: str, scenario: dict) -> dict:
    """The input again, from a row's ``input`` text and its scenario (parsed)."""
    inp = json.loads(rest_text)
    if RAW_SCHEDULE in inp:
        inp["schedule"] = inp.pop(RAW_SCHEDULE)
    elif "schedule" in inp:
        inp["schedule"] = unpack_schedule(inp["schedule"])
    inp["scenario"] = scenario
    return inp
