"""Fidelity, checked against source (issue 12): the step table, the C extractor, and
`migfuzz model check-source` / `model steps`.

The real checks read the installed Debian source packages (linux-source-6.1 and
linux-source-6.12; kernels/ci-lane.sh and `make check-source` install them). A missing one
fails with the apt line; it never skips.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest

from migfuzz.cli import main
from migfuzz.kernels import source_check as sc

ROOT = Path(__file__).resolve().parents[2]
RELEASES = ("6.1.192", "6.12.117")


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def table() -> sc.Table:
    return sc.load_table()


@pytest.fixture(scope="module")
def tree61(table) -> Path:
    """The unpacked 6.1.192 source (a SourceError with the apt line if not installed)."""
    return sc.release_source(table, "6.1.192")


def _copy_tree(table: sc.Table, release: str, src: Path, dst: Path) -> Path:
    """The files the release's steps follow, copied to ``dst`` (a tree --source accepts)."""
    for f in sorted({e.file for e in table.entries(release)}):
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / f, dst / f)
    return dst


def _edit_function(path: Path, signature: str, old: str, new: str) -> None:
    """Replace the first ``old`` after ``signature`` (inside that function) by ``new``."""
    text = path.read_text()
    at = text.index(signature)
    hit = text.index(old, at)
    path.write_text(text[:hit] + new + text[hit + len(old):])


# ---- the real sources ---------------------------------------------------------------------

@pytest.mark.parametrize("release", RELEASES)
def test_check_source_passes_on_the_installed_source(capsys, release):
    rc, out, err = _run(capsys, "model", "check-source", "--release", release)
    assert rc == 0, f"check-source --release {release} exited {rc}:\n{out}{err}"
    m = re.match(rf"{re.escape(release)}: (\d+) steps over (\d+) functions match ", out)
    assert m and int(m.group(1)) >= 100 and int(m.group(2)) >= 40, out


