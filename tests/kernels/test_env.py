"""Lane preconditions: a missing package as non-root is one line saying what to install."""
from pathlib import Path

import pytest

from kernels import build as kbuild
from kernels import env


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
