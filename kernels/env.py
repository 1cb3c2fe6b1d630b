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
from dataclasses import dataclass
from pathlib import Path


class LaneError(Exception):
    """The lane could not run here (a missing package, no root, a failed build, no boot)."""


@dataclass(frozen=True)
class Release:
    name: str                 # "6.1"
    package: str              # the Debian source package
    tarball: Path
    selftests_subdir: str     # where hmm-tests.c lives under tools/testing/selftests


RELEASES: dict[str, Release] = {
    "6.1": Release("6.1", "linux-source-6.1", Path("/usr/src/linux-source-6.1.tar.xz"), "vm"),
    "6.12": Release("6.12", "linux-source-6.12", Path("/usr/src/linux-source-6.12.tar.xz"), "mm"),
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
    return RELEASES[name]


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