def test_check_source_json(capsys):
    rc, out, err = _run(capsys, "model", "check-source", "--release", "6.12.117", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["ok"] is True and doc["stale"] == [] and doc["source_version"] == "6.12.117"


def test_one_changed_function_makes_exactly_its_steps_stale(capsys, table, tree61, tmp_path):
    tree = _copy_tree(table, "6.1.192", tree61, tmp_path / "linux")
    rc, out, err = _run(capsys, "model", "check-source", "--release", "6.1.192",
                        "--source", str(tree))
    assert rc == 0, out + err
    # a real change: finalize drops the source folio's reference before unlocking it
    _edit_function(tree / "mm/migrate_device.c", "void migrate_device_finalize(",
                   "folio_unlock(src);\n\t\tfolio_put(src);",
                   "folio_put(src);\n\t\tfolio_unlock(src);")
    rc, out, err = _run(capsys, "model", "check-source", "--release", "6.1.192",
                        "--source", str(tree))
    assert rc == 1, out + err
    expected = sorted(e.site for e in table.entries("6.1.192")
                      if e.where == "mm/migrate_device.c:migrate_device_finalize")
    assert len(expected) >= 10          # finalize:* (every finalize step but the rmap one)
    lines = out.splitlines()
    assert [line.split()[1] for line in lines] == expected, out
    fp = table.steps[expected[0]]["6.1.192"].fingerprint
    for line in lines:
        assert re.fullmatch(r"stale: \S+ follows mm/migrate_device\.c:migrate_device_finalize, "
                            rf"table {fp} source [0-9a-f]{{12}}", line), line
    assert re.search(r"\(1 of \d+ functions changed", err), err
    assert "--update" in err


def test_comment_and_whitespace_edits_are_not_stale(capsys, table, tree61, tmp_path):
    tree = _copy_tree(table, "6.1.192", tree61, tmp_path / "linux")
    _edit_function(tree / "mm/migrate_device.c", "void migrate_device_finalize(",
                   "folio_unlock(src);\n\t\tfolio_put(src);",
                   "/* a new comment { with a brace */\n\t\tfolio_unlock( src ) ;"
                   "   // and another }\n\n\t\tfolio_put(src);")
    rc, out, err = _run(capsys, "model", "check-source", "--release", "6.1.192",
                        "--source", str(tree))
    assert rc == 0, out + err


def test_update_rewrites_only_the_changed_fingerprints(capsys, table, tree61, tmp_path):
    tree = _copy_tree(table, "6.1.192", tree61, tmp_path / "linux")
    _edit_function(tree / "mm/migrate_device.c", "static bool migrate_vma_check_page(",
                   "extra++;", "extra += 2;")
    copy = tmp_path / "sources.toml"
    shutil.copyfile(table.path, copy)
    before = copy.read_text()
    args = ("model", "check-source", "--release", "6.1.192", "--source", str(tree),
            "--table", str(copy))
    assert _run(capsys, *args)[0] == 1
    rc, out, err = _run(capsys, *args, "--update")
    assert rc == 0 and "1 fingerprint(s) rewritten" in out, out + err
    assert _run(capsys, *args)[0] == 0
    changed = [(a, b) for a, b in zip(before.splitlines(), copy.read_text().splitlines())
               if a != b]
    assert len(changed) == 1 and "migrate_vma_check_page" in changed[0][0]
    assert before.count("\n#") == copy.read_text().count("\n#")     # comments kept


# ---- bad input: one line, exit 2 ----------------------------------------------------------

def test_unknown_release_and_unfingerprinted_release(capsys):
    rc, out, err = _run(capsys, "model", "check-source", "--release", "6.2.0")
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert "unknown release '6.2.0'" in err and "6.1.192" in err
    rc, _, err = _run(capsys, "model", "check-source", "--release", "v5.15")
    assert rc == 2 and "no fingerprints" in err and err.count("\n") == 1


def test_missing_source_package_names_the_apt_package(capsys, monkeypatch, tmp_path):
    from migfuzz.kernels import env
    monkeypatch.setitem(env.RELEASES, "6.12", env.Release(
        "6.12", "linux-source-6.12", tmp_path / "linux-source-6.12.tar.xz", "mm"))
    rc, out, err = _run(capsys, "model", "check-source", "--release", "6.12.117")
    assert rc == 2 and err.count("\n") == 1, err
    assert "`apt-get install -y linux-source-6.12`" in err


def test_function_not_in_the_source(capsys, table, tree61, tmp_path):
    tree = _copy_tree(table, "6.1.192", tree61, tmp_path / "linux")
    _edit_function(tree / "mm/migrate_device.c", "static bool migrate_vma_check_page(",
                   "migrate_vma_check_page(struct page", "migrate_vma_check_folio(struct page")
    rc, out, err = _run(capsys, "model", "check-source", "--release", "6.1.192",
                        "--source", str(tree))
    assert rc == 2 and err.count("\n") == 1, err
    assert "function migrate_vma_check_page in mm/migrate_device.c not found" in err
    assert "check_page:fail" in err
    rc, _, err = _run(capsys, "model", "check-source", "--release", "6.1.192",
                      "--source", str(tmp_path / "nowhere"))
    assert rc == 2 and "not a directory" in err


def test_malformed_tables_are_refused(table, tmp_path):
    good = table.path.read_text()
    cases = {
        # a kernel step without an entry for a fingerprinted release
        re.sub(r'\n"6\.12\.117" *= \{ file = "mm/migrate_device\.c", function = '
               r'"migrate_vma_check_page".*', "", good): "no entry for 6.12.117",
        good.replace('"6.1.192"  = { file = "mm/migrate_device.c", function = '
                     '"migrate_vma_check_page", fingerprint = "',
                     '"6.1.192"  = { file = "mm/migrate_device.c", function = '
                     '"migrate_vma_check_page", fingerprint = "zz', 1): "not 12 hex",
        good + '\n[step."x:y"]\n"7.0" = { absent = "no" }\n': "unknown release '7.0'",
        good + '\n[step."x:y"]\nmodel = "m"\n"6.1.192" = { absent = "no" }\n':
            "a model step has only",
    }
    for i, (text, msg) in enumerate(cases.items()):
        assert text != good, msg
        p = tmp_path / f"t{i}.toml"
        p.write_text(text)
        with pytest.raises(sc.SourceError, match=msg):
            sc.load_table(p)


# ---- the table as shipped -----------------------------------------------------------------

def test_table_is_package_data_and_complete_per_release(table):
    assert table.path.name == "sources.toml" and table.path.is_file()
    assert set(RELEASES) <= set(table.fingerprinted)
    for release in RELEASES:
        for e in table.entries(release):
            assert re.fullmatch(r"[0-9a-f]{12}", e.fingerprint), (e.site, release)
    # 6.12 renamed what collect and unmap call; the table follows the renames
    assert table.steps["collect_pmd:split"]["6.12.117"].function == \
        "split_huge_page_to_list_to_order"
    assert table.steps["gup_fast:get"]["6.12.117"].function == "gup_fast_pte_range"


def test_steps_lists_every_row(capsys, table):
    rc, out, _ = _run(capsys, "model", "steps", "--release", "6.1.192", "--json")
    assert rc == 0
    rows = json.loads(out)["steps"]
    assert {r["step"] for r in rows} == set(table.sites())
    row = next(r for r in rows if r["step"] == "collect:trylock")
    assert row["file"] == "mm/migrate_device.c" and row["function"] == \
        "migrate_vma_collect_pmd" and len(row["fingerprint"]) == 12
    assert next(r for r in rows if r["step"] == "cpu:read")["model"]
    rc, out, _ = _run(capsys, "model", "steps")
    assert rc == 0 and "finalize:remove_migration_ptes" in out and "v5.15" in out
    assert _run(capsys, "model", "steps", "--release", "nope")[0] == 2


# ---- completeness: every site the model uses has a row ------------------------------------

_SITE = re.compile(r"[a-z_]+:[a-z_]+")


def _static_sites() -> dict[str, list[str]]:
    """Site-shaped string literals ("phase:what") in the model's source, with where."""
    out: dict[str, list[str]] = {}
    for path in sorted((ROOT / "fuzzer").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    _SITE.fullmatch(node.value):
                out.setdefault(node.value, []).append(
                    f"{path.relative_to(ROOT)}:{node.lineno}")
    return out


def _dynamic_sites() -> dict[str, list[str]]:
    """Every site an execution records (trace steps, branches, the page audit log, lock
    and free sites, migration-entry sites): each built-in scenario on each preset variant,
    with every strategy and 3 seeds (~1,300 executions, about a second). Built names
    (phase + ":isolate", site + ":busy") only show up here."""
    from migfuzz.corpus.builtin import get_scenario, scenario_names
    from migfuzz.fuzzer.execute import execute
    from migfuzz.fuzzer.kernel.variants import VARIANTS
    from migfuzz.fuzzer.scheduler import STRATEGIES, make_strategy
    out: dict[str, list[str]] = {}
    for name in scenario_names():
        scenario = get_scenario(name)
        for variant in VARIANTS:
            for strategy in STRATEGIES:
                for seed in range(3):
                    r = execute(scenario, variant, make_strategy(strategy, seed), seed=seed)
                    k = r.kernel
                    names = {site for _, site, _ in r.trace} | set(r.branches)
                    names |= {row[2] for row in k.audit}
                    names |= {s for p in k.pages.values() for s in (p.lock_site, p.free_site)}
                    names |= {mm.ptl_site for mm in k.mms.values()}
                    names |= {s for mm in k.mms.values() for s in mm.pte_sites.values()}
                    for s in names - {""}:
                        out.setdefault(s, []).append(f"scenario {name} on {variant} "
                                                     f"({strategy}, seed {seed})")
    return out


@pytest.fixture(scope="module")
def used_sites() -> dict[str, list[str]]:
    used = _static_sites()
    for s, where in _dynamic_sites().items():
        used.setdefault(s, []).extend(where[:1])
    return used


def test_every_site_the_model_uses_has_a_row(table, used_sites):
    missing = [f"{s} (used at {', '.join(where[:2])})" for s, where in sorted(used_sites.items())
               if not table.covers(s)]
    assert not missing, ("sites without a row in fuzzer/kernel/sources.toml (name the kernel "
                         "function per release, or model = \"why\"): " + "; ".join(missing))


def test_every_row_is_a_site_the_model_uses(table, used_sites):
    unused = [s for s in table.sites()
              if s not in used_sites and not any(u.startswith(s + ":") for u in used_sites)]
    assert not unused, f"rows in fuzzer/kernel/sources.toml no model code uses: {unused}"


def test_the_completeness_check_sees_a_new_site(table, used_sites):
    # what a helper adding a step without a row would meet
    assert not table.covers("collect:new_step")
    assert table.covers("collect:trylock:busy")          # derived from collect:trylock
    assert "lru_add_drain" in used_sites and "unmap:isolate" in used_sites   # built names


# ---- the C extractor ----------------------------------------------------------------------

TRICKY = r'''
#include <linux/mm.h>
#define OPEN {
#define BODY(x) do { \
        x; } while (0)
int target(int a);                      /* a prototype: not the definition */
static const char *s = "target(int a) { not code }";
/* target(void) { in a comment } */
// target(void) { in a line comment }
static void caller(struct ops *ops)
{
        target(1);                      /* a call */
        ops->target(2);
        char c = '}', d = '{', e = '\'';
        const char *q = "\"}";
}

static inline
int __attribute__((unused))
target(int a,
       int b)
        __releases(x)
{
#if CONFIG_A
        if (a) {
#else
        if (b) {
#endif
                BODY(a++);
                printk("}}}");
        }
        return a;
}

int after(void) { return 0; }
'''


def test_extractor_finds_the_definition_among_decoys():
    defs = sc.find_definitions(TRICKY, "target")
    assert len(defs) == 1
    d = defs[0]
    assert d.startswith("static inline int __attribute__ ( ( unused ) ) target ( int a , "
                        "int b ) __releases ( x ) {"), d
    assert d.endswith("return a ; }"), d
    assert '"}}}"' in d and "# if CONFIG_A" in d and "after" not in d
    assert sc.find_definitions(TRICKY, "caller")[0].endswith('const char * q = "\\"}" ; }')
    assert sc.find_definitions(TRICKY, "after") == ["int after ( void ) { return 0 ; }"]
    assert sc.find_definitions(TRICKY, "OPEN") == []
    assert sc.find_definitions(TRICKY, "missing") == []


def test_extractor_takes_every_ifdef_arm_definition():
    src = ("#ifdef CONFIG_MMU\nstatic int f(void)\n{\n\treturn 1;\n}\n#else\n"
           "static int f(void) { return 0; }\n#endif\nint g(void) { return f(); }\n")
    assert sc.find_definitions(src, "f") == ["static int f ( void ) { return 1 ; }",
                                             "static int f ( void ) { return 0 ; }"]
    # two arms opening one body: the depth goes back to the #if's at #else, so the second
    # signature is at the top level too (and the body closes once, after #endif)
    shared = ("#ifdef CONFIG_A\nstatic int h(int x) {\n\treturn x;\n#else\n"
              "static int h(int x) {\n\treturn 0;\n#endif\n}\nint k(void) { return 1; }\n")
    defs = sc.find_definitions(shared, "h")
    assert len(defs) == 2 and all(d.endswith("return 0 ; # endif }") for d in defs), defs
    assert sc.find_definitions(shared, "k") == ["int k ( void ) { return 1 ; }"]
    # arms that differ in braces: the first arm's count holds after #endif
    uneven = ("int f(int a)\n{\n#if A\n\tif (a) {\n#else\n\tif (a)\n#endif\n\t\ta++;\n"
              "#if A\n\t}\n#endif\n\treturn a;\n}\nint g(void) { return 0; }\n")
    assert sc.find_definitions(uneven, "f")[0].endswith("# endif return a ; }")
    assert sc.find_definitions(uneven, "g") == ["int g ( void ) { return 0 ; }"]


def test_fingerprint_ignores_comments_and_whitespace_not_code():
    fp = sc.fingerprint(sc.find_definitions(TRICKY, "target"))
    reformatted = TRICKY.replace("return a;", "return   a ;  /* done */").replace(
        "int b)", "int b) // the second\n")
    assert sc.fingerprint(sc.find_definitions(reformatted, "target")) == fp
    for old, new in (("return a;", "return b;"), ('"}}}"', '"}}"'), ("a++", "++a"),
                     ("#if CONFIG_A", "#if CONFIG_B")):
        changed = TRICKY.replace(old, new)
        assert changed != TRICKY
        assert sc.fingerprint(sc.find_definitions(changed, "target")) != fp, (old, new)
