"""Lane preconditions: a missing package as non-root is one line saying what to install."""
from pathlib import Path

import pytest

from migfuzz.kernels import build as kbuild
from migfuzz.kernels import env


def test_missing_package_not_root_says_what_to_install(monkeypatch):
    monkeypatch.setattr(env, "is_root", lambda: False)
    with pytest.raises(env.LaneError, match=r"run `apt-get install -y linux-source-6.1` as root"):
        env.apt_install(["linux-source-6.1"])


def test_require_lists_missing(monkeypatch):
    monkeypatch.setattr(env, "is_root", lambda: False)
    checks = [("file:/nonexistent/migfuzz-x", "pkg-x"), ("bin:sh", "dash"),
              ("bin:no-such-binary-migfuzz", "pkg-y")]
    assert env.missing_packages(checks) == ["pkg-x", "pkg-y"]
    with pytest.raises(env.LaneError, match=r"apt-get install -y pkg-x pkg-y"):
        env.require(checks)


def test_build_without_source_package_not_root(monkeypatch, tmp_path):
    monkeypatch.setattr(env, "is_root", lambda: False)
    monkeypatch.setenv("MIGFUZZ_CACHE", str(tmp_path))
    fake = env.Release("6.1", "linux-source-6.1", tmp_path / "none.tar.xz", "vm")
    monkeypatch.setitem(env.RELEASES, "6.1", fake)
    with pytest.raises(env.LaneError, match="linux-source-6.1"):
        kbuild.build("6.1", "base")
    assert kbuild.cached_kernel("6.1", "base") is None
    assert not any(Path(tmp_path).rglob("done.json"))


def test_unknown_release():
    with pytest.raises(env.LaneError, match="unknown release"):
        env.release("5.15")


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MIGFUZZ_CACHE", str(tmp_path / "c"))
    assert env.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


def _fake_tree(monkeypatch, tmp_path, bz_rc):
    monkeypatch.setenv("MIGFUZZ_CACHE", str(tmp_path / "cache"))
    tar = tmp_path / "linux-source-6.1.tar.xz"
    tar.write_bytes(b"x")
    monkeypatch.setitem(env.RELEASES, "6.1", env.Release("6.1", "linux-source-6.1", tar, "vm"))
    monkeypatch.setattr(kbuild, "source_id", lambda rel: "6.1.192-3")
    monkeypatch.setattr(kbuild, "require", lambda *a, **k: None)
    src = tmp_path / "src"
    src.mkdir()
    (src / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\n")
    monkeypatch.setattr(kbuild, "source_dir", lambda r, log=None: (src, "6.1.192-3"))

    def fake_make(args, src_, logf, label, expected, log=None, every_s=60.0):
        bdir = Path(args[0][2:])
        if "tinyconfig" in args:
            (bdir / ".config").write_text("CONFIG_MMU=y\n")
        if "bzImage" in args:
            logf.write("  CC      mm/migrate.o\n")
            if bz_rc == 0:
                (bdir / "arch/x86/boot").mkdir(parents=True)
                (bdir / "arch/x86/boot/bzImage").write_bytes(b"kernel")
            return bz_rc, 1, 0.5
        return 0, 0, 0.1
    monkeypatch.setattr(kbuild, "_run_make", fake_make)


def test_failed_build_is_one_line_and_leaves_no_done_entry(monkeypatch, tmp_path):
    _fake_tree(monkeypatch, tmp_path, bz_rc=2)
    with pytest.raises(env.LaneError, match=r"kernel build failed \(6.1 base\); log: .*migfuzz-build.log"):
        kbuild.build("6.1", "base", log=lambda m: None)
    assert not list((tmp_path / "cache").rglob("done.json"))
    assert kbuild.cached_kernel("6.1", "base") is None


def test_successful_build_is_cached(monkeypatch, tmp_path):
    _fake_tree(monkeypatch, tmp_path, bz_rc=0)
    bk = kbuild.build("6.1", "base", log=lambda m: None)
    assert not bk.cached and bk.kernel_version == "6.1.192" and Path(bk.bzimage).is_file()
    again = kbuild.build("6.1", "base", log=lambda m: None)
    assert again.cached and again.key == bk.key
    assert kbuild.cached_kernel("6.1", "kasan") is None


def test_build_lock_serializes_the_same_key(tmp_path, capsys):
    import threading
    import time
    lock = tmp_path / "build" / "k.lock"
    held = threading.Event()

    def holder():
        with kbuild.file_lock(lock, "the build of k"):
            held.set()
            time.sleep(1.0)

    th = threading.Thread(target=holder)
    th.start()
    held.wait(5)
    t0 = time.monotonic()
    with kbuild.file_lock(lock, "the build of k"):
        waited = time.monotonic() - t0
    th.join()
    assert waited >= 0.5
    assert "waiting for the build of k" in capsys.readouterr().err
