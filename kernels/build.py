"""Build a kernel from Debian's source package with a config fragment from the repo, once.

Cache layout under ``$MIGFUZZ_CACHE`` (default ``~/.cache/migfuzz``)::

    src/<release>_<package version>/linux-source-<release>/   unpacked source (+ .unpacked)
    build/<key>/                     the ``make O=`` directory: .config, objects, bzImage,
                                     migfuzz-build.log, done.json (written last, atomically)
    build/<key>.lock                 flock: one build of a key at a time

``<key>`` = ``<release>-<package version>-<config>-<hash of recipe + merged fragment>``:
the same source version and config give the same key, any change gives another one. An entry
without ``done.json`` is not a built kernel (a failed or interrupted build; the next build
resumes it with make's own incremental rebuild).

Source patches (``patches=("mf_sched",)``, ``--patch mf_sched``): the build runs on a patched
copy of the source, ``src/<release>_<package version>+<patch>-<hash>/linux-source-<release>/``
(a hard-link copy of the unpacked tree, ``cp -al``, with each changed file replaced by a new
file, so the shared tree is never written), and its key is
``<release>-<package version>-<config>+<patch>-<hash>`` where the hash also covers the patch's
name and the content of its files (editing the patch gives another key). Without patches the
key is exactly the unpatched one.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from migfuzz.kernels import config as kconfig
from migfuzz.kernels.env import (BUILD_TOOLS, LaneError, Release, apt_install, cache_dir,
                                 fetch_private, private_apt_dir, release, require, say,
                                 source_id)

# Bump when the way a kernel is built changes (so old cache entries are not reused).
RECIPE_VERSION = 1
# Kbuild's progress lines ("  CC      mm/migrate.o"): one per step.
_STEP = re.compile(r"^\s{2}([A-Z][A-Z0-9_]{1,9})\s+\S")
# Steps a cold build of each release's base config takes (measured here), for the estimate.
EXPECTED_STEPS = {("6.1", "base"): 1470, ("6.12", "base"): 1570, ("7.2", "base"): 1650,
                  ("6.1", "kasan"): 1480, ("6.12", "kasan"): 1580}


@dataclass
class BuiltKernel:
    release: str
    config: str
    key: str
    source_version: str          # package version, e.g. 6.1.192-3
    kernel_version: str          # from the source Makefile, e.g. 6.1.192
    bzimage: str
    build_dir: str
    log: str
    wall_s: float
    cpu_s: float
    steps: int
    jobs: int
    built_at: str
    cached: bool = False
    patches: list = field(default_factory=list)   # source patches applied (PATCHES names)
    seeded_from: str = ""       # build_seeded(): the key whose objects were reused

    def to_json(self) -> dict:
        return asdict(self)


PATCH_DIR = Path(__file__).resolve().parent / "patches"
# Source patches: name -> (files whose content is the patch, the source files it replaces).
# A patch is applied by ``_apply_<name>(src_root, changed_file, out_file)``.
PATCHES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "mf_sched": (("apply_mf_sched.py", "mf_sched.c"), ("mm/migrate_device.c",)),
    # the H2b fix (7.2): the folio reference taken under the PTL (docs/kernel-h2b.md);
    # with mf_sched too, the fix is applied first (sorted names) and mf_sched on top of it
    "h2b_fix": (("apply_h2b_fix.py",), ("mm/migrate_device.c",)),
}


def check_patches(patches) -> tuple[str, ...]:
    """Validated, deduplicated, sorted patch names; raises LaneError on an unknown one."""
    out = []
    for p in patches or ():
        if p not in PATCHES:
            raise LaneError(f"unknown patch {p!r} (known: {', '.join(sorted(PATCHES))})")
        if p not in out:
            out.append(p)
    return tuple(sorted(out))


def patch_hash(name: str, patch_dir: Path | None = None) -> str:
    """sha256 over the patch's name and its files' names and content."""
    d = patch_dir or PATCH_DIR
    h = hashlib.sha256(f"patch {name}\n".encode())
    for fname in PATCHES[name][0]:
        data = (d / fname).read_bytes()
        h.update(f"{fname} {len(data)}\n".encode())
        h.update(data)
    return h.hexdigest()


def cache_key(release_name: str, source_version: str, config_name: str,
              fragments: list[tuple[str, str]], patches=(),
              patch_dir: Path | None = None) -> str:
    text = (f"recipe{RECIPE_VERSION}\n{release_name}\n{source_version}\n"
            f"{kconfig.config_hash(fragments)}")
    patches = check_patches(patches)
    if not patches:             # exactly the unpatched key (existing cache entries stay hits)
        h = hashlib.sha256(text.encode()).hexdigest()[:12]
        return f"{release_name}-{source_version}-{config_name}-{h}"
    for p in patches:
        text += f"\npatch {p} {patch_hash(p, patch_dir)}"
    h = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{release_name}-{source_version}-{config_name}+{'+'.join(patches)}-{h}"


@contextmanager
def file_lock(path: Path, what: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for {what} (another process holds {path})")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_tarball(rel: Release) -> None:
    if rel.apt_suite:       # a package the system's apt sources do not carry
        if not rel.tarball.is_file() or not (private_apt_dir(rel) / "VERSION").is_file():
            fetch_private(rel, log=say)
    elif not rel.tarball.is_file():
        apt_install([rel.package], log=say)
        if not rel.tarball.is_file():
            raise LaneError(f"{rel.package} installed but {rel.tarball} is missing")


def kernel_version(src: Path) -> str:
    vals = {}
    with open(src / "Makefile") as f:
        for line in f:
            m = re.match(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d+)", line)
            if m:
                vals[m.group(1)] = m.group(2)
            if len(vals) == 3:
                break
    return f"{vals.get('VERSION', '?')}.{vals.get('PATCHLEVEL', '?')}.{vals.get('SUBLEVEL', '?')}"


def source_dir(release_name: str, log=say) -> tuple[Path, str]:
    """Unpack the release's source tarball into the cache once; (source root, source id)."""
    rel = release(release_name)
    ensure_tarball(rel)
    sid = source_id(rel)
    top = cache_dir() / "src" / f"{rel.name}_{sid}"
    src = top / f"linux-source-{rel.name}"
    if (top / ".unpacked").exists() and src.is_dir():
        return src, sid
    with file_lock(cache_dir() / "src" / f"{rel.name}_{sid}.lock", f"unpacking {rel.package}"):
        if (top / ".unpacked").exists() and src.is_dir():
            return src, sid
        t0 = time.monotonic()
        log(f"unpacking {rel.tarball} into {top}")
        top.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["tar", "-xJf", str(rel.tarball), "-C", str(top)],
                           capture_output=True, text=True)
        if r.returncode != 0 or not src.is_dir():
            raise LaneError(f"could not unpack {rel.tarball}: {r.stderr.strip()[:200]}")
        (top / ".unpacked").write_text(f"{time.time()}\n")
        log(f"unpacked in {time.monotonic() - t0:.0f}s")
    return src, sid


