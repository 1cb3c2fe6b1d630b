"""kernel repro's pure parts: the translator, the guest program's spec, the judge, and the
verdicts stored on a bug. No kernel, no QEMU (see test_repro_kernel.py for the lane)."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from migfuzz.corpus import input as inputs
from migfuzz.db.errors import StoreError
from migfuzz.db.store import Store
from migfuzz.db.verdicts import add_verdict, render_verdicts, verdicts
from migfuzz.kernels import repro
from migfuzz.kernels.translate import GUEST_HPAGE, Untranslatable, translate

ROOT = Path(__file__).resolve().parents[2]
THP_INPUT = ROOT / "tests" / "regressions" / "v6.1__thp-collect-race.json"


def thp_input() -> dict:
    return inputs.load(str(THP_INPUT))


# ------------------------------------------------------------------ translator
def test_thp_scenario_becomes_one_thread_per_actor_on_a_2mib_thp():
    inp = thp_input()
    prog = translate(inp["scenario"], "REFCOUNT_LEAK")
    assert [a.name for a in prog.actors] == ["mig0", "mig1", "cpu2"]
    assert [[op.kind for op in a.ops] for a in prog.actors] == [["migrate"], ["migrate"],
                                                                ["write"]]
    # the model's 4-page THP is one real 2 MiB THP, aligned
    assert prog.scale == GUEST_HPAGE // 4
    assert prog.vmas == [(0, 512, "rw", False, True)]
    assert prog.layout == [(0, 512, "thp", 100, 0)]
    mig = prog.actors[0].ops[0]
    assert (mig.start, mig.npages, mig.dev) == (0, 512, 0)
    spec = prog.spec()
    assert "vma 0 512 rw private 1" in spec
    assert "layout 0 512 thp 100 0" in spec
    assert spec.count("migrate 0 512 0") == 2
    # the only writer decides every page's final content: checked
    assert prog.checks == [(0, 512, prog.actors[2].ops[0].value)]


def test_plain_scenario_keeps_one_guest_page_per_model_page():
    from migfuzz.corpus.builtin import get_scenario
    prog = translate(get_scenario("madvise-race"), "LOST_WRITE")
    assert prog.scale == 1 and not prog.has_thp
    kinds = {op.kind for a in prog.actors for op in a.ops}
    assert kinds <= {"migrate", "read", "write", "zap"}


@pytest.mark.parametrize("change, name", [
    (lambda sc: sc["actors"][1]["program"].__setitem__(
        0, {"op": "pin", "mm": "A", "start": 0, "npages": 1}), "'mig1'"),
    (lambda sc: sc["actors"][0]["program"].__setitem__(
        0, {"op": "reclaim", "mm": "A", "start": 0, "npages": 4}), "'mig0'"),
    (lambda sc: sc["actors"][0]["program"][0].__setitem__("fail_alloc", [0]), "'mig0'"),
])
def test_an_actor_the_guest_cannot_express_is_refused_by_name(change, name):
    sc = copy.deepcopy(thp_input()["scenario"])
    change(sc)
    with pytest.raises(Untranslatable) as e:
        translate(sc)
    assert name in str(e.value)
    assert "\n" not in str(e.value)


def test_fork_child_ops_run_in_the_child():
    from migfuzz.corpus.builtin import get_scenario
    prog = translate(get_scenario("cow-in-device"))
    ops = prog.actors[0].ops
    assert [op.kind for op in ops] == ["migrate", "fork", "write", "read", "read"]
    assert ops[1].line() == "fork 1"
    assert ops[3].child == 1 and ops[3].line().endswith("@1")
    assert ops[2].child == 0
    # the child's writes do not decide the parent's pages
    sc = get_scenario("anon-write-child")
    prog = translate(sc)
    assert prog.checks == [(0, 2, 100)]
    sc = copy.deepcopy(sc)
    sc["actors"][0]["program"].append({"op": "fork", "mm": "B", "child": "C"})
    with pytest.raises(Untranslatable, match="fork of a forked mm"):
        translate(sc)


def test_second_mm_and_swap_are_refused():
    from migfuzz.corpus.builtin import get_scenario
    with pytest.raises(Untranslatable, match="migB"):
        translate(get_scenario("cross-mm-opposite"))
    with pytest.raises(Untranslatable, match="swap"):
        translate(get_scenario("dirty-page"))


def test_checks_skip_pages_two_actors_race_on():
    sc = copy.deepcopy(thp_input()["scenario"])
    sc["actors"][0]["program"].append({"op": "write", "mm": "A", "start": 0, "npages": 2,
                                       "value": 7})
    prog = translate(sc)
    checked = {p for s, n, _ in prog.checks for p in range(s, s + n)}
    # model pages 0-1 (guest 0..255) have two writers now: unchecked; 2-3 are still checked
    assert not checked & set(range(0, 256))
    assert set(range(256, 512)) <= checked


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler")
def test_guest_program_compiles_static(tmp_path):
    out = tmp_path / "mfrepro"
    r = subprocess.run(["gcc", "-static", "-O2", "-pthread", "-Wall", "-Werror", "-o",
                        str(out), str(repro.GUEST_SRC)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # a spec it cannot read is one structured error line and exit 2
    bad = tmp_path / "bad.spec"
    bad.write_text("mfrepro 1\nfrobnicate 1 2\n")
    r = subprocess.run([str(out), str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    assert json.loads(r.stdout.split("MIGFUZZ ", 1)[1])["mfr"] == "error"


def test_guest_script_carries_the_spec_and_the_mode():
    prog = translate(thp_input()["scenario"], "REFCOUNT_LEAK")
    s = repro.guest_script(prog, "serial", 3, 7, 1, 0, 30)
    assert prog.spec() in s
    assert "-i 3 -r 7 -m serial" in s


# ------------------------------------------------------------------ the judge
def _iter(i, mode, thp=0, pages=0, lost=0, before=2000000, after=2000000):
    return ("MIGFUZZ " + json.dumps({
        "mfr": "iter", "i": i, "mode": mode, "repeats": 10, "leaked_thp": thp,
        "leaked_pages": pages, "lost_writes": lost, "thp_formed": 10, "thp_missing": 0,
        "migrated": 512, "enoent": 1, "ebusy": 0, "einval": 0, "eother": 0,
        "memfree_before_kb": before, "memfree_after_kb": after}))


def _console(lines):
    return "\n".join(["[    0.000000] Linux version 6.1.192", 'MIGFUZZ {"event": "init"}',
                      'MIGFUZZ {"mfr":"start","mode":"race"}'] + lines +
                     ['MIGFUZZ {"mfr":"end","status":"ok"}'])


def test_judge_counts_leaking_iterations_against_a_clean_control():
    race = repro.parse_run(_console([
        _iter(0, "race", thp=1, after=2000000 - 2048),
        'MIGFUZZ {"mfr":"leak","i":0,"pfn":"0x3400","flags":"0x40040d038","mapcount":0,'
        '"kind":"thp"}',
        _iter(1, "race"),
        _iter(2, "race", thp=2, after=2000000 - 4096)]), "race", 3)
    ctl = repro.parse_run(_console([_iter(0, "serial"), _iter(1, "serial")]), "serial", 2)
    v = repro.judge("REFCOUNT_LEAK", race, ctl, release="6.1.192")
    assert (v.hits, v.iterations, v.control_hits, v.control_iterations) == (2, 3, 0, 2)
    assert v.reproduced
    assert v.sentence() == "reproduced on 6.1.192 in 2 of 3 (control: 0 of 2)"
    assert "3 THP(s)" in v.detail["summary"] and "6144 kB" in v.detail["summary"]
    assert "0x3400" in v.excerpt


def test_judge_a_leak_the_control_shows_too_is_not_the_race():
    race = repro.parse_run(_console([_iter(0, "race", pages=3)]), "race", 1)
    ctl = repro.parse_run(_console([_iter(0, "serial", pages=3)]), "serial", 1)
    v = repro.judge("REFCOUNT_LEAK", race, ctl, release="6.12.117")
    assert not v.reproduced and v.hits == 1 and v.control_hits == 1
    assert "so does the control" in v.sentence()


def test_judge_nothing_and_other_kinds():
    race = repro.parse_run(_console([_iter(0, "race"), _iter(1, "race")]), "race", 2)
    ctl = repro.parse_run(_console([_iter(0, "serial")]), "serial", 1)
    v = repro.judge("REFCOUNT_LEAK", race, ctl, release="6.1.192")
    assert not v.reproduced
    assert v.sentence() == "not reproduced in 2 (control: 0 of 1)"
    # a lost write is judged by the data check, not by leaks
    race = repro.parse_run(_console([_iter(0, "race", lost=1, thp=1)]), "race", 1)
    v = repro.judge("LOST_WRITE", race, ctl, release="6.1.192")
    assert v.reproduced and v.hits == 1


def test_judge_hang_and_kasan_from_the_console():
    hung = "\n".join([
        "[    0.000000] Linux version 6.1.192", 'MIGFUZZ {"mfr":"start","mode":"race"}',
        _iter(0, "race"),
        'MIGFUZZ {"mfr":"hang","i":1,"rep":3,"actor":"migA","op":"migrate"}',
        "[   99.000000] INFO: task mfrepro:77 blocked for more than 30 seconds.",
        "[   99.000001]       Not tainted 6.1.192 #1",
        'MIGFUZZ {"mfr":"end","status":"hang"}'])
    race = repro.parse_run(hung, "race", 5)
    ctl = repro.parse_run(_console([_iter(0, "serial")]), "serial", 1)
    assert race.ran == 2
    v = repro.judge("DEADLOCK", race, ctl, release="6.1.192")
    assert v.reproduced and v.hits == 1 and v.iterations == 2
    assert "blocked for more than" in v.excerpt
    kasan = "\n".join([
        "[    0.000000] Linux version 6.1.192", _iter(0, "race"),
        "[   12.000000] ==================================================================",
        "[   12.000001] BUG: KASAN: use-after-free in migrate_vma_pages+0x1/0x2",
        "[   12.000002] Read of size 8 at addr ffff888000000000 by task mfrepro/80",
        "[   12.000003] ==================================================================",
        _iter(1, "race")])
    race = repro.parse_run(kasan, "race", 2)
    v = repro.judge("USE_AFTER_FREE", race, ctl, release="6.1.192")
    assert v.hits == 1 and v.detail["hit_iterations"] == [1]
    assert "KASAN" in v.excerpt


def test_finding_kind_comes_from_the_input_or_the_signature():
    inp = thp_input()
    assert repro.finding_kind(inp, None) == "REFCOUNT_LEAK"
    assert repro.finding_kind({"scenario": {}}, "DEADLOCK-abc") == "DEADLOCK"
    with pytest.raises(repro.ReproError):
        repro.finding_kind({"scenario": {}}, None)


# ------------------------------------------------------------------ verdicts in the store
def _store_with_bug(tmp_path):
    st = Store.open(f"sqlite:///{tmp_path / 'v.db'}")
    inp = thp_input()
    f = inp["result"]["findings"][0]
    st.create_campaign("c", "v6.1")
    st.add_crashes("c", [{"input": inp, "signature": f["signature"], "kind": f["kind"],
                          "title": f["title"], "trace_hash": inp["result"]["trace_hash"],
                          "steps": 10, "worker": "w0", "found_at": 1000.0}])
    return st, f["signature"]


def test_verdict_round_trip_and_render(tmp_path):
    st, sig = _store_with_bug(tmp_path)
    with st:
        assert verdicts(st, sig) == []
        assert render_verdicts([]) == ""
        vid = add_verdict(st, sig, release="6.1.192", config="base", iterations=20, hits=7,
                          control_iterations=20, control_hits=0, mode="stress",
                          command="migfuzz kernel repro REFCOUNT_LEAK", excerpt="leak\nx",
                          detail={"summary": "race: 9 THP(s) leaked"})
        add_verdict(st, sig, release="6.12.117", iterations=10, hits=0,
                    control_iterations=10, control_hits=0)
        rows = verdicts(st, sig)
        assert [r["release"] for r in rows] == ["6.12.117", "6.1.192"]
        old = rows[1]
        assert old["id"] == vid and old["reproduced"] is True and old["hits"] == 7
        assert old["detail"] == {"summary": "race: 9 THP(s) leaked"}
        assert rows[0]["reproduced"] is False
        text = render_verdicts(rows)
        assert "reproduced on 6.1.192 (base, stress) in 7 of 20 (control: 0 of 20)" in text
        assert "not reproduced on 6.12.117" in text
        assert repro.render_verdicts(rows) == text


def test_verdict_refuses_bad_fields(tmp_path):
    st, sig = _store_with_bug(tmp_path)
    with st:
        with pytest.raises(StoreError, match="no such bug"):
            add_verdict(st, "REFCOUNT_LEAK-000000000000", release="6.1.192", iterations=1,
                        hits=0)
        with pytest.raises(StoreError, match="hits"):
            add_verdict(st, sig, release="6.1.192", iterations=1, hits=2)
        with pytest.raises(StoreError, match="mode"):
            add_verdict(st, sig, release="6.1.192", iterations=1, hits=0, mode="psychic")
        with pytest.raises(StoreError, match="unknown"):
            add_verdict(st, sig, release="6.1.192", iterations=1, hits=0, colour="red")
        assert verdicts(st, sig) == []


def test_cli_refuses_an_untranslatable_reproducer_with_one_line(tmp_path, capsys):
    from migfuzz.corpus.builtin import get_scenario
    from migfuzz.cli import main
    inp = inputs.make(get_scenario("gup-pin"), "v6.1", [[0, 1]],
                      result={"findings": [{"kind": "REFCOUNT_LEAK", "title": "t",
                                            "signature": "REFCOUNT_LEAK-0"}],
                              "trace_hash": "0"})
    f = tmp_path / "gup.json"
    f.write_text(json.dumps(inp))
    assert main(["kernel", "repro", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "actor 'test'" in err[0] and "'pin'" in err[0]
    assert main(["kernel", "repro", str(THP_INPUT), "--iterations", "0"]) == 2
    assert main(["kernel", "repro", str(THP_INPUT), "--release", "5.4"]) == 2


def test_model_vs_kernel_pure_parts():
    from migfuzz.corpus.builtin import get_scenario
    m = repro.model_end_state(get_scenario("migrate"))
    assert m == {"findings": [], "migrated": 4, "requested": 4, "where": "RRRR"}
    thp = repro.model_end_state(get_scenario("migrate-thp"))
    assert thp["where"] == "D" * 512 and thp["migrated"] == 512
    text = "\n".join([
        'MIGFUZZ {"event": "compare-start", "scenario": "migrate"}',
        'MIGFUZZ {"mfr":"op","actor":"layout","op":"migrate","start":0,"npages":4,'
        '"errno":0,"cpages":4}',
        'MIGFUZZ {"mfr":"op","actor":"test","op":"migrate","start":0,"npages":4,'
        '"errno":0,"cpages":4}',
        'MIGFUZZ {"mfr":"where","when":"after","pages":"RRRR"}',
        _iter(0, "serial"),
        'MIGFUZZ {"event": "compare-start", "scenario": "migrate-shared"}',
        'MIGFUZZ {"mfr":"op","actor":"test","op":"migrate","start":0,"npages":2,'
        '"errno":2,"cpages":0}'])
    parts = repro.split_compare_console(text)
    assert set(parts) == {"migrate", "migrate-shared"}
    k = repro.kernel_end_state(repro.parse_verbose(parts["migrate"]))
    assert k["where"] == "RRRR" and k["migrated"] == 4 and k["ops"] == [("migrate", 0, 4)]
    assert k["lost_writes"] == 0 and k["leaked"] == 0
    k2 = repro.kernel_end_state(repro.parse_verbose(parts["migrate-shared"]))
    assert k2["ops"] == [("migrate", 2, 0)] and k2["where"] is None


def test_schedule_point_instrumentation_on_a_synthetic_source():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "apply_mf_sched", ROOT / "kernels" / "patches" / "apply_mf_sched.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    src = ('#include "internal.h"\n\nstatic int f(void)\n{\n'
           '\t\t\tfolio_get(folio);\n\t\t\tspin_unlock(ptl);\n'
           '\t\t\tif (!folio_trylock(folio))\n\t\t\t\treturn 1;\n'
           '\t\t\tret = split_folio(folio);\n\t\t\treturn ret;\n}\n')
    out = mod.instrument(src)
    assert out.index('mf_sched_point("collect_pmd:got")') > out.index("spin_unlock(ptl)")
    assert out.index('mf_sched_point("collect_pmd:locked")') < out.index("split_folio")
    assert "void mf_sched_point(const char *site);" in out
    assert "late_initcall(mf_sched_init)" in out
    with pytest.raises(SystemExit):
        mod.instrument(src.replace("spin_unlock(ptl);", "spin_unlock(other);"))
