"""Fidelity, checked against source: each model step's kernel function, fingerprinted.

The table ``fuzzer/kernel/sources.toml`` (shipped as package data of ``migfuzz.fuzzer.kernel``)
names, for every step (site string) of the model, the kernel file and function it follows in
each release, and for the releases whose Debian source package installs here (6.1.192,
6.12.117) a fingerprint of that function's text. This module is the mechanics:

* a C lexer good enough to find a function definition by name (brace matching that skips
  strings, character literals, comments and preprocessor lines, and counts only the first
  arm of an ``#if``/``#else``, as ctags does);
* the fingerprint: the first 12 hex digits of sha256 over the function's tokens joined by
  one space, so a comment or whitespace edit does not change it and any token edit does;
* the check: every step whose recorded fingerprint differs from the source's is *stale*
  (the kernel changed what the model follows: read the function again, then refresh).

``migfuzz model check-source`` / ``migfuzz model steps`` (migfuzz/commands/model.py) are the
command line. Bad input (unknown release, no source, a function that is not in its file)
raises :class:`SourceError`: one line, exit 2.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# hex digits of sha256 kept: 48 bits; two of a release's 49 functions colliding has odds
# of about 49**2 / 2**49, 4e-12
FP_LEN = 12
TABLE_NAME = "sources.toml"


class SourceError(Exception):
    """The check could not run: unknown release, source not installed, a table entry that
    names a function its file does not define, a malformed table. One line, exit 2."""


# ---- the C lexer -------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    text: str
    start: int          # offset in the file
    pp: int             # 0: code; else the number of the preprocessor directive it is in


_IDENT = re.compile(r"[A-Za-z0-9_]+")
_SPACE = re.compile(r"[ \t\f\v\r]+")


def tokenize(src: str) -> list[Token]:
    """C tokens without comments. Identifiers and numbers are runs of [A-Za-z0-9_]; string
    and character literals are one token each (escapes honoured, so a quote or brace inside
    one is not code); every other character is a token of its own. A line whose first
    token is ``#`` is a preprocessor directive, to its end or past its backslash
    continuations; its tokens carry the directive's number in ``pp``."""
    out: list[Token] = []
    i, n = 0, len(src)
    line_start = True           # only whitespace or comments since the last newline
    pp = 0                      # the directive being read, 0 outside one
    ndirectives = 0
    while i < n:
        c = src[i]
        if c == "\n":
            pp = 0
            line_start = True
            i += 1
            continue
        if c == "\\" and src.startswith("\n", i + 1):      # line continuation
            i += 2
            continue
        if c in " \t\f\v\r":
            i = _SPACE.match(src, i).end()
            continue
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if src.startswith("//", i):
            j = i           # to the end of the line; a backslash before it continues it
            while True:
                j = src.find("\n", j)
                if j < 0 or src[j - 1] != "\\":
                    break
                j += 1
            i = n if j < 0 else j
            continue
        if c == "#" and line_start:
            ndirectives += 1
            pp = ndirectives
        line_start = False
        if c == '"' or c == "'":
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(Token(src[i:j], i, pp))
            i = j
            continue
        m = _IDENT.match(src, i)
        if m:
            out.append(Token(m.group(), i, pp))
            i = m.end()
            continue
        out.append(Token(c, i, pp))
        i += 1
    return out


def _depths(toks: list[Token]) -> list[int]:
    """The brace depth before each token. Directive tokens do not count; at #else/#elif
    the depth goes back to what it was at the #if, and at #endif it becomes what the first
    arm left, so code written twice for two configurations is counted once."""
    depths = [0] * len(toks)
    depth = 0
    stack: list[list] = []           # [depth at #if, depth after the first arm or None]
    for i, t in enumerate(toks):
        depths[i] = depth
        if t.pp:
            if t.text == "#" and (i == 0 or toks[i - 1].pp != t.pp):
                name = toks[i + 1].text if i + 1 < len(toks) and toks[i + 1].pp == t.pp else ""
                if name in ("if", "ifdef", "ifndef"):
                    stack.append([depth, None])
                elif name in ("else", "elif", "elifdef", "elifndef") and stack:
                    if stack[-1][1] is None:
                        stack[-1][1] = depth
                    depth = stack[-1][0]
                elif name == "endif" and stack:
                    _, first = stack.pop()
                    if first is not None:
                        depth = first
        elif t.text == "{":
            depth += 1
        elif t.text == "}":
            depth = max(0, depth - 1)
    return depths


