"""The guest's root file system: a gzip'd ``newc`` cpio written here, byte for byte
deterministic (fixed mtimes, owners and inode numbers, sorted entries, gzip mtime 0).

Contents: ``/bin/busybox`` (busybox-static) and its applet links, ``/dev/console``, the
mount points, ``/init`` (mounts proc, sysfs, devtmpfs, debugfs, a tmpfs on /tmp and
hugetlbfs, prints ``MIGFUZZ {"event": "init", ...}``, runs the script, prints
``MIGFUZZ {"event": "done"}`` and reboots, which ends QEMU under ``-no-reboot``), the
kernel's own ``hmm-tests`` built statically from the same source, and any guest programs.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from migfuzz.kernels.env import GUEST_TOOLS, LaneError, cache_dir, elf_is_static, release, require, say

BUSYBOX = Path("/bin/busybox")
APPLETS = ["sh", "mount", "umount", "mkdir", "cat", "echo", "ls", "sleep", "reboot", "poweroff",
           "dmesg", "grep", "sed", "cut", "head", "tail", "sync", "uname", "free", "ps", "kill",
           "timeout", "date", "wc", "tr", "awk", "env", "true", "false", "test", "["]

# Shell run by /init before the caller's script. `mf_event NAME [JSON-FIELDS]` prints one
# structured line; JSON-FIELDS is the inside of an object (e.g. '"rc": 0').
INIT_PROLOGUE = r"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox mount -t debugfs debugfs /sys/kernel/debug
/bin/busybox mount -t tmpfs -o mode=1777 tmpfs /tmp
/bin/busybox mkdir -p /dev/hugepages
/bin/busybox mount -t hugetlbfs hugetlbfs /dev/hugepages
export PATH=/bin
mf_event() { n="$1"; shift; if [ -n "$1" ]; then echo "MIGFUZZ {\"event\": \"$n\", $*}"; else echo "MIGFUZZ {\"event\": \"$n\"}"; fi; }
echo 1 > /proc/sys/kernel/sysrq
# THP only where asked (MADV_HUGEPAGE), as most distributions and the selftests expect:
# under "always" every anonymous buffer is a THP and 6.1's make_device_exclusive_range()
# refuses the PTE-mapped THP's tail pages (hmm-tests' exclusive tests then fail with EBUSY)
echo madvise > /sys/kernel/mm/transparent_hugepage/enabled
mf_event init "\"uptime\": $(cut -d' ' -f1 /proc/uptime), \"kernel\": \"$(uname -r)\", \"cpus\": $(grep -c ^processor /proc/cpuinfo), \"thp\": \"$(cat /sys/kernel/mm/transparent_hugepage/enabled)\""
cd /tmp
"""
INIT_EPILOGUE = r"""
cd /
mf_event done "\"uptime\": $(cut -d' ' -f1 /proc/uptime)"
sync
reboot -f
sleep 5
"""

# hmm-tests: as root, in a tmpfs cwd (/tmp; its file-backed tests open O_TMPFILE in /tmp),
# with hugetlb pages reserved for its hugetlbfs test.
HMM_TESTS_SCRIPT = r"""
echo 16 > /proc/sys/vm/nr_hugepages
mf_event hmm-tests-start "\"hugepages\": $(cat /proc/sys/vm/nr_hugepages), \"devices\": \"$(ls /dev | grep hmm_dmirror | tr '\n' ' ')\""
/bin/hmm-tests 2>&1
mf_event hmm-tests-exit "\"rc\": $?"
"""


