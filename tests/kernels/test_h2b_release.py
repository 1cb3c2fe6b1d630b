"""Release 7.2 (Debian sid's linux-source-7.2, fetched with a private apt state), the
mf_sched H2b sites, the h2b_fix patch and the h2b guest plumbing. No kernel is built or
booted here; the anchor tests read the real sources when they are in the cache
(``migfuzz kernel build --release 7.2`` fetches 7.2) and skip otherwise."""
from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from migfuzz.kernels import build as kbuild
from migfuzz.kernels import env
from migfuzz.kernels import h2b

PATCHES = Path(kbuild.PATCH_DIR)


def _load(name):
    spec = importlib.util.spec_from_file_location(name, PATCHES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


mf = _load("apply_mf_sched")
fix = _load("apply_h2b_fix")
MF_SCHED_C = (PATCHES / "mf_sched.c").read_text()


def _src(release: str, sid: str) -> Path | None:
    p = (Path.home() / ".cache" / "migfuzz" / "src" / f"{release}_{sid}"
         / f"linux-source-{release}" / "mm" / "migrate_device.c")
    return p if p.is_file() else None


SRC72 = _src("7.2", "7.2.13-1")
SRC61 = _src("6.1", "6.1.192-3")
SRC612 = _src("6.12", "6.12.117-1_deb12u1")
need72 = pytest.mark.skipif(SRC72 is None, reason="7.2 not fetched: migfuzz kernel build "
                            "--release 7.2")


# ---- the private apt state ----------------------------------------------------------------

def test_release_72_resolves_its_tarball_under_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MIGFUZZ_CACHE", str(tmp_path))
    rel = env.release("7.2")
    assert rel.tarball == tmp_path / "apt" / "sid" / "root" / "usr" / "src" / \
        "linux-source-7.2.tar.xz"
    assert (rel.apt_suite, rel.apt_version) == ("sid", "7.2.13-1")
    # the system releases are untouched
    assert env.release("6.1").tarball == Path("/usr/src/linux-source-6.1.tar.xz")
    assert env.RELEASES["7.2"].tarball is None


def test_private_apt_command_line_never_touches_the_system_apt_state(tmp_path):
    rel = env.release("7.2")
    top = tmp_path / "apt" / "sid"
    update, download = env.private_apt_commands(rel, top)
    for cmd in (update, download):
        opts = dict(cmd[i + 1].split("=", 1) for i, a in enumerate(cmd) if a == "-o")
        assert opts == {"Dir::Etc::sourcelist": str(top / "sources.list"),
                        "Dir::Etc::sourceparts": "/nonexistent",
                        "Dir::State::Lists": str(top / "lists"),
                        "Dir::Cache": str(top / "cache")}
        assert not any(a.startswith(("/etc", "/var")) for a in cmd)
    assert update[0] == "apt-get" and update[-1] == "update"
    # pinned: exactly the version the release names, never "whatever sid has now"
    assert download[-2:] == ["download", "linux-source-7.2=7.2.13-1"]


def test_source_id_of_an_unfetched_private_release_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("MIGFUZZ_CACHE", str(tmp_path))
    rel = env.release("7.2")
    with pytest.raises(env.LaneError, match="not fetched yet"):
        env.source_id(rel)
    assert kbuild.cached_kernel("7.2") is None
    (tmp_path / "apt" / "sid").mkdir(parents=True)
    (tmp_path / "apt" / "sid" / "VERSION").write_text("7.2.14-1\n")   # another pin
    with pytest.raises(env.LaneError, match="not fetched yet"):
        env.source_id(rel)
    (tmp_path / "apt" / "sid" / "VERSION").write_text("7.2.13-1\n")
    assert env.source_id(rel) == "7.2.13-1"


def _fake_deb(tmp_path: Path, package: str, version: str) -> Path:
    root = tmp_path / f"debroot-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: all\n"
        f"Maintainer: t <t@example.org>\nDescription: test\n")
    (root / "usr" / "src").mkdir(parents=True)
    (root / "usr" / "src" / f"{package}.tar.xz").write_bytes(b"not a real tarball")
    out = tmp_path / f"built-{version}.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(out)],
                   check=True, capture_output=True)
    return out


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
@pytest.mark.parametrize("version,ok", [("7.2.13-1", True), ("7.2.12-2", False)])
def test_fetch_checks_the_package_version(monkeypatch, tmp_path, version, ok):
    """fetch_private runs the two apt-get commands (here a fake apt-get on PATH that
    'downloads' a prepared .deb) and accepts the .deb only if it is the pinned version."""
    monkeypatch.setenv("MIGFUZZ_CACHE", str(tmp_path / "cache"))
    deb = _fake_deb(tmp_path, "linux-source-7.2", version)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    (bindir / "apt-get").write_text(
        "#!/bin/sh\n"
        f"echo \"$@\" >> {calls}\n"
        "for a; do last=$a; done\n"
        f"[ \"$last\" = update ] || cp {deb} ./linux-source-7.2_7.2.13-1_all.deb\n")
    (bindir / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{env.os.environ['PATH']}")
    rel = env.release("7.2")
    if ok:
        env.fetch_private(rel, log=lambda m: None)
        assert rel.tarball.read_bytes() == b"not a real tarball"
        assert env.source_id(rel) == "7.2.13-1"
        lines = calls.read_text().splitlines()
        assert len(lines) == 2 and lines[0].endswith("update")
        assert lines[1].endswith("download linux-source-7.2=7.2.13-1")
        assert (tmp_path / "cache" / "apt" / "sid" / "sources.list").read_text() == \
            "deb http://deb.debian.org/debian sid main\n"
    else:
        with pytest.raises(env.LaneError, match="7.2.12-2, expected linux-source-7.2 7.2.13-1"):
            env.fetch_private(rel, log=lambda m: None)
        assert not (tmp_path / "cache" / "apt" / "sid" / "VERSION").exists()


def test_7_2_is_a_cli_release():
    from migfuzz.commands.kernel import RELEASES as cli_releases
    assert "7.2" in cli_releases


# ---- mf_sched anchors ------------------------------------------------------------------------

def _sites(text: str) -> list[str]:
    return re.findall(r'mf_sched_point\("([^"]+)"\);', text)


@need72
def test_mf_sched_applies_to_7_2_once_per_site():
    text = SRC72.read_text()
    out = mf.instrument(text)
    body = out[:-len(MF_SCHED_C) - 1]
    assert out.endswith("\n" + MF_SCHED_C)
    assert sorted(_sites(body)) == sorted(["collect_pmd:got", "collect_pmd:locked",
                                           "collect:split_window", "finalize:done"])
    lines = body.splitlines()
    i = next(n for n, l in enumerate(lines) if '"collect:split_window"' in l)
    # right after the system-page branch's unlock, right before the split helper
    assert lines[i - 1].strip() == "pte_unmap_unlock(ptep, ptl);"
    assert lines[i + 1].strip().startswith("ret = migrate_vma_split_folio(folio,")
    assert any("folio && folio_test_large(folio)" in l for l in lines[i - 5:i])
    j = next(n for n, l in enumerate(lines) if '"finalize:done"' in l)
    assert lines[j - 2].strip().startswith("__migrate_device_finalize(migrate->src")
    assert lines[j + 1] == "}"
    k = next(n for n, l in enumerate(lines) if '"collect_pmd:locked"' in l)
    assert lines[k + 1].strip() == "ret = split_folio(folio);"
    assert lines[k - 1].strip() == "goto done;"
    # removing the instrumentation gives back the source, byte for byte
    assert re.sub(r"^[ \t]*mf_sched_point\(\"[^\"]+\"\);\n|^void mf_sched_point\(const char "
                  r"\*site\);\n", "", body, flags=re.M) == text


@need72
def test_a_missing_h2b_site_is_refused_on_7_2():
    text = SRC72.read_text()
    broken = text.replace("\t\t\t\tpte_unmap_unlock(ptep, ptl);\n\t\t\t\tret = "
                          "migrate_vma_split_folio(", "\t\t\t\tpte_unmap_unlock(ptep, ptl);\n"
                          "\t\t\t\tret = other_split(", )
    assert broken != text
    with pytest.raises(SystemExit, match="collect:split_window"):
        mf.instrument(broken)
    with pytest.raises(SystemExit, match="finalize:done"):
        mf.instrument(text.replace("migrate->fault_page);\n}\nEXPORT_SYMBOL(migrate_vma_fin",
                                   "NULL);\n}\nEXPORT_SYMBOL(migrate_vma_fin"))


@need72
def test_an_anchor_matching_twice_is_refused():
    text = SRC72.read_text()
    twice = text.replace("\tif (!folio_test_large(folio))\n\t\tgoto done;\n\tret = split_folio",
                         "\tif (!folio_test_large(folio))\n\t\tgoto done;\n\tret = split_folio"
                         "(folio);\n\tif (!folio_test_large(folio))\n\t\tgoto done;\n"
                         "\tret = split_folio")
    assert twice != text
    with pytest.raises(SystemExit, match="found 2 times"):
        mf.instrument(twice)


# The instrumented 6.1/6.12 sources as the pre-H2b apply_mf_sched.py wrote them (sha256 of
# the output without the appended mf_sched.c): the H2b sites must not change them, so the
# thp-collect-race reproductions stay what they were.
BEFORE_H2B = {
    "6.1": "c88bdbf8bd71ef3c4ee63278aa2b1d36112ca48cf86205a6a0a590f965661de7",
    "6.12": "dc25a418a72177fff7ea459669b47bd1eab8a7abaf746421f000dfaaf86d78b1",
}


@pytest.mark.parametrize("release,src", [("6.1", SRC61), ("6.12", SRC612)])
def test_6_x_instrumentation_is_unchanged(release, src):
    if src is None:
        pytest.skip(f"{release} source not unpacked")
    out = mf.instrument(src.read_text())
    body = out[:-len(MF_SCHED_C) - 1]
    assert hashlib.sha256(body.encode()).hexdigest() == BEFORE_H2B[release]
    assert sorted(_sites(body)) == ["collect_pmd:got", "collect_pmd:locked"]


# ---- the fix ---------------------------------------------------------------------------------

@need72
def test_h2b_fix_takes_the_reference_under_the_ptl():
    text = SRC72.read_text()
    out = fix.fix(text)
    lines = out.splitlines()
    unlocks = [n for n, l in enumerate(lines)
               if l.strip() == "pte_unmap_unlock(ptep, ptl);"
               and lines[n + 1].strip().startswith("ret = migrate_vma_split_folio(")]
    assert len(unlocks) == 2            # device-private and system-page branches
    for n in unlocks:
        assert lines[n - 1].strip() == "folio_get(folio);"
    helper = out[out.index("static int migrate_vma_split_folio("):]
    helper = helper[:helper.index("\n}\n")]
    assert "folio_get(folio);" not in helper          # no second reference
    assert "folio_put(folio);\t/* the fault path holds its own reference */" in helper
    # fix then mf_sched (the build's order): every site still applies once
    both = mf.instrument(out)
    assert sorted(_sites(both)) == sorted(["collect_pmd:got", "collect_pmd:locked",
                                           "collect:split_window", "finalize:done"])
    with pytest.raises(SystemExit, match="found 0 times"):
        fix.fix(out)                    # applied twice: refused, not doubled


def test_h2b_fix_refuses_a_source_without_the_helper():
    with pytest.raises(SystemExit, match="nothing to fix"):
        fix.fix("static int other(void) { return 0; }\n")


def test_fix_patch_gets_its_own_cache_key():
    from migfuzz.kernels import config as kconfig
    frag = kconfig.fragment_texts("base")
    mfk = kbuild.cache_key("7.2", "7.2.13-1", "base", frag, ["mf_sched"])
    both = kbuild.cache_key("7.2", "7.2.13-1", "base", frag, ["mf_sched", "h2b_fix"])
    assert both != mfk and both.startswith("7.2-7.2.13-1-base+h2b_fix+mf_sched-")
    assert kbuild.check_patches(["mf_sched", "h2b_fix"]) == ("h2b_fix", "mf_sched")


# ---- the guest plumbing ----------------------------------------------------------------------

def test_guest_script_and_summary():
    s = h2b.guest_script(1, "collect:split_window finalize:done 2000", 32)
    assert "/bin/h2b -i 1 -e 'collect:split_window finalize:done 2000'" in s
    assert "h2b-stuck" in s and "/sys/kernel/debug/mf_sched" in s
    assert "-e" not in h2b.guest_script(50, None, 130).split("\n")[0]
    ev = [{"event": "h2b-pte-mapped"},
          {"event": "h2b-migrated", "rc": [0, 0], "errno": [0, 0], "cpages": [1, 0]},
          {"event": "h2b-stuck", "waited_s": 32},
          {"event": "h2b-sched", "counters": "holds 1 released 1 timeouts 0"}]
    out = h2b.summarize(ev)
    assert out["iterations_done"] == 1 and out["stuck"] and out["pte_mapped_ok"] == 1
    assert out["counters"] == "holds 1 released 1 timeouts 0"


def test_h2b_cli_bad_input_is_one_line_exit_2(capsys):
    assert h2b.main(["--arm", "enforced", "-n", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "positive" in err


# ---- the seeded (incremental) build of the fix kernel -----------------------------------------

def _seeded_setup(monkeypatch, tmp_path, recompiles: bool):
    """A fake 6.1 tree and a finished fake mf_sched build; make is faked: it must run under
    the unshare/bind-mount wrapper, in the seed's source path, on a copy of the seed's
    objects."""
    monkeypatch.setenv("MIGFUZZ_CACHE", str(tmp_path / "cache"))
    tar = tmp_path / "linux-source-6.1.tar.xz"
    tar.write_bytes(b"x")
    monkeypatch.setitem(env.RELEASES, "6.1", env.Release("6.1", "linux-source-6.1", tar, "vm"))
    monkeypatch.setattr(kbuild, "source_id", lambda rel: "6.1.192-3")
    trees = {}

    def fake_patched(release, patches, log=None):
        t = tmp_path / ("+".join(kbuild.check_patches(patches)) or "plain") / "linux"
        (t / "mm").mkdir(parents=True, exist_ok=True)
        (t / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\n")
        (t / "mm" / "migrate_device.c").write_text(f"/* {patches} */\n")
        trees[kbuild.check_patches(patches)] = t
        return t, "6.1.192-3"
    monkeypatch.setattr(kbuild, "patched_source_dir", fake_patched)
    calls = []

    def fake_make(args, src_, logf, label, expected, log=None, every_s=60.0, wrap=()):
        calls.append((list(wrap), Path(src_), list(args)))
        bdir = Path(args[0][2:])
        assert (bdir / "seed-object.o").read_text() == "from the seed"
        if recompiles:
            logf.write("  CC      mm/migrate_device.o\n")
        logf.write("  LD      vmlinux\n")
        (bdir / "arch/x86/boot/bzImage").write_bytes(b"fixed kernel")
        return 0, 2, 1.0
    monkeypatch.setattr(kbuild, "_run_make", fake_make)
    from migfuzz.kernels import config as kconfig
    seed_key = kbuild.cache_key("6.1", "6.1.192-3", "base", kconfig.fragment_texts("base"),
                                ["mf_sched"])
    sdir = tmp_path / "cache" / "build" / seed_key
    (sdir / "arch/x86/boot").mkdir(parents=True)
    (sdir / "arch/x86/boot/bzImage").write_bytes(b"seed kernel")
    (sdir / "seed-object.o").write_text("from the seed")
    seed = kbuild.BuiltKernel("6.1", "base", seed_key, "6.1.192-3", "6.1.192",
                              str(sdir / "arch/x86/boot/bzImage"), str(sdir), "", 1, 1, 1, 2,
                              "now", patches=["mf_sched"])
    import json
    (sdir / "done.json").write_text(json.dumps(seed.to_json()))
    return calls, trees, seed


def test_seeded_build_reuses_the_seed_objects_under_a_bind_mount(monkeypatch, tmp_path):
    calls, trees, seed = _seeded_setup(monkeypatch, tmp_path, recompiles=True)
    bk = kbuild.build_seeded("6.1", "base", ("h2b_fix", "mf_sched"), ("mf_sched",),
                             log=lambda m: None)
    assert bk.seeded_from == seed.key and bk.patches == ["h2b_fix", "mf_sched"]
    assert Path(bk.bzimage).read_bytes() == b"fixed kernel"
    assert Path(seed.bzimage).read_bytes() == b"seed kernel"        # the seed is untouched
    wrap, src, args = calls[0]
    new, old = trees[("h2b_fix", "mf_sched")], trees[("mf_sched",)]
    # make runs in the SEED's source path with the new tree mounted over it
    assert wrap[:2] == ["unshare", "-m"] and wrap[-2:] == [str(new), str(old)] and src == old
    assert kbuild.cached_kernel("6.1", "base", ("mf_sched", "h2b_fix")).key == bk.key
    # the same key a cold build would use
    from migfuzz.kernels import config as kconfig
    assert bk.key == kbuild.cache_key("6.1", "6.1.192-3", "base",
                                      kconfig.fragment_texts("base"), ["h2b_fix", "mf_sched"])


def test_seeded_build_that_did_not_recompile_the_patched_file_is_refused(monkeypatch,
                                                                          tmp_path):
    _seeded_setup(monkeypatch, tmp_path, recompiles=False)
    with pytest.raises(env.LaneError, match="not recompiled: mm/migrate_device.c"):
        kbuild.build_seeded("6.1", "base", ("h2b_fix", "mf_sched"), ("mf_sched",),
                            log=lambda m: None)
    assert kbuild.cached_kernel("6.1", "base", ("h2b_fix", "mf_sched")) is None


def test_seeded_build_needs_a_finished_seed(monkeypatch, tmp_path):
    monkeypatch.setenv("MIGFUZZ_CACHE", str(tmp_path))
    tar = tmp_path / "linux-source-6.1.tar.xz"
    tar.write_bytes(b"x")
    monkeypatch.setitem(env.RELEASES, "6.1", env.Release("6.1", "linux-source-6.1", tar, "vm"))
    monkeypatch.setattr(kbuild, "source_id", lambda rel: "6.1.192-3")
    with pytest.raises(env.LaneError, match="no finished 6.1 base\\+mf_sched build"):
        kbuild.build_seeded("6.1", "base", ("h2b_fix", "mf_sched"), ("mf_sched",))


def test_seeded_build_of_the_unpatched_kernel_is_refused(monkeypatch, tmp_path):
    """Its source is the shared unpacked tree: touching its files to force the rebuild would
    change the tree every other build uses."""
    _seeded_setup(monkeypatch, tmp_path, recompiles=True)
    with pytest.raises(env.LaneError, match="built cold"):
        kbuild.build_seeded("6.1", "base", (), ("mf_sched",), log=lambda m: None)
