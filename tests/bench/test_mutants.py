"""bench/mutants.py, the mutation score of issue 13: a mutant is applied to a copy of the
package (never to the working tree), a known bug is caught by the campaign, a no-op edit is
reported equivalent, and a stale mutant is refused with an error that names it."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_mutants", ROOT / "bench" / "mutants.py")
mutants = importlib.util.module_from_spec(_spec)
sys.modules["bench_mutants"] = mutants          # dataclasses look their module up there
_spec.loader.exec_module(mutants)

# collect's reference dropped twice once the page is isolated: REFCOUNT_UNDERFLOW at the
# mutated site on the first migration of any campaign (execution 1 in development runs)
CAUGHT = '''
[[mutant]]
id = "put-twice"
kind = "reference dropped twice"
variant = "v6.1"
names = ["unmap:put_collect_ref"]
file = "fuzzer/kernel/unmap.py"
old = """
            k.put(page, "migrate", "unmap:put_collect_ref")
"""
new = """
            k.put(page, "migrate", "unmap:put_collect_ref")
            k.put(page, "migrate", "unmap:put_collect_ref")
"""
'''
# the same comparison with parentheses: no behaviour changes
NOOP = '''
[[mutant]]
id = "no-op"
kind = "weakened refcount check"
variant = "v6.1"
names = ["check_page"]
file = "fuzzer/kernel/unmap.py"
old = """
    ok = page.refcount - extra <= page.mapcount
"""
new = """
    ok = (page.refcount - extra) <= page.mapcount
"""
'''
STALE = '''
[[mutant]]
id = "gone-line"
kind = "flush removed"
variant = "v6.1"
names = ["x"]
file = "fuzzer/kernel/unmap.py"
old = """
    this line is not in the model
"""
new = """
"""
'''


def _dir(tmp_path: Path, *texts: str) -> Path:
    d = tmp_path / "mutants"
    d.mkdir()
    for i, t in enumerate(texts):
        (d / f"m{i}.toml").write_text(t)
    return d


def test_mutant_is_applied_to_a_copy_not_the_tree(tmp_path):
    m = mutants.load_mutants(_dir(tmp_path, CAUGHT))[0]
    tree = (ROOT / "fuzzer/kernel/unmap.py").read_text()
    copy = tmp_path / "copy"
    mutants.make_copy(copy)
    mutants.apply_edits(copy, m)
    mutated = (copy / "migfuzz/fuzzer/kernel/unmap.py").read_text()
    assert mutated.count('"unmap:put_collect_ref")') == tree.count('"unmap:put_collect_ref")') + 1
    assert (ROOT / "fuzzer/kernel/unmap.py").read_text() == tree
    # the child imports the copy, not the installed package
    assert mutants.run_job(copy, {"type": "variants", "variants": ["v6.1"]}) == {}


def test_caught_and_equivalent(tmp_path):
    out = tmp_path / "out"
    rc = mutants.main(["--mutants", str(_dir(tmp_path, CAUGHT, NOOP)), "--execs", "300",
                       "--equiv-seeds", "1", "--max-seconds", "60", "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "mutants.json").read_text())
    rows = {r["id"]: r for r in res["rows"]}
    assert rows["no-op"]["status"] == "equivalent"
    caught = rows["put-twice"]
    assert caught["status"] == "caught", caught
    assert caught["first_new"] <= 50 and caught["named"], caught
    assert res["summary"]["caught"] == 1 and res["summary"]["scored"] == 1
    assert res["summary"]["equivalent"] == 1
    assert "put-twice" in (out / "mutants.md").read_text()


def test_stale_mutant_is_an_error_naming_it(tmp_path, capsys):
    rc = mutants.main(["--mutants", str(_dir(tmp_path, CAUGHT, STALE)), "--check"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "gone-line" in err and "no longer matches" in err and len(err.splitlines()) == 1


def test_every_repository_mutant_applies():
    """The score is re-measured as the model grows: a model edit that makes a mutant's old
    text vanish must update the mutant, not drop it."""
    ms = mutants.load_mutants()
    assert len(ms) >= 40
    assert {m.kind for m in ms} >= set(mutants.KINDS) - {"kernel history"}
    for m in ms:
        for e in m.edits:
            n = mutants._count_lines((ROOT / e.file).read_text(), e.old)
            assert n == 1, f"{m.id}: old text matches {n} times in {e.file} (must be once)"


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert mutants.main(["--only", "no-such-mutant"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.toml").write_text("[[mutant]]\nid = 'x'\n")
    assert mutants.main(["--mutants", str(bad), "--check"]) == 2
    assert "missing 'kind'" in capsys.readouterr().err