def _apply_script(name: str, src: Path, changed: str, out: Path) -> None:
    """Run the patch's ``apply_<name>.py SRC OUT``; a refusal is one LaneError line."""
    script = PATCH_DIR / f"apply_{name}.py"
    r = subprocess.run([sys.executable, str(script), str(src / changed), str(out)],
                       capture_output=True, text=True)
    if r.returncode != 0 or not out.is_file():
        msg = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        raise LaneError(f"patch {name} does not apply to {src / changed}: {msg[:200]}")


def _apply_mf_sched(src: Path, changed: str, out: Path) -> None:
    _apply_script("mf_sched", src, changed, out)


def _apply_h2b_fix(src: Path, changed: str, out: Path) -> None:
    _apply_script("h2b_fix", src, changed, out)


def patched_source_dir(release_name: str, patches, log=say) -> tuple[Path, str]:
    """A patched copy of the unpacked source (made once); (source root, source id).

    The copy is ``cp -al`` (hard links, cheap); each file a patch changes is written to a new
    file and renamed over its link, so the shared unpacked tree is never modified."""
    patches = check_patches(patches)
    src, sid = source_dir(release_name, log=log)
    if not patches:
        return src, sid
    tag = "+".join(f"{p}-{patch_hash(p)[:12]}" for p in patches)
    top = src.parent.parent / f"{src.parent.name}+{tag}"
    dst = top / src.name
    if (top / ".patched").exists() and dst.is_dir():
        return dst, sid
    with file_lock(top.parent / f"{top.name}.lock", f"patching {src.parent.name} ({tag})"):
        if (top / ".patched").exists() and dst.is_dir():
            return dst, sid
        if top.exists():
            shutil.rmtree(top)
        top.mkdir(parents=True)
        log(f"copying {src} (hard links) into {top} and applying {', '.join(patches)}")
        r = subprocess.run(["cp", "-al", str(src), str(dst)], capture_output=True, text=True)
        if r.returncode != 0:
            raise LaneError(f"could not copy {src} to {dst}: {r.stderr.strip()[:200]}")
        for p in patches:
            for changed in PATCHES[p][1]:
                target = dst / changed
                tmp = target.with_name(target.name + ".mf-new")
                globals()[f"_apply_{p}"](dst, changed, tmp)
                os.replace(tmp, target)     # replaces the link, not the shared file
        (top / ".patched").write_text(f"{time.time()}\n")
    return dst, sid