def _skip_parens(toks: list[Token], code: list[int], k: int) -> int:
    """``code[k]`` is '(': the index in ``code`` of its matching ')' (len(code) if none)."""
    depth = 0
    while k < len(code):
        x = toks[code[k]].text
        if x == "(":
            depth += 1
        elif x == ")":
            depth -= 1
            if depth == 0:
                return k
        elif x in (";", "{", "}"):
            return len(code)         # not a parameter list
        k += 1
    return k


class CFile:
    """One C file, lexed once: find any number of function definitions in it."""

    def __init__(self, src: str):
        self.toks = tokenize(src)
        self.depths = _depths(self.toks)
        self.code = [i for i, t in enumerate(self.toks) if not t.pp]
        # name -> positions in self.code where the identifier sits at depth 0
        self.top: dict[str, list[int]] = {}
        for ci, ti in enumerate(self.code):
            if self.depths[ti] == 0 and _IDENT.fullmatch(self.toks[ti].text):
                self.top.setdefault(self.toks[ti].text, []).append(ci)

    def definitions(self, name: str) -> list[str]:
        """The normalized text (tokens joined by one space) of every top-level definition
        of function ``name``, in file order (a function written twice, once per #ifdef
        arm, has two). A definition is ``name`` at brace depth 0, outside a directive,
        followed by a balanced parameter list, optional attribute macros
        (``__releases(ptl)``) and ``{``. Its text starts after the previous top-level
        ``;``, ``}`` or directive (so the storage class and return type come with it,
        however many lines they take) and ends at the brace that closes the body;
        directives inside the body are part of it."""
        toks, code, depths = self.toks, self.code, self.depths
        found: list[str] = []
        for ci in self.top.get(name, ()):
            ti = code[ci]
            if ci + 1 >= len(code) or toks[code[ci + 1]].text != "(":
                continue
            if ci and toks[code[ci - 1]].text in (".", ">"):
                continue                 # a member: ops->name(...)
            k = _skip_parens(toks, code, ci + 1) + 1
            while k < len(code):         # attribute macros between ')' and '{'
                x = toks[code[k]].text
                if x == "(":
                    k = _skip_parens(toks, code, k) + 1
                elif _IDENT.fullmatch(x):
                    k += 1
                else:
                    break
            if k >= len(code) or toks[code[k]].text != "{":
                continue                 # a prototype (';') or a use (',', ')', '=' ...)
            open_ti = code[k]
            end_ti = next((j for j in range(open_ti + 1, len(toks))
                           if not toks[j].pp and toks[j].text == "}" and depths[j] == 1),
                          None)
            if end_ti is None:
                continue
            s = ti
            while s > 0:
                prev = toks[s - 1]
                if prev.pp or prev.text in (";", "}", "{"):
                    break
                s -= 1
            found.append(" ".join(tok.text for tok in toks[s:end_ti + 1]))
        return found


def find_definitions(src: str, name: str) -> list[str]:
    """:meth:`CFile.definitions` of one name in ``src``."""
    return CFile(src).definitions(name)


def fingerprint(definitions: list[str]) -> str:
    """A function's fingerprint: sha256 over every definition of it in its file (normalized
    token text, in file order), the first FP_LEN hex digits."""
    return hashlib.sha256("\n".join(definitions).encode()).hexdigest()[:FP_LEN]


# ---- the table ---------------------------------------------------------------------------

_FP = re.compile(r"[0-9a-f]{%d}" % FP_LEN)


@dataclass(frozen=True)
class Entry:
    """What one step follows in one release."""
    site: str
    release: str
    file: str = ""
    function: str = ""
    fingerprint: str = ""       # "" where the release has no source to fingerprint
    absent: str = ""            # why the release has no such step

    @property
    def where(self) -> str:
        return f"{self.file}:{self.function}"


