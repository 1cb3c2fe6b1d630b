"""A corpus as JSON lines: export from the store, import into it.

The first line is a header, every other line one corpus entry::

    {"format": "migfuzz-corpus", "version": 1, "campaign": "c1", "variant": "v5.16",
     "engine_version": "1", "entries": 2}
    {"hash": "6951c7df...", "input": {<a migfuzz input>}, "coverage": [...],
     "new_coverage": 3, "parent": null, "worker": "w0", "found_at": 1795711717.5}

Every line is canonical JSON (sorted keys, no spaces). On import the header is optional
and a line may also be a bare input (``{"format": "migfuzz-input", ...}``, as written by
``migfuzz run --save`` once compacted to one line). Import reads and checks the whole file
before anything is written, so a bad line (malformed, a newer version, the wrong types,
too big, too deep, a hash that does not match the content) is reported as one line,
``FILE:LINE: problem``, and the database is left unchanged.
"""
from __future__ import annotations

import json
import math
from typing import IO, Any, Iterable

from . import input as inputs

FORMAT = "migfuzz-corpus"
VERSION = 1
MAX_LINE = inputs.MAX_BYTES + (1 << 20)     # an input plus its coverage list
MAX_ENTRIES = 1_000_000
# The whole file is checked in memory before anything is written (so a bad line leaves the
# database unchanged); parsed JSON takes ~6-10x its text, so 256 MiB of text keeps import
# under ~2.5 GiB. A real export is far smaller: a 10-minute 2-worker campaign's corpus is
# ~2,000 entries of ~3 KiB (~6 MiB).
MAX_FILE_BYTES = 256 << 20
MAX_COVERAGE = 100_000
MAX_NAME = 200
ENTRY_KEYS = {"hash", "input", "coverage", "new_coverage", "parent", "worker", "found_at"}
HEADER_KEYS = {"format", "version", "campaign", "variant", "engine_version", "entries",
               "exported_at"}


def _bad(where: str, msg: str) -> inputs.InputError:
    return inputs.InputError(f"{where}: {msg}")


def _name(v: Any, where: str, key: str, optional: bool = True) -> None:
    if v is None and optional:
        return
    if not isinstance(v, str) or len(v) > MAX_NAME or not v.isprintable():
        raise _bad(where, f"{key!r} must be a printable string of at most {MAX_NAME} "
                          f"characters")


def _check_header(obj: dict, where: str) -> dict:
    ver = obj.get("version")
    if not isinstance(ver, int) or isinstance(ver, bool):
        raise _bad(where, "'version' must be an integer")
    if ver > VERSION:
        raise _bad(where, f"corpus format version {ver} is newer than this migfuzz "
                          f"understands ({VERSION}); upgrade migfuzz")
    if ver < 1:
        raise _bad(where, f"unknown corpus format version {ver}")
    extra = obj.keys() - HEADER_KEYS
    if extra:
        raise _bad(where, f"unknown header key(s) {', '.join(sorted(map(str, extra)))}")
    for k in ("campaign", "variant", "engine_version"):
        _name(obj.get(k), where, k)
    return obj


