"""`kernel build --patch mf_sched`: cache keys, the patched source copy, the CLI, and
`kernel repro --enforce` picking the patched build (no kernel is built here)."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from migfuzz.cli import main
from migfuzz.kernels import build as kbuild
from migfuzz.kernels import config as kconfig
from migfuzz.kernels.env import LaneError

SV = "6.1.192-3"


def key_as_before(release: str, sv: str, config: str, fragments) -> str:
    """build.cache_key as it was before patches existed (the keys of today's cache)."""
    h = hashlib.sha256(f"recipe{kbuild.RECIPE_VERSION}\n{release}\n{sv}\n"
                       f"{kconfig.config_hash(fragments)}".encode()).hexdigest()[:12]
    return f"{release}-{sv}-{config}-{h}"


@pytest.mark.parametrize("release,config", [("6.1", "base"), ("6.12", "base"),
                                            ("6.1", "kasan")])
def test_default_key_is_exactly_the_unpatched_key(release, config):
    frag = kconfig.fragment_texts(config)
    old = key_as_before(release, SV, config, frag)
    assert kbuild.cache_key(release, SV, config, frag) == old
    assert kbuild.cache_key(release, SV, config, frag, ()) == old
    assert kbuild.cache_key(release, SV, config, frag, []) == old


def test_patched_key_is_another_entry_named_after_the_patch():
    frag = kconfig.fragment_texts("base")
    plain = kbuild.cache_key("6.1", SV, "base", frag)
    k = kbuild.cache_key("6.1", SV, "base", frag, ["mf_sched"])
    assert k != plain
    assert k.startswith(f"6.1-{SV}-base+mf_sched-")
    # deterministic, order/duplicates do not matter
    assert k == kbuild.cache_key("6.1", SV, "base", frag, ("mf_sched", "mf_sched"))
    # the kasan build with the patch is yet another entry
    assert kbuild.cache_key("6.1", SV, "kasan", kconfig.fragment_texts("kasan"),
                            ["mf_sched"]) not in (k, plain)


@pytest.mark.parametrize("fname", ["mf_sched.c", "apply_mf_sched.py"])
def test_editing_the_patch_changes_the_key(tmp_path, fname):
    frag = kconfig.fragment_texts("base")
    pdir = tmp_path / "patches"
    shutil.copytree(kbuild.PATCH_DIR, pdir)
    k = kbuild.cache_key("6.1", SV, "base", frag, ["mf_sched"])
    assert kbuild.cache_key("6.1", SV, "base", frag, ["mf_sched"], patch_dir=pdir) == k
    with open(pdir / fname, "a") as f:
        f.write("\n/* edited */\n" if fname.endswith(".c") else "\n# edited\n")
    k2 = kbuild.cache_key("6.1", SV, "base", frag, ["mf_sched"], patch_dir=pdir)
    assert k2 != k and k2.startswith(f"6.1-{SV}-base+mf_sched-")


def test_unknown_patch_is_refused():
    with pytest.raises(LaneError, match=r"unknown patch 'nope' \(known: h2b_fix, mf_sched\)"):
        kbuild.cache_key("6.1", SV, "base", kconfig.fragment_texts("base"), ["nope"])


FAKE_MIGRATE_DEVICE = """#include "internal.h"

static int migrate_vma_collect_pmd(void)
{
\t\tif (thp) {
\t\t\tget_page(page);
\t\t\tspin_unlock(ptl);
\t\t\tif (unlikely(!trylock_page(page)))
\t\t\t\treturn skip();
\t\t\tret = split_huge_page(page);
\t\t\tunlock_page(page);
\t\t}
}
"""


def _fake_source(tmp_path, monkeypatch, text=FAKE_MIGRATE_DEVICE):
    monkeypatch.setenv("MIGFUZZ_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "cache" / "src" / f"6.1_{SV}" / "linux-source-6.1"
    (src / "mm").mkdir(parents=True)
    (src / "mm" / "migrate_device.c").write_text(text)
    (src / "mm" / "migrate.c").write_text("/* untouched */\n")
    monkeypatch.setattr(kbuild, "source_dir", lambda name, log=None: (src, SV))
    return src


def test_patched_copy_leaves_the_shared_source_alone(tmp_path, monkeypatch):
    src = _fake_source(tmp_path, monkeypatch)
    orig = src / "mm" / "migrate_device.c"
    ino = orig.stat().st_ino
    dst, sid = kbuild.patched_source_dir("6.1", ["mf_sched"], log=lambda m: None)
    assert sid == SV and dst != src and dst.name == "linux-source-6.1"
    assert orig.read_text() == FAKE_MIGRATE_DEVICE and orig.stat().st_ino == ino
    patched = (dst / "mm" / "migrate_device.c").read_text()
    assert 'mf_sched_point("collect_pmd:got");' in patched
    assert 'mf_sched_point("collect_pmd:locked");' in patched
    assert "/sys/kernel/debug/mf_sched" in patched          # mf_sched.c appended
    # unchanged files are shared (hard links), the changed one is not
    assert (dst / "mm" / "migrate.c").stat().st_ino == (src / "mm" / "migrate.c").stat().st_ino
    assert (dst / "mm" / "migrate_device.c").stat().st_ino != ino
    # made once: a second call reuses it
    assert kbuild.patched_source_dir("6.1", ["mf_sched"], log=lambda m: None) == (dst, SV)
    # no patches: the shared tree itself
    assert kbuild.patched_source_dir("6.1", [], log=lambda m: None) == (src, SV)


def test_a_source_the_patch_does_not_fit_is_one_line(tmp_path, monkeypatch):
    _fake_source(tmp_path, monkeypatch, text="int nothing_to_anchor;\n")
    with pytest.raises(LaneError, match=r"patch mf_sched does not apply to .*anchor"):
        kbuild.patched_source_dir("6.1", ["mf_sched"], log=lambda m: None)


# ------------------------------------------------------------------ CLI

def _fake_bk(patches):
    return kbuild.BuiltKernel(release="6.1", config="base", key="k", source_version=SV,
                              kernel_version="6.1.192", bzimage="/bz", build_dir="/b",
                              log="/l", wall_s=60, cpu_s=60, steps=1, jobs=2, built_at="t",
                              cached=True, patches=list(patches))


def test_cli_build_passes_the_patch(monkeypatch, capsys):
    calls = []

    def fake_build(release, config, jobs=None, log=None, patches=()):
        calls.append((release, config, tuple(patches)))
        return _fake_bk(patches)
    monkeypatch.setattr(kbuild, "build", fake_build)
    assert main(["kernel", "build", "--release", "6.1", "--patch", "mf_sched"]) == 0
    assert calls == [("6.1", "base", ("mf_sched",))]
    assert "6.1.192 (base+mf_sched) cached: /bz" in capsys.readouterr().out
    assert main(["kernel", "build", "--release", "6.1"]) == 0
    assert calls[-1] == ("6.1", "base", ())
    assert "6.1.192 (base) cached" in capsys.readouterr().out


def test_cli_build_refuses_an_unknown_patch_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(kbuild, "build", lambda *a, **k: pytest.fail("must not build"))
    assert main(["kernel", "build", "--release", "6.1", "--patch", "nope"]) == 2
    out = capsys.readouterr()
    assert out.err.strip().splitlines() == [
        "migfuzz: error: unknown patch 'nope' (known: h2b_fix, mf_sched)"]
    assert out.out == ""


def test_old_done_json_without_patches_still_loads():
    d = _fake_bk(()).to_json()
    del d["patches"]
    assert kbuild.BuiltKernel(**d).patches == []


# ------------------------------------------------------------------ repro --enforce

def test_repro_enforce_without_bzimage_uses_the_mf_sched_build(monkeypatch):
    from migfuzz.corpus import input as inputs
    from migfuzz.kernels import repro
    inp = inputs.load(str(Path(__file__).resolve().parents[2] / "tests" / "regressions"
                          / "v6.1__thp-collect-race.json"))
    calls = []

    def fake_build(release, config="base", jobs=None, log=None, patches=()):
        calls.append((release, config, tuple(patches)))
        raise LaneError("stop here")
    monkeypatch.setattr(kbuild, "build", fake_build)
    with pytest.raises(repro.ReproError, match="stop here"):
        repro.run("x", inp, None, release="6.1", enforce="collect_pmd:locked collect_pmd:got 2000")
    assert calls == [("6.1", "base", ("mf_sched",))]
    # --bzimage stays the override: the patched build is not asked for
    calls.clear()
    monkeypatch.setattr(kbuild, "cached_kernel", lambda *a, **k: None)
    with pytest.raises(repro.ReproError, match="no 6.1 kernel"):
        repro.run("x", inp, None, release="6.1", enforce="collect_pmd:locked collect_pmd:got 2000",
                  bzimage="/nonexistent/bzImage")
    assert calls == []