@dataclass
class Table:
    path: Path
    releases: dict[str, dict]                     # release -> {source, package} or {note}
    steps: dict[str, dict[str, Entry]] = field(default_factory=dict)   # site -> release -> ...
    model: dict[str, str] = field(default_factory=dict)               # site -> why

    @property
    def fingerprinted(self) -> list[str]:
        return [r for r, v in self.releases.items() if "source" in v]

    def sites(self) -> list[str]:
        return sorted(set(self.steps) | set(self.model))

    def entries(self, release: str) -> list[Entry]:
        """The steps that follow a function in ``release``, by site."""
        return [e for site in sorted(self.steps) if (e := self.steps[site].get(release))
                and not e.absent]

    def covers(self, site: str) -> bool:
        """True when ``site`` has a row, or is a branch a primitive derives from one
        ("collect:trylock:busy" from "collect:trylock")."""
        if site in self.steps or site in self.model:
            return True
        base = site.rpartition(":")[0]
        return bool(base) and (base in self.steps or base in self.model)


def table_path() -> Path:
    """The table shipped with the model (package data of migfuzz.fuzzer.kernel)."""
    res = importlib.resources.files("migfuzz.fuzzer.kernel") / TABLE_NAME
    with importlib.resources.as_file(res) as p:     # a real file in any unzipped install
        return Path(p)


