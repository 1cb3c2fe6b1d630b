"""The lane's host requirements: packages, root, the cache directory, KVM.

Every check that fails raises :class:`LaneError` with one line a person can act on
("run `apt-get install -y X` as root"); the CLI prints it and exits 2.
"""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path


class LaneError(Exception):
    """The lane could not run here (a missing package, no root, a failed build, no boot)."""


@dataclass(frozen=True)
class Release:
    name: str                 # "6.1"
    package: str              # the Debian source package
    tarball: Path | None      # None: resolved by release() (a privately fetched package)
    selftests_subdir: str     # where hmm-tests.c lives under tools/testing/selftests
    # A release the machine's apt sources do not carry: fetched with a PRIVATE apt state
    # (sources.list, lists, cache all under the cache dir; /etc/apt is never written) from
    # this Debian suite, pinned to this exact package version.
    apt_suite: str = ""
    apt_version: str = ""


RELEASES: dict[str, Release] = {
    "6.1": Release("6.1", "linux-source-6.1", Path("/usr/src/linux-source-6.1.tar.xz"), "vm"),
    "6.12": Release("6.12", "linux-source-6.12", Path("/usr/src/linux-source-6.12.tar.xz"), "mm"),
    # Debian sid's linux-source-7.2 (mainline 7.2.13 + Debian patches): the H2b check
    # (docs/kernel-h2b.md). Pinned: a newer sid upload is another source, another cache key.
    "7.2": Release("7.2", "linux-source-7.2", None, "mm", apt_suite="sid",
                   apt_version="7.2.13-1"),
}
DEFAULT_RELEASE = "6.1"

# (how to tell it is there, the Debian package that provides it)
BUILD_TOOLS: list[tuple[str, str]] = [
    ("bin:gcc", "gcc"), ("bin:make", "make"), ("bin:flex", "flex"), ("bin:bison", "bison"),
    ("bin:bc", "bc"), ("bin:xz", "xz-utils"), ("bin:perl", "perl"),
    ("file:/usr/include/libelf.h", "libelf-dev"),
    ("file:/usr/include/openssl/ssl.h", "libssl-dev"),
    ("file:/usr/lib/x86_64-linux-gnu/libc.a", "libc6-dev"),
]
GUEST_TOOLS: list[tuple[str, str]] = [
    ("file:/bin/busybox", "busybox-static"),
    ("bin:qemu-system-x86_64", "qemu-system-x86"),
]


def release(name: str) -> Release:
    if name not in RELEASES:
        raise LaneError(f"unknown release {name!r} (choose from {', '.join(RELEASES)})")
    rel = RELEASES[name]
    if rel.tarball is None and rel.apt_suite:
        rel = replace(rel, tarball=private_apt_dir(rel) / "root" / "usr" / "src"
                      / f"{rel.package}.tar.xz")
    return rel


DEBIAN_MIRROR = "http://deb.debian.org/debian"


def private_apt_dir(rel: Release) -> Path:
    """``<cache>/apt/<suite>/``: this release's own apt state (never /etc/apt)."""
    return cache_dir() / "apt" / rel.apt_suite


def private_apt_options(top: Path) -> list[str]:
    """apt-get options that make apt read ONLY ``top/sources.list`` and keep its package lists
    and downloads under ``top``: the system's sources.list.d is pointed at a path that does not
    exist, so no system source is mixed in and nothing under /etc/apt or /var/lib/apt is
    written. (The system's trusted keys and apt.conf.d, e.g. a proxy, still apply.)"""
    return ["-o", f"Dir::Etc::sourcelist={top / 'sources.list'}",
            "-o", "Dir::Etc::sourceparts=/nonexistent",
            "-o", f"Dir::State::Lists={top / 'lists'}",
            "-o", f"Dir::Cache={top / 'cache'}"]


def private_apt_commands(rel: Release, top: Path) -> list[list[str]]:
    """The two apt-get runs that fetch ``rel``'s package: update the private lists, then
    download exactly the pinned version (``pkg=version``) into the current directory."""
    opts = private_apt_options(top)
    return [["apt-get", *opts, "-q", "update"],
            ["apt-get", *opts, "-q", "download", f"{rel.package}={rel.apt_version}"]]