def cached_kernel(release_name: str, config_name: str = "base",
                  patches=()) -> BuiltKernel | None:
    """The cached build for this release/config (and patches), or None (never builds)."""
    rel = release(release_name)
    if not rel.tarball.is_file():
        return None
    try:
        sid = source_id(rel)
    except LaneError:       # a private fetch that did not finish: nothing cached
        return None
    key = cache_key(rel.name, sid, config_name, kconfig.fragment_texts(config_name), patches)
    done = cache_dir() / "build" / key / "done.json"
    if not done.is_file():
        return None
    bk = BuiltKernel(**json.loads(done.read_text()))
    bk.cached = True
    return bk if Path(bk.bzimage).is_file() else None


def _run_make(args: list[str], src: Path, logf, label: str, expected: int,
              log=say, every_s: float = 60.0, wrap=()) -> tuple[int, int, float]:
    """Run make (under ``wrap``, a command prefix, if given), copy its output to the log,
    print progress; (returncode, steps, cpu seconds)."""
    proc = subprocess.Popen([*wrap, "make", "-C", str(src), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace",
                            stdin=subprocess.DEVNULL)
    t0 = time.monotonic()
    last = t0
    steps = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        logf.write(line)
        if _STEP.match(line):
            steps += 1
        now = time.monotonic()
        if expected and now - last >= every_s:
            last = now
            pct = min(99, int(100 * steps / expected)) if expected else 0
            log(f"[{label}] {steps} steps (~{pct}% of ~{expected}), "
                f"{int(now - t0) // 60}m{int(now - t0) % 60:02d}s")
    proc.stdout.close()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, steps, ru.ru_utime + ru.ru_stime


def build(release_name: str, config_name: str = "base", jobs: int | None = None,
          log=say, patches=()) -> BuiltKernel:
    """Build (or reuse) the release's bzImage with the named config and source patches
    (PATCHES names; applied to a copy of the source); raises LaneError."""
    rel = release(release_name)
    patches = check_patches(patches)
    fragments = kconfig.fragment_texts(config_name)
    ensure_tarball(rel)
    key = cache_key(rel.name, source_id(rel), config_name, fragments, patches)
    bdir = cache_dir() / "build" / key
    done = bdir / "done.json"
    if done.is_file():
        bk = cached_kernel(release_name, config_name, patches)
        if bk:
            return bk
    require(BUILD_TOOLS, log=log)
    src, sid = patched_source_dir(release_name, patches, log=log)
    jobs = jobs or os.cpu_count() or 1
    with file_lock(cache_dir() / "build" / f"{key}.lock", f"the build of {key}"):
        if done.is_file():          # another process built it while we waited
            bk = cached_kernel(release_name, config_name, patches)
            if bk:
                return bk
        bdir.mkdir(parents=True, exist_ok=True)
        logpath = bdir / "migfuzz-build.log"
        label = f"build {rel.name} {config_name}" + "".join(f"+{p}" for p in patches)
        t0 = time.monotonic()
        cpu = 0.0
        with open(logpath, "a", buffering=1) as logf:
            logf.write(f"\n=== migfuzz kernel build {key} at {time.ctime()} ===\n")
            logf.flush()
            # configure: tinyconfig, the fragment on top, olddefconfig; then check it stuck
            rc, _, c = _run_make([f"O={bdir}", kconfig.STARTING_POINT], src, logf, label, 0, log)
            cpu += c
            if rc != 0:
                raise LaneError(f"`make {kconfig.STARTING_POINT}` failed; see {logpath}")
            wanted = kconfig.merge(fragments)
            with open(bdir / ".config", "a") as cf:
                cf.write("\n# migfuzz fragments: " + ", ".join(n for n, _ in fragments) + "\n")
                cf.write(kconfig.render(wanted))
            rc, _, c = _run_make([f"O={bdir}", "olddefconfig"], src, logf, label, 0, log)
            cpu += c
            if rc != 0:
                raise LaneError(f"`make olddefconfig` failed; see {logpath}")
            lost = kconfig.dropped(wanted, kconfig.parse_dotconfig((bdir / ".config").read_text()))
            if lost:
                raise kconfig.ConfigError(
                    f"Kconfig dropped options of config {config_name!r} on {rel.name}: "
                    f"{kconfig.format_dropped(lost)} (see {bdir / '.config'})")
            expected = EXPECTED_STEPS.get((rel.name, config_name), 1200)
            log(f"[{label}] make -j{jobs} bzImage in {bdir} (log: {logpath})")
            logf.flush()
            rc, steps, c = _run_make([f"O={bdir}", f"-j{jobs}", "bzImage"], src, logf, label,
                                     expected, log)
            cpu += c
        wall = time.monotonic() - t0
        bz = bdir / "arch" / "x86" / "boot" / "bzImage"
        if rc != 0 or not bz.is_file():
            raise LaneError(f"kernel build failed ({label[6:]}); log: {logpath}")
        bk = BuiltKernel(release=rel.name, config=config_name, key=key, source_version=sid,
                         kernel_version=kernel_version(src), bzimage=str(bz),
                         build_dir=str(bdir), log=str(logpath), wall_s=round(wall, 1),
                         cpu_s=round(cpu, 1), steps=steps, jobs=jobs,
                         built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         patches=list(patches))
        tmp = done.with_suffix(".tmp")
        tmp.write_text(json.dumps(bk.to_json(), indent=1) + "\n")
        os.replace(tmp, done)
        log(f"[{label}] built {bz} in {wall / 60:.1f} min wall, {cpu / 60:.1f} CPU-min, "
            f"{steps} steps")
        return bk


def build_seeded(release_name: str, config_name: str = "base", patches=(), seed_patches=(),
                 jobs: int | None = None, log=say) -> BuiltKernel:
    """Build ``patches`` incrementally from the finished build of ``seed_patches`` (same
    release, config and source version); the result is the same cache entry a cold
    ``build(release, config, patches=patches)`` makes, with ``seeded_from`` set.

    Why: a cold 7.2 build took ~35 min on the loaded 2-core host (bench/results/kernel.md),
    and the h2b_fix+mf_sched kernel differs from the mf_sched one in one file. Kbuild's
    command lines carry the absolute source path, so a copied object directory built against
    another patched copy would rebuild everything; instead make runs in a private mount
    namespace (``unshare -m``, root) where the new patched tree is bind-mounted over the
    seed's source path: same paths, and only the files the patches change (fresh files with
    a new mtime) and what depends on them are rebuilt. Refused (LaneError) unless both patch
    sets change only the same files and ``mm/`` objects were recompiled for them."""
    rel = release(release_name)
    patches, seed_patches = check_patches(patches), check_patches(seed_patches)
    changed = {f for p in patches + seed_patches for f in PATCHES[p][1]}
    if patches == seed_patches:
        raise LaneError("build_seeded: the seed is the build itself")
    if not patches:     # its tree is the shared unpacked one: its files must not be touched
        raise LaneError("build_seeded: an unpatched build is built cold (kernel build)")
    bk = cached_kernel(release_name, config_name, patches)
    if bk:
        return bk
    seed = cached_kernel(release_name, config_name, seed_patches)
    if seed is None:
        raise LaneError(f"build_seeded: no finished {release_name} {config_name}"
                        f"{''.join('+' + p for p in seed_patches)} build to start from")
    fragments = kconfig.fragment_texts(config_name)
    key = cache_key(rel.name, source_id(rel), config_name, fragments, patches)
    bdir = cache_dir() / "build" / key
    done = bdir / "done.json"
    seed_src, _ = patched_source_dir(release_name, seed_patches, log=log)
    new_src, sid = patched_source_dir(release_name, patches, log=log)
    now = time.time()
    for f in changed:           # fresh files (never links to the shared tree): safe to touch
        os.utime(new_src / f, (now, now))
    jobs = jobs or os.cpu_count() or 1
    with file_lock(cache_dir() / "build" / f"{key}.lock", f"the build of {key}"):
        if done.is_file():
            bk = cached_kernel(release_name, config_name, patches)
            if bk:
                return bk
        if bdir.exists():
            shutil.rmtree(bdir)
        t0 = time.monotonic()
        r = subprocess.run(["cp", "-a", seed.build_dir, str(bdir)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise LaneError(f"could not copy {seed.build_dir}: {r.stderr.strip()[:200]}")
        (bdir / "done.json").unlink(missing_ok=True)
        label = f"build {rel.name} {config_name}" + "".join(f"+{p}" for p in patches)
        logpath = bdir / "migfuzz-build.log"
        wrap = ["unshare", "-m", "sh", "-c",
                'mount --bind "$1" "$2" || exit 97; shift 2; exec "$@"', "sh",
                str(new_src), str(seed_src)]
        with open(logpath, "a", buffering=1) as logf:
            logf.write(f"\n=== migfuzz kernel build {key} at {time.ctime()}: seeded from "
                       f"{seed.key}, {new_src} bind-mounted over {seed_src} ===\n")
            logf.flush()
            log(f"[{label}] make -j{jobs} bzImage seeded from {seed.key} (log: {logpath})")
            rc, steps, cpu = _run_make([f"O={bdir}", f"-j{jobs}", "bzImage"], seed_src, logf,
                                       label, 0, log, wrap=wrap)
        wall = time.monotonic() - t0
        bz = bdir / "arch" / "x86" / "boot" / "bzImage"
        if rc == 97:
            raise LaneError("build_seeded needs a private mount namespace (unshare -m, root)")
        text = logpath.read_text(errors="replace").split("seeded from")[-1]
        missing = [f for f in changed
                   if not re.search(rf"^\s+CC\s+{re.escape(f[:-2])}\.o$", text, re.M)]
        if rc != 0 or not bz.is_file() or missing:
            raise LaneError(f"seeded build failed ({label[6:]}"
                            f"{'; not recompiled: ' + ', '.join(missing) if missing else ''});"
                            f" log: {logpath}")
        bk = BuiltKernel(release=rel.name, config=config_name, key=key, source_version=sid,
                         kernel_version=kernel_version(new_src), bzimage=str(bz),
                         build_dir=str(bdir), log=str(logpath), wall_s=round(wall, 1),
                         cpu_s=round(cpu, 1), steps=steps, jobs=jobs,
                         built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         patches=list(patches), seeded_from=seed.key)
        tmp = done.with_suffix(".tmp")
        tmp.write_text(json.dumps(bk.to_json(), indent=1) + "\n")
        os.replace(tmp, done)
        log(f"[{label}] built {bz} in {wall / 60:.1f} min wall ({steps} steps, seeded)")
        return bk