def load_table(path: Path | None = None) -> Table:
    """Read and validate the table; any problem is a SourceError naming the step."""
    path = Path(path) if path is not None else table_path()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SourceError(f"no step table at {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise SourceError(f"{path}: not valid TOML ({e})") from None
    extra = set(data) - {"releases", "step"}
    if extra:
        raise SourceError(f"{path}: unknown top-level key(s) {', '.join(sorted(extra))}")
    releases = data.get("releases", {})
    for r, v in releases.items():
        if not isinstance(v, dict) or not ({"source", "note"} & set(v)):
            raise SourceError(f"{path}: release {r!r} needs a source or a note")
    t = Table(path, releases)
    fp_releases = set(t.fingerprinted)
    for site, row in data.get("step", {}).items():
        where = f"{path}: step {site!r}"
        if not isinstance(row, dict):
            raise SourceError(f"{where}: not a table")
        if "model" in row:
            if set(row) != {"model"} or not isinstance(row["model"], str) or not row["model"]:
                raise SourceError(f"{where}: a model step has only model = \"why\"")
            t.model[site] = row["model"]
            continue
        entries: dict[str, Entry] = {}
        for r, v in row.items():
            if r not in releases:
                raise SourceError(f"{where}: unknown release {r!r} (the [releases] table "
                                  f"has {', '.join(releases)})")
            if not isinstance(v, dict):
                raise SourceError(f"{where}: {r} must be an inline table")
            if "absent" in v:
                if set(v) != {"absent"}:
                    raise SourceError(f"{where}: {r} is either absent or names a function")
                entries[r] = Entry(site, r, absent=str(v["absent"]))
                continue
            keys = {"file", "function"} | ({"fingerprint"} if r in fp_releases else set())
            if set(v) != keys:
                raise SourceError(f"{where}: {r} needs exactly {', '.join(sorted(keys))}")
            fp = v.get("fingerprint", "")
            if r in fp_releases and fp and not _FP.fullmatch(fp):
                raise SourceError(f"{where}: {r} fingerprint {fp!r} is not {FP_LEN} hex "
                                  f"digits")
            entries[r] = Entry(site, r, v["file"], v["function"], fp)
        missing = fp_releases - set(entries)
        if missing:
            raise SourceError(f"{where}: no entry for {', '.join(sorted(missing))} (name the "
                              f"function, or say absent = \"why\")")
        t.steps[site] = entries
    return t


# ---- the check ---------------------------------------------------------------------------

@dataclass
class Stale:
    entry: Entry
    source_fp: str

    def line(self) -> str:
        e = self.entry
        return (f"stale: {e.site} follows {e.where}, table {e.fingerprint or '(none)'} "
                f"source {self.source_fp}")


def release_source(table: Table, release: str, source: Path | None = None,
                   log=None) -> Path:
    """The kernel tree to check ``release`` against: ``source`` if given, else the release's
    Debian source package, unpacked once into the cache (kernels.build.source_dir)."""
    if release not in table.releases:
        raise SourceError(f"unknown release {release!r} (the table has "
                          f"{', '.join(table.releases)})")
    if source is not None:
        source = Path(source)
        if not source.is_dir():
            raise SourceError(f"--source {source}: not a directory")
        return source
    rel = table.releases[release]
    if "source" not in rel:
        raise SourceError(f"release {release} has no source package here (fingerprinted: "
                          f"{', '.join(table.fingerprinted)}); pass --source DIR, a "
                          f"{release} tree")
    from migfuzz.kernels.build import source_dir
    from migfuzz.kernels.env import LaneError
    from migfuzz.kernels.env import release as lane_release
    try:
        lr = lane_release(rel["source"])
    except LaneError as e:
        raise SourceError(f"release {release}: {e}") from None
    if not lr.tarball.is_file():
        # said, not installed: a check does not change the machine (make check-source and
        # kernels/ci-lane.sh install it)
        raise SourceError(f"the source of {release} is not installed ({lr.tarball} is "
                          f"missing): run `apt-get install -y {lr.package}` as root")
    try:
        src, _ = source_dir(rel["source"], **({"log": log} if log else {}))
    except LaneError as e:
        raise SourceError(str(e)) from None
    return src


def source_fingerprints(table: Table, release: str, root: Path) -> dict[tuple[str, str], str]:
    """(file, function) -> fingerprint in the tree ``root``, for every function a step of
    ``release`` follows. A file or function that is not there is a SourceError (one line
    naming it and the steps that follow it)."""
    by_file: dict[str, set[str]] = {}
    for e in table.entries(release):
        by_file.setdefault(e.file, set()).add(e.function)
    out: dict[tuple[str, str], str] = {}
    missing: list[tuple[str, list[str]]] = []      # (what, the steps that follow it)
    for f in sorted(by_file):
        try:
            cf = CFile((root / f).read_text(errors="replace"))
        except (FileNotFoundError, NotADirectoryError):
            users = [e.site for e in table.entries(release) if e.file == f]
            missing.append((f"file {f}", users))
            continue
        for fn in sorted(by_file[f]):
            defs = cf.definitions(fn)
            if not defs:
                users = [e.site for e in table.entries(release)
                         if e.file == f and e.function == fn]
                missing.append((f"function {fn} in {f}", users))
                continue
            out[(f, fn)] = fingerprint(defs)
    if missing:
        what, users = missing[0]
        shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
        more = (f"; {len(missing) - 1} more missing: "
                + ", ".join(w for w, _ in missing[1:4]) if len(missing) > 1 else "")
        raise SourceError(f"{release}: {what} not found under {root} (followed by "
                          f"{shown}){more}")
    return out


def check(table: Table, release: str, root: Path) -> tuple[list[Entry], list[Stale]]:
    """(every step checked, the stale ones) for ``release`` against the tree ``root``."""
    fps = source_fingerprints(table, release, root)
    entries = table.entries(release)
    stale = [Stale(e, fps[(e.file, e.function)]) for e in entries
             if fps[(e.file, e.function)] != e.fingerprint]
    return entries, stale


def update(table: Table, release: str, root: Path) -> int:
    """Rewrite ``release``'s fingerprints in the table file from the tree ``root``, in
    place (only the fingerprint values change; comments and layout stay), atomically.
    Returns how many entries changed."""
    fps = source_fingerprints(table, release, root)
    text = table.path.read_text()
    lines = text.split("\n")
    site = None
    head = re.compile(r'^\[step\."((?:[^"\\]|\\.)*)"\]\s*$')
    key = re.compile(r'^"%s"\s*=' % re.escape(release))
    changed = 0
    for i, line in enumerate(lines):
        m = head.match(line)
        if m:
            site = m.group(1)
            continue
        if line.startswith("["):
            site = None
            continue
        if site is None or not key.match(line):
            continue
        e = table.steps.get(site, {}).get(release)
        if e is None or e.absent:
            continue
        new_fp = fps[(e.file, e.function)]
        new = re.sub(r'fingerprint\s*=\s*"[^"]*"', f'fingerprint = "{new_fp}"', line)
        if new != line:
            lines[i] = new
            changed += 1
    if changed:
        _write_atomic(table.path, "\n".join(lines))
    return changed


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def source_version(root: Path) -> str:
    """The kernel version a tree declares in its Makefile (6.1.192), "" if unreadable."""
    from migfuzz.kernels.build import kernel_version
    try:
        v = kernel_version(root)
    except OSError:
        return ""
    return "" if "?" in v else v
