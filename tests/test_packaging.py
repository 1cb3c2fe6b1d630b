"""Installed, migfuzz is one namespace: the repository's top-level folders (fuzzer/,
corpus/, db/, workers/, dashboards/, kernels/) become migfuzz.fuzzer, migfuzz.db, ... and no
top-level `db` or `fuzzer` lands in site-packages, where it would collide with other
projects (issue 11, item 25)."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = ("fuzzer", "corpus", "db", "workers", "dashboards", "kernels")


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_installed_under_migfuzz():
    st = _setuptools()
    assert st["package-dir"] == {"migfuzz": "migfuzz", **{f"migfuzz.{t}": t for t in TOP}}
    folders = {"migfuzz." + str(p.parent.relative_to(ROOT)).replace("/", ".")
               if p.parts[len(ROOT.parts)] != "migfuzz"
               else str(p.parent.relative_to(ROOT)).replace("/", ".")
               for top in ("migfuzz",) + TOP for p in (ROOT / top).rglob("__init__.py")}
    assert folders == set(st["packages"]), folders ^ set(st["packages"])


def test_no_source_imports_a_top_level_name():
    bad = re.compile(rf"^\s*(from|import)\s+({'|'.join(TOP)})(\.|\s|$)", re.M)
    offenders = []
    for top in ("migfuzz", "bench", "tests") + TOP:
        for p in (ROOT / top).rglob("*.py"):
            for m in bad.finditer(p.read_text()):
                offenders.append(f"{p.relative_to(ROOT)}: {m.group(0).strip()}")
    assert not offenders, offenders


def test_the_wheel_holds_one_top_level_package_and_its_data(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", str(ROOT), "-w", str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    assert {n.split("/")[0] for n in names} == {"migfuzz", "migfuzz-0.1.0.dist-info"}
    for data in ("migfuzz/corpus/scenarios/migrate.json", "migfuzz/db/migrations/script.py.mako",
                 "migfuzz/dashboards/templates/base.html", "migfuzz/kernels/configs/base.config",
                 "migfuzz/fuzzer/kernel/sources.toml"):
        assert data in names, data