def check_entry(obj: Any, where: str) -> dict:
    """One corpus entry (or a bare input), checked; returns the store's entry dict."""
    if not isinstance(obj, dict):
        raise _bad(where, "expected a JSON object")
    if obj.get("format") == inputs.FORMAT:
        obj = {"input": obj}
    extra = obj.keys() - ENTRY_KEYS
    if extra:
        raise _bad(where, f"unknown key(s) {', '.join(sorted(map(str, extra)))}")
    if "input" not in obj:
        raise _bad(where, "missing 'input'")
    inp = inputs.check(obj["input"], where)
    try:
        inputs.canonical(inp).encode("utf-8")
        h = inputs.content_hash(inp)
    except UnicodeEncodeError:
        raise _bad(where, "input holds text that is not valid Unicode") from None
    if "hash" in obj and obj["hash"] != h:
        raise _bad(where, f"'hash' {str(obj['hash'])[:30]!r} does not match the input's "
                          f"content hash {h}")
    cov = obj.get("coverage", [])
    if not isinstance(cov, list) or len(cov) > MAX_COVERAGE:
        raise _bad(where, f"'coverage' must be a list of at most {MAX_COVERAGE} keys")
    for k in cov:
        parts = k if isinstance(k, list) else [k]
        if (not parts or len(parts) > 8
                or not all(isinstance(p, str) and len(p) <= MAX_NAME for p in parts)):
            raise _bad(where, "a coverage key must be a string or a short list of strings")
    ncov = obj.get("new_coverage", len(cov))
    if not isinstance(ncov, int) or isinstance(ncov, bool) or not 0 <= ncov < 1 << 31:
        raise _bad(where, "'new_coverage' must be a non-negative integer")
    parent = obj.get("parent")
    if parent is not None and not (isinstance(parent, str) and 0 < len(parent) <= 64
                                   and all(c in "0123456789abcdef" for c in parent)):
        raise _bad(where, "'parent' must be a content hash (hex) or null")
    _name(obj.get("worker"), where, "worker")
    t = obj.get("found_at")
    if t is not None and (not isinstance(t, (int, float)) or isinstance(t, bool)
                          or not math.isfinite(t) or t < 0):
        raise _bad(where, "'found_at' must be a time in seconds since the epoch")
    return {"hash": h, "input": inp, "coverage": cov, "new_coverage": ncov,
            "parent": parent, "worker": obj.get("worker") or "", "found_at": t}


def read(f: IO[bytes], source: str) -> tuple[dict | None, list[dict]]:
    """Read and check a whole JSON-lines corpus: (header or None, entries)."""
    header, entries = None, []
    lineno = total = 0
    while True:
        line = f.readline(MAX_LINE + 1)
        if not line:
            break
        lineno += 1
        total += len(line)
        where = f"{source}:{lineno}"
        if len(line) > MAX_LINE:
            raise _bad(where, f"line longer than the {MAX_LINE}-byte limit")
        if total > MAX_FILE_BYTES:
            raise _bad(where, f"file larger than the {MAX_FILE_BYTES >> 20} MiB import "
                              f"limit (split it: every line stands alone)")
        if not line.strip():
            continue
        obj = _load(line, where)
        if isinstance(obj, dict) and obj.get("format") == FORMAT:
            if header is not None or entries:
                raise _bad(where, "a corpus header is only allowed on the first line")
            header = _check_header(obj, where)
            continue
        if isinstance(obj, dict) and "format" in obj and obj["format"] != inputs.FORMAT:
            raise _bad(where, f"not a migfuzz corpus or input (format "
                              f"{str(obj['format'])[:40]!r})")
        if len(entries) >= MAX_ENTRIES:
            raise _bad(where, f"more than {MAX_ENTRIES} entries in one file")
        entries.append(check_entry(obj, where))
    return header, entries


def _load(line: bytes, where: str) -> Any:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise _bad(where, f"malformed JSON: {e.msg} at column {e.colno}") from None
    except (RecursionError, UnicodeDecodeError) as e:
        raise _bad(where, f"unreadable JSON ({type(e).__name__})") from None
    if inputs._depth(obj, inputs.MAX_DEPTH + 2) > inputs.MAX_DEPTH + 2:
        raise _bad(where, f"nested deeper than {inputs.MAX_DEPTH + 2} levels")
    return obj


def load(path: str) -> tuple[dict | None, list[dict]]:
    try:
        with open(path, "rb") as f:
            return read(f, path)
    except OSError as e:
        raise inputs.InputError(f"{path}: {e.strerror}") from None


def header_line(campaign: str, variant: str, engine_version: str, entries: int) -> str:
    return inputs.canonical({"format": FORMAT, "version": VERSION, "campaign": campaign,
                             "variant": variant, "engine_version": engine_version,
                             "entries": entries}) + "\n"


def entry_line(e: dict) -> str:
    return inputs.canonical({k: e.get(k) for k in sorted(ENTRY_KEYS)}) + "\n"


def write(out: IO[str], header: dict, entries: Iterable[dict]) -> int:
    out.write(header_line(header["campaign"], header["variant"], header["engine_version"],
                          header["entries"]))
    n = 0
    for e in entries:
        out.write(entry_line(e))
        n += 1
    return n
