"""The initramfs image (contents, determinism) and the QEMU command line (no network)."""
import gzip

import pytest

from migfuzz.kernels.env import LaneError, elf_is_static
from migfuzz.kernels.initramfs import (HMM_TESTS_SCRIPT, init_script, list_cpio, make_cpio)
from migfuzz.kernels.qemu import qemu_command


def test_cpio_contents_and_determinism():
    init = init_script(HMM_TESTS_SCRIPT)
    a = make_cpio({"hmm-tests": b"\x7fELF-fake", "mfrepro": b"x" * 5}, init, b"BUSYBOX")
    b = make_cpio({"mfrepro": b"x" * 5, "hmm-tests": b"\x7fELF-fake"}, init, b"BUSYBOX")
    assert a == b                                    # byte for byte, whatever the dict order
    entries = {e.name: e for e in list_cpio(a)}
    for d in ("bin", "dev", "proc", "sys", "tmp"):
        assert entries[d].kind == "dir"
    assert entries["dev/console"].kind == "chardev"
    assert entries["bin/busybox"].size == 7
    assert entries["bin/sh"].kind == "symlink"
    assert entries["bin/hmm-tests"].kind == "file" and entries["bin/mfrepro"].size == 5
    assert entries["init"].kind == "file"
    # gzip'd the same way the lane writes it, listing still works
    assert [e.name for e in list_cpio(gzip.compress(a, mtime=0))] == [e.name for e in list_cpio(a)]


def test_init_mounts_and_reports():
    init = init_script("echo hello")
    assert init.startswith("#!/bin/busybox sh\n")
    for m in ("-t proc", "-t sysfs", "-t devtmpfs", "-t debugfs", "-t tmpfs", "-t hugetlbfs"):
        assert m in init
    assert init.index('mf_event init') < init.index("echo hello") < init.index("mf_event done")
    assert "reboot -f" in init and "cd /tmp" in init
    assert "/bin/hmm-tests" in HMM_TESTS_SCRIPT


def test_program_names_must_be_plain():
    with pytest.raises(LaneError):
        make_cpio({"sh": b"x"}, "", b"B")
    with pytest.raises(LaneError):
        make_cpio({"a/b": b"x"}, "", b"B")


def test_qemu_command_has_no_network_device():
    cmd = qemu_command("/k/bzImage", "/k/initrd.gz", accel="tcg", append="foo=1")
    assert cmd[0] == "qemu-system-x86_64"
    i = cmd.index("-nic")
    assert cmd[i + 1] == "none"
    assert "-netdev" not in cmd and not any("net" in c for c in cmd if c.startswith("-device"))
    assert not any(c == "-device" for c in cmd)
    assert "-no-reboot" in cmd and "-nographic" in cmd
    assert cmd[cmd.index("-accel") + 1] == "tcg"
    assert cmd[cmd.index("-m") + 1] == "2048" and cmd[cmd.index("-smp") + 1] == "2"
    append = cmd[cmd.index("-append") + 1]
    assert "console=ttyS0" in append and "panic=-1" in append and append.endswith("foo=1")
    kvm = qemu_command("/k/bzImage", None, accel="kvm")
    assert "-initrd" not in kvm and kvm[kvm.index("-accel") + 1] == "kvm"


def test_elf_is_static(tmp_path):
    import sys
    assert not elf_is_static(__import__("pathlib").Path(sys.executable).resolve())
    p = tmp_path / "notelf"
    p.write_bytes(b"#!/bin/sh\n")
    assert not elf_is_static(p)
