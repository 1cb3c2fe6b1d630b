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
import os
import stat
from typing import Any

from migfuzz.fuzzer import ENGINE_VERSION
from migfuzz.fuzzer.scenario import DEFAULT_MAX_STEPS, MAX_NAME, ScenarioError, validate
from migfuzz.fuzzer.kernel.variants import VariantError, resolve_variant

FORMAT = "migfuzz-input"
VERSION = 1
MAX_BYTES = 4 << 20          # an input is a few KiB; 4 MiB leaves room and bounds the parse
MAX_DEPTH = 32               # scenarios nest 6 levels deep; anything deeper is hostile
MAX_SCHEDULE_RUNS = 1_000_000
# A schedule holds one entry per decision point, and the scheduler takes decisions only at
# steps below the scenario's 'max_steps' (fuzzer/scheduler/controlled.run stops the run
# there and the oracle reports a HANG: 20000 steps unless the scenario sets max_steps, at
# most 10,000,000 by fuzzer/scenario.validate). So no schedule the engine wrote, or can
# replay to its end, has more decisions than that; every run length and the schedule's
# total are checked against it here, on the run-length-encoded form, before anything
# expands them. The bound is the scenario's own, so replay memory is at most what running
# the scenario takes anyway.
def max_decisions(scenario: dict) -> int:
    """The most decisions a schedule for ``scenario`` can hold (its step limit)."""
    return scenario.get("max_steps", DEFAULT_MAX_STEPS)


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


def too_big(source: str, size: int | None, limit: int = MAX_BYTES) -> "InputError":
    """The size-limit error; ``size`` is the whole file's (None: unknown, e.g. a pipe)."""
    what = f"{size} bytes is" if size is not None and size > limit else "it is"
    return InputError(f"{source}: {what} larger than the {limit}-byte limit")


def parse(text: str | bytes, source: str = "input", size: int | None = None) -> dict:
    """Parse and validate an input; InputError with one line on any problem. ``size``: the
    size of the file ``text`` was read from (at most MAX_BYTES + 1 bytes of it), for the
    message when it is too big."""
    if len(text) > MAX_BYTES:
        raise too_big(source, size if size is not None else len(text))
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
    check_schedule(obj["schedule"], obj["scenario"], source)
    seed = obj.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise InputError(f"{source}: 'seed' must be an integer")
    for key in ("engine_version", "strategy"):
        v = obj.get(key)
        if v is not None and not (isinstance(v, str) and len(v) <= MAX_NAME
                                  and v.isprintable()):
            raise InputError(f"{source}: {key!r} must be a printable string of at most "
                             f"{MAX_NAME} characters")
    _check_result(obj.get("result"), source)
    try:
        canonical(obj).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{source}: holds text that is not valid Unicode (a lone "
                         f"surrogate)") from None
    return obj


def check_schedule(sched: Any, scenario: dict, source: str = "input") -> None:
    """A run-length-encoded schedule for ``scenario``: [[actor index, steps >= 1], ...]
    with no run and no total above ``max_decisions(scenario)`` (see there), checked without
    expanding it."""
    nactors = len(scenario["actors"])
    limit = max_decisions(scenario)
    if not isinstance(sched, list) or len(sched) > MAX_SCHEDULE_RUNS:
        raise InputError(f"{source}: 'schedule' must be a list of at most "
                         f"{MAX_SCHEDULE_RUNS} [actor, steps] runs")
    total = 0
    for run in sched:
        if (not isinstance(run, list) or len(run) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in run)
                or not 0 <= run[0] < nactors or run[1] < 1):
            raise InputError(f"{source}: bad schedule run {json.dumps(run)[:40]} "
                             f"(want [actor index < {nactors}, steps >= 1])")
        total += run[1]
        if total > limit:
            raise InputError(f"{source}: the schedule has more than {limit} decisions, but "
                             f"scenario {scenario['name']!r} stops every run at {limit} "
                             f"steps (its max_steps)")


def _check_result(res: Any, source: str) -> None:
    """The stored result: {"trace_hash": str, "findings": [{"kind", "title",
    "signature"}: strings]}; replay compares with it and prints it."""
    if res is None:
        return
    if not isinstance(res, dict):
        raise InputError(f"{source}: 'result' must be an object")
    th = res.get("trace_hash")
    if th is not None and not (isinstance(th, str) and len(th) <= 64):
        raise InputError(f"{source}: 'result.trace_hash' must be a short string")
    fs = res.get("findings", [])
    if not isinstance(fs, list) or not all(
            isinstance(f, dict) and isinstance(f.get("signature"), str)
            and isinstance(f.get("kind", ""), str) and isinstance(f.get("title", ""), str)
            for f in fs):
        raise InputError(f"{source}: 'result.findings' must be a list of objects with a "
                         f"string signature (and string kind and title)")


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
    """Read and check an input file, reading at most MAX_BYTES + 1 bytes of it."""
    data, size = read_bounded(path, MAX_BYTES)
    return parse(data, path, size)


def read_bounded(path: str, limit: int = MAX_BYTES) -> tuple[bytes, int | None]:
    """(at most ``limit`` + 1 bytes of the file, the file's size when it has one); the
    caller refuses more than ``limit`` bytes, naming the real size (``too_big``)."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
            st = os.fstat(f.fileno())
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None
    size = st.st_size if stat.S_ISREG(st.st_mode) else None
    return data, size