def deb_fields(deb: Path) -> dict[str, str]:
    r = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version"],
                       capture_output=True, text=True)
    out = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def fetch_private(rel: Release, log=print) -> None:
    """Fetch ``rel``'s source package with the private apt state, check the .deb is the
    pinned package and version, unpack its tarball under ``<cache>/apt/<suite>/root`` and
    record the version (``VERSION`` next to it: what source_id reads)."""
    top = private_apt_dir(rel)
    for d in ("lists/partial", "cache/archives/partial", "debs"):
        (top / d).mkdir(parents=True, exist_ok=True)
    (top / "sources.list").write_text(f"deb {DEBIAN_MIRROR} {rel.apt_suite} main\n")
    debs = top / "debs"
    deb = debs / f"{rel.package}_{rel.apt_version}_all.deb"
    if not deb.is_file():
        for cmd in private_apt_commands(rel, top):
            log(f"{cmd[0]} {cmd[-2]} {cmd[-1]} (private apt state in {top})")
            r = subprocess.run(cmd, cwd=debs, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
            if r.returncode != 0:
                tail = (r.stdout.strip().splitlines() or [""])[-1]
                raise LaneError(f"could not fetch {rel.package}={rel.apt_version} from Debian "
                                f"{rel.apt_suite} ({' '.join(cmd[:1] + cmd[-2:])}): {tail[:160]}")
        found = sorted(debs.glob(f"{rel.package}_*.deb"))
        if not deb.is_file():       # apt escapes ':' in epochs; the pin has none
            raise LaneError(f"apt-get download left {[f.name for f in found]}, not {deb.name}")
    got = deb_fields(deb)
    if got.get("Package") != rel.package or got.get("Version") != rel.apt_version:
        raise LaneError(f"{deb} is {got.get('Package')} {got.get('Version')}, expected "
                        f"{rel.package} {rel.apt_version}")
    root = top / "root"
    r = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True)
    if r.returncode != 0:
        raise LaneError(f"dpkg-deb -x {deb} failed: {r.stderr.strip()[:200]}")
    (top / "VERSION").write_text(rel.apt_version + "\n")


def cache_dir() -> Path:
    base = os.environ.get("MIGFUZZ_CACHE") or str(Path.home() / ".cache" / "migfuzz")
    p = Path(base)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LaneError(f"cannot create the cache directory {p} ({e.strerror}); "
                        f"set MIGFUZZ_CACHE to a writable directory") from e
    return p


def is_root() -> bool:
    return os.geteuid() == 0


def _present(check: str) -> bool:
    kind, _, what = check.partition(":")
    if kind == "bin":
        return shutil.which(what) is not None
    return Path(what).exists()


def missing_packages(checks: list[tuple[str, str]]) -> list[str]:
    return sorted({pkg for check, pkg in checks if not _present(check)})


def apt_install(packages: list[str], log=print) -> None:
    """Install Debian packages as root; not root: one line saying what to install."""
    if not packages:
        return
    cmd = f"apt-get install -y {' '.join(packages)}"
    if not is_root():
        raise LaneError(f"missing packages: run `{cmd}` as root")
    log(f"installing {' '.join(packages)} (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-q", *packages], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:   # a stale package list is the usual reason: update once, retry
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        r = subprocess.run(["apt-get", "install", "-y", "-q", *packages], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        tail = r.stdout.strip().splitlines()[-1:] or [""]
        raise LaneError(f"`{cmd}` failed: {tail[0]}")


def require(checks: list[tuple[str, str]], install: bool = True, log=print) -> None:
    missing = missing_packages(checks)
    if missing and install:
        apt_install(missing, log=log)
        missing = missing_packages(checks)
    if missing:
        raise LaneError(f"missing packages: run `apt-get install -y {' '.join(missing)}` as root")


def package_version(pkg: str) -> str | None:
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                           capture_output=True, text=True)
    except FileNotFoundError:
        return None
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


def source_id(rel: Release) -> str:
    """Which source the tarball holds: the package version (``6.1.192-3``), or, where dpkg
    does not know it, the tarball's size and mtime. Safe for a path: no ``~`` or ``:``."""
    if rel.apt_suite:
        vf = private_apt_dir(rel) / "VERSION"
        ver = vf.read_text().strip() if vf.is_file() else None
        if ver != rel.apt_version:  # not fetched (or another pin): never a guessed id
            raise LaneError(f"{rel.package} {rel.apt_version} is not fetched yet: "
                            f"run `migfuzz kernel build --release {rel.name}`")
    else:
        ver = package_version(rel.package)
    if not ver:
        st = rel.tarball.stat()
        ver = f"tar{st.st_size}-{int(st.st_mtime)}"
    return re.sub(r"[^A-Za-z0-9.+-]", "_", ver)


def elf_is_static(path: Path) -> bool:
    """True when an ELF executable has no PT_INTERP (no dynamic loader needed)."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if hdr[:4] != b"\x7fELF" or hdr[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", hdr, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", hdr, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", table, i * phentsize)
        if p_type == 3:     # PT_INTERP
            return False
    return True


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