class _Cpio:
    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1000

    def _add(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
             nlink: int = 1):
        namez = name.encode() + b"\0"
        self.ino += 1
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(namez), 0))
        self.buf.write(hdr.encode() + namez)
        self.buf.write(b"\0" * ((4 - (110 + len(namez)) % 4) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * ((4 - len(data) % 4) % 4))

    def dir(self, name: str):
        self._add(name, 0o040755, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o755):
        self._add(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str):
        self._add(name, 0o120777, target.encode())

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o600):
        self._add(name, 0o020000 | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._add("TRAILER!!!", 0)
        return self.buf.getvalue()


@dataclass(frozen=True)
class Entry:
    """One member of the image, for listing and tests."""
    name: str
    kind: str       # dir / file / symlink / chardev
    size: int


def make_cpio(files: dict[str, bytes], init: str, busybox: bytes) -> bytes:
    """The uncompressed newc archive: a deterministic function of its arguments."""
    c = _Cpio()
    for d in ("bin", "dev", "proc", "sys", "tmp", "mnt", "root"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)
    c.file("bin/busybox", busybox)
    for a in sorted(APPLETS):
        c.symlink(f"bin/{a}", "busybox")
    for name in sorted(files):
        if "/" in name.strip("/") or name in APPLETS or name == "busybox":
            raise LaneError(f"guest program name {name!r}: use a plain name, not an applet's")
        c.file(f"bin/{name}", files[name])
    c.file("init", init.encode())
    return c.finish()


def list_cpio(data: bytes) -> list[Entry]:
    """The entries of a newc archive (gzip'd or not)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    out = []
    off = 0
    while off + 110 <= len(data):
        hdr = data[off:off + 110]
        if hdr[:6] != b"070701":
            raise ValueError(f"bad cpio magic at {off}")
        f = [int(hdr[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[off + 110:off + 110 + namesize - 1].decode()
        off += 110 + namesize
        off += (4 - off % 4) % 4
        off += size
        off += (4 - off % 4) % 4
        if name == "TRAILER!!!":
            break
        kind = {0o040000: "dir", 0o100000: "file", 0o120000: "symlink",
                0o020000: "chardev"}.get(mode & 0o170000, "other")
        out.append(Entry(name, kind, size))
    return out


def init_script(script: str) -> str:
    return INIT_PROLOGUE + script.rstrip("\n") + "\n" + INIT_EPILOGUE


def hmm_tests_binary(release_name: str, log=say) -> Path:
    """The kernel's own hmm-tests from the release's source, built static, cached."""
    from migfuzz.kernels.build import file_lock, source_dir
    src, sid = source_dir(release_name, log=log)
    rel = release(release_name)
    sdir = src / "tools" / "testing" / "selftests" / rel.selftests_subdir
    csrc = sdir / "hmm-tests.c"
    if not csrc.is_file():
        raise LaneError(f"{csrc} not found in the {rel.package} source")
    out = cache_dir() / "guest" / f"{rel.name}_{sid}" / "hmm-tests"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.parent / "hmm-tests.lock", "building hmm-tests"):
        if out.is_file():
            return out
        inc = out.parent / "include"
        inc.mkdir(exist_ok=True)
        (inc / "local_config.h").write_text("/* empty: no optional features */\n")
        cmd = ["gcc", "-static", "-O2", "-w", f"-I{inc}", f"-I{sdir}", f"-I{src}",
               "-o", str(out) + ".tmp", str(csrc), "-lpthread"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            (out.parent / "hmm-tests.log").write_text(" ".join(cmd) + "\n" + r.stderr)
            raise LaneError(f"could not build hmm-tests from {csrc}; log: "
                            f"{out.parent / 'hmm-tests.log'}")
        os.replace(str(out) + ".tmp", out)
        log(f"built {out} from {csrc}")
    return out


def build_initramfs(release_name: str, programs: dict[str, str | Path] | None = None,
                    script: str | None = None, include_hmm_tests: bool = True,
                    log=say) -> Path:
    """A gzip'd newc initramfs for the release; returns its path (cached by content).

    programs: {name: path of a static x86-64 binary}, installed as /bin/<name>.
    script: shell commands /init runs as root in /tmp after mounting everything (default:
    run hmm-tests). ``mf_event NAME '"k": v'`` inside the script prints a structured line."""
    require(GUEST_TOOLS, log=log)
    if not elf_is_static(BUSYBOX):
        raise LaneError(f"{BUSYBOX} is not a static binary: run `apt-get install -y "
                        f"busybox-static` as root")
    files: dict[str, bytes] = {}
    if include_hmm_tests:
        files["hmm-tests"] = hmm_tests_binary(release_name, log=log).read_bytes()
    for name, path in (programs or {}).items():
        p = Path(path)
        if not p.is_file():
            raise LaneError(f"guest program {name}: {p} not found")
        if not elf_is_static(p):
            raise LaneError(f"guest program {name}: {p} is not a static ELF (build with -static)")
        files[name] = p.read_bytes()
    init = init_script(HMM_TESTS_SCRIPT if script is None else script)
    archive = make_cpio(files, init, BUSYBOX.read_bytes())
    digest = hashlib.sha256(archive).hexdigest()[:16]
    out = cache_dir() / "initramfs" / f"{release_name}-{digest}.cpio.gz"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            with gzip.GzipFile(filename="", fileobj=fh, mode="wb", mtime=0, compresslevel=6) as gz:
                gz.write(archive)
        os.replace(tmp, out)
    return out

