"""Hardening of the command line against what a new user (or a hostile file) gives it
(issue 11, section 4): bounded schedules, valid text, files that cannot be written,
--version, --json everywhere it means something, reproducer files per campaign, bad filters,
tidy listings and the real size of a file that is too big. Bad input is one line on
stderr, exit status 2, no traceback, nothing written."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGRESSION = ROOT / "tests/regressions/v5.16__dp-fault-race.json"


def migfuzz(*args, cwd=None, env=None):
    e = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    e.pop("MIGFUZZ_DB", None)
    return subprocess.run([sys.executable, "-m", "migfuzz", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=e, timeout=300)


def one_line_error(r, *needles):
    """Exit 2, one line on stderr (no traceback) that says each of ``needles``."""
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def usage_error(r, command: str, *needles):
    """An argparse error: exit 2, the command's own usage, then 'migfuzz CMD: error:'."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith(f"usage: migfuzz {command} "), r.stderr
    assert f"migfuzz {command}: error:" in r.stderr, r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


def base_input() -> dict:
    return json.loads(REGRESSION.read_text())


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A small stored campaign (a USE_AFTER_FREE bug) for the commands that need one."""
    d = tmp_path_factory.mktemp("hardening")
    db = f"sqlite:///{d}/h.db"
    r = migfuzz("fuzz", "--workers", "0", "--scenario", "dp-fault-race", "--execs", "300",
                "--seed", "1", "--db", db, "--name", "h1", "--out", str(d / "repros"),
                "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    return {"db": db, "dir": d, "result": json.loads(r.stdout)}


# -- item 2: schedules are bounded on input, before anything expands them -----------------

# The peak RSS of this process's own address space (VmHWM). Not getrusage's ru_maxrss:
# Linux carries the pre-exec high-water mark over exec, so a child forked from a pytest
# process that had grown to ~150 MB reported ~155 MB before it did anything.
MEMORY_PROBE = """
import sys
from migfuzz.cli import main
try:
    rc = main(sys.argv[1:])
finally:
    hwm = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    print("maxrss_kb", hwm, file=sys.stderr)
sys.exit(rc)
"""


@pytest.mark.parametrize("count", [10**18, 30_000_000, 20_001])
def test_replay_refuses_a_schedule_longer_than_the_step_limit(tmp_path, count):
    inp = base_input()
    inp["schedule"] = [[0, count]]
    path = write_json(tmp_path / "long.json", inp)
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", MEMORY_PROBE, "replay", str(path)],
                       capture_output=True, text=True, cwd=tmp_path, env=e, timeout=300)
    err = [x for x in r.stderr.splitlines() if not x.startswith("maxrss_kb")]
    rss = int(r.stderr.split("maxrss_kb")[1].split()[0])
    assert r.returncode == 2 and len(err) == 1, r.stderr
    assert "more than 20000 decisions" in err[0] and "max_steps" in err[0], err
    assert rss < 150_000, f"replay of a refused schedule peaked at {rss} kB"


def test_a_schedule_total_over_the_limit_is_refused_even_in_small_runs(tmp_path):
    inp = base_input()
    inp["schedule"] = [[0, 1], [1, 1]] * 10_001       # 20002 decisions in runs of 1
    one_line_error(migfuzz("replay", str(write_json(tmp_path / "t.json", inp))),
                   "more than 20000 decisions")


def test_the_bound_is_the_scenarios_own_max_steps():
    from migfuzz.corpus.input import InputError, check
    inp = base_input()
    inp["scenario"]["max_steps"] = 100
    inp["schedule"] = [[0, 60], [1, 40]]
    check(inp)                                        # exactly the limit: accepted
    inp["schedule"] = [[0, 60], [1, 41]]
    with pytest.raises(InputError, match="more than 100 decisions"):
        check(inp)
    inp["scenario"]["max_steps"] = 1000
    check(inp)


def test_every_stored_regression_fits_the_bound():
    from migfuzz.corpus.input import load
    for p in sorted((ROOT / "tests/regressions").glob("*.json")):
        load(str(p))


def test_corpus_import_refuses_a_huge_run_and_writes_nothing(tmp_path):
    inp = base_input()
    inp["schedule"] = [[0, 10**18]]
    f = tmp_path / "c.jsonl"
    f.write_text(json.dumps(inp) + "\n")
    db = tmp_path / "i.db"
    r = migfuzz("corpus", "import", str(f), "--name", "x", "--db", f"sqlite:///{db}")
    one_line_error(r, f"{f}:1:", "more than 20000 decisions")
    assert not db.exists()


def test_the_store_refuses_a_huge_run(tmp_path):
    from migfuzz.corpus import jsonl
    from migfuzz.corpus.input import InputError
    inp = base_input()
    inp["schedule"] = [[1, 5], [0, 10**18]]
    with pytest.raises(InputError, match="more than 20000 decisions"):
        jsonl.check_entry({"input": inp}, "line")
    from migfuzz.db.errors import StoreError
    from migfuzz.db.store import Store
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as st:
        st.create_campaign("c", "v5.16")
        with pytest.raises(StoreError, match="more than 20000 decisions"):
            st.add_corpus_entries("c", [{"input": inp}])


def test_a_stored_reproducer_is_checked_again_when_read(store, tmp_path):
    """A database written by an older migfuzz (or by hand) with a huge schedule: replay of
    the bug is one line, not a MemoryError."""
    import shutil
    import sqlite3
    src = store["db"][len("sqlite:///"):]
    db = tmp_path / "edited.db"
    shutil.copy(src, db)
    con = sqlite3.connect(db)
    sig, text = con.execute("SELECT signature, reproducer FROM bugs "
                            "WHERE reproducer IS NOT NULL").fetchone()
    inp = json.loads(text)
    inp["schedule"] = [[0, 10**18]]
    con.execute("UPDATE bugs SET reproducer = ? WHERE signature = ?",
                (json.dumps(inp), sig))
    con.commit()
    con.close()
    for argv in (["replay"], ["show"], ["minimize"], ["triage", "--status", "fixed"]):
        one_line_error(migfuzz(argv[0], sig, *argv[1:], "--db", f"sqlite:///{db}"), sig,
                       "more than 20000 decisions")


# -- item 3: text in an input or scenario is checked: valid, printable -------------------

def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


@pytest.mark.parametrize("path,value", [
    (("scenario", "name"), "\ud800bad"),
    (("scenario", "actors", 0, "name"), "cpu\ud800"),
    (("scenario", "description"), "a \ud800 description"),
    (("scenario", "kind"), "\x1b[31mred"),
    (("scenario", "name"), "two\nlines"),
    (("scenario", "name"), "x" * 300),
    (("strategy",), "\ud800"),
    (("result", "findings", 0, "title"), "\ud800"),
    (("result", "findings"), [1]),
    (("result",), "not an object"),
    (("scenario", "layout", 0, "mm"), ["A"]),
    (("scenario", "actors", 0, "program", 0, "op"), {"op": 1}),
    (("scenario", "actors", 0, "program", 0, "mm"), [1]),
])
def test_bad_text_in_a_reproducer_is_one_line(tmp_path, path, value):
    inp = base_input()
    _set(inp, path, value)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(inp))                     # \ud800 is written as an escape
    for cmd in ("replay", "show"):
        one_line_error(migfuzz(cmd, str(f)), str(f))


def test_a_scenario_file_with_bad_text_or_bytes_is_one_line(tmp_path):
    sc = base_input()["scenario"]
    sc["name"] = "\ud800bad"
    one_line_error(migfuzz("run", "--scenario", str(write_json(tmp_path / "s.json", sc))),
                   "'name' is not valid Unicode")
    raw = tmp_path / "raw.json"
    raw.write_bytes(b'{"name": "\xff\xfe"}')
    one_line_error(migfuzz("run", "--scenario", str(raw)), str(raw))


def test_corpus_import_refuses_a_lone_surrogate(tmp_path):
    inp = base_input()
    inp["scenario"]["name"] = "\ud800bad"
    f = tmp_path / "c.jsonl"
    f.write_text(json.dumps(inp) + "\n")
    db = tmp_path / "i.db"
    one_line_error(migfuzz("corpus", "import", str(f), "--name", "x", "--db",
                           f"sqlite:///{db}"), f"{f}:1:")
    assert not db.exists()


# -- item 8: a file that cannot be written is one line, before the work, nothing left ----

def test_export_to_a_missing_directory(tmp_path):
    out = tmp_path / "missing" / "x.py"
    for fmt in ("pytest", "json"):
        one_line_error(migfuzz("export", str(REGRESSION), "-o", str(out), "--format", fmt),
                       str(out), "no directory")
    one_line_error(migfuzz("export", str(REGRESSION), "-o", str(tmp_path)), "is a directory")
    assert sorted(os.listdir(tmp_path)) == []


def test_run_save_is_checked_before_the_executions(tmp_path):
    out = tmp_path / "missing" / "x.json"
    r = migfuzz("run", "--scenario", "dp-fault-race", "--count", "3000", "--save", str(out))
    one_line_error(r, str(out), "no directory")
    assert r.stdout == ""                              # nothing ran


def test_fuzz_out_is_checked_before_the_campaign(tmp_path):
    (tmp_path / "afile").write_text("x")
    r = migfuzz("fuzz", "--workers", "0", "--scenario", "dp-fault-race", "--execs", "300",
                "--no-db", "--out", str(tmp_path / "afile" / "repros"))
    one_line_error(r, "not a directory")
    assert r.stdout == ""


def test_corpus_export_to_a_missing_directory(store, tmp_path):
    out = tmp_path / "missing" / "c.jsonl"
    one_line_error(migfuzz("corpus", "export", "--name", "h1", "--db", store["db"],
                           "-o", str(out)), str(out), "no directory")


def test_write_atomic_leaves_nothing_half_written(tmp_path):
    from migfuzz.cli import UsageError
    from migfuzz.files import write_atomic
    target = tmp_path / "f.txt"
    target.write_text("old")

    def failing(f):
        f.write("half")
        raise OSError(28, "No space left on device")
    with pytest.raises(UsageError, match="No space left on device"):
        write_atomic(str(target), failing)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]


# -- item 11: --version -------------------------------------------------------------------

def test_version():
    from importlib.metadata import version

    from migfuzz.fuzzer import ENGINE_VERSION
    r = migfuzz("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"migfuzz {version('migfuzz')} (engine version {ENGINE_VERSION})"


# -- item 12: --json on every command it means something for; subcommand usage ----------

def _leaves(parser: argparse.ArgumentParser, path=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
        return
    for name, p in subs[0].choices.items():
        yield from _leaves(p, path + (name,))


def test_every_command_takes_json_or_is_listed_as_not_applicable():
    from migfuzz.cli import NO_JSON, build_parser
    leaves = dict(_leaves(build_parser()))
    assert {"export", "db upgrade", "corpus export", "dashboard", "replay"} <= set(leaves)
    for name, p in leaves.items():
        has = any("--json" in a.option_strings for a in p._actions)
        assert has != (name in NO_JSON), f"{name}: --json {'given' if has else 'missing'}"
    readme = (ROOT / "README.md").read_text()
    for name in NO_JSON:
        assert f"`--json` except `{name}`" in readme


def test_export_and_db_upgrade_and_corpus_export_print_json(store, tmp_path):
    out = tmp_path / "t.py"
    r = migfuzz("export", str(REGRESSION), "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["output"] == str(out) and got["format"] == "pytest" and out.exists()
    r = migfuzz("db", "upgrade", "--db", store["db"], "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["revision"]
    c = tmp_path / "c.jsonl"
    r = migfuzz("corpus", "export", "--name", "h1", "--db", store["db"], "-o", str(c),
                "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["campaign"] == "h1" and got["entries"] == len(c.read_text().splitlines()) - 1


@pytest.mark.parametrize("argv,command", [
    (["export", "X", "-o", "x.py", "--bogus"], "export"),
    (["corpus", "export", "--name", "x", "--bogus"], "corpus export"),
    (["db", "upgrade", "--bogus"], "db upgrade"),
    (["variants", "extra"], "variants"),
    (["dashboard", "--json"], "dashboard"),
])
def test_an_unknown_argument_shows_the_subcommands_usage(argv, command):
    usage_error(migfuzz(*argv), command, "unrecognized arguments")


# -- item 13: reproducer files are per campaign and never overwritten --------------------

def test_two_campaigns_keep_their_own_reproducer_files(store):
    d = store["dir"]
    first = [b["repro_path"] for b in store["result"]["buckets"]]
    assert first and all(Path(d, p).exists() for p in first)
    before = {p: Path(d, p).read_text() for p in first}
    r = migfuzz("fuzz", "--workers", "0", "--scenario", "dp-fault-race", "--execs", "300",
                "--seed", "2", "--db", store["db"], "--name", "h2/other", "--out",
                str(d / "repros"), "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    second = [b["repro_path"] for b in json.loads(r.stdout)["buckets"]]
    assert second and not set(first) & set(second)
    assert {p: Path(d, p).read_text() for p in first} == before
    for p in first + second:
        assert Path(p).parent.parent == Path(d, "repros")  # repros/<campaign>/file
        assert Path(d, p).resolve().is_relative_to((d / "repros").resolve())


def test_no_db_never_overwrites_a_different_reproducer(tmp_path):
    args = ["fuzz", "--workers", "0", "--scenario", "dp-fault-race", "--execs", "300",
            "--no-db", "--out", str(tmp_path), "--json"]
    r = migfuzz(*args)
    assert r.returncode == 0, r.stderr
    path = Path(json.loads(r.stdout)["buckets"][0]["repro_path"])
    again = migfuzz(*args)                             # same run, same file: same path
    assert Path(json.loads(again.stdout)["buckets"][0]["repro_path"]) == path
    path.write_text("someone else's reproducer\n")
    third = migfuzz(*args)
    new = Path(json.loads(third.stdout)["buckets"][0]["repro_path"])
    assert new != path and new.name == path.stem + "-2.json"
    assert path.read_text() == "someone else's reproducer\n"


def test_a_directory_in_the_way_of_a_reproducer_is_passed_over(tmp_path):
    args = ["fuzz", "--workers", "0", "--scenario", "dp-fault-race", "--execs", "300",
            "--no-db", "--out", str(tmp_path), "--json"]
    first = Path(json.loads(migfuzz(*args).stdout)["buckets"][0]["repro_path"])
    first.unlink()
    first.mkdir()
    r = migfuzz(*args)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["buckets"][0]["repro_path"] == str(
        first.with_name(first.stem + "-2.json"))


# -- item 22: a bad filter or an empty reference -----------------------------------------

def test_bugs_kind_must_be_a_known_kind(store):
    r = migfuzz("bugs", "--kind", "NOPE", "--db", store["db"])
    usage_error(r, "bugs", "invalid choice: 'NOPE'", "USE_AFTER_FREE", "LOST_WRITE")
    r = migfuzz("bugs", "--kind", "use_after_free", "--db", store["db"], "--json")
    assert r.returncode == 0 and {b["kind"] for b in json.loads(r.stdout)} == {
        "USE_AFTER_FREE"}


@pytest.mark.parametrize("cmd", ["show", "replay", "export"])
@pytest.mark.parametrize("ref", ["", "  ", "c:"])
def test_an_empty_reference_says_so(store, tmp_path, cmd, ref):
    extra = ["-o", str(tmp_path / "x.py")] if cmd == "export" else []
    one_line_error(migfuzz(cmd, ref, "--db", store["db"], *extra), "empty reference")


def test_triage_and_minimize_with_an_empty_reference(store):
    one_line_error(migfuzz("triage", "", "--note", "x", "--db", store["db"]),
                   "empty reference")
    one_line_error(migfuzz("minimize", "", "--db", store["db"]), "empty reference")


# -- item 23: listings -----------------------------------------------------------------

def test_variants_say_each_name_once():
    r = migfuzz("variants")
    assert r.returncode == 0
    for line in r.stdout.splitlines():
        name, sep, rest = line.partition(": ")
        if sep and not line.startswith(" "):
            assert not rest.startswith(name), line


def test_scenarios_count_in_the_singular_for_one():
    r = migfuzz("scenarios")
    assert r.returncode == 0
    assert "1 actors" not in r.stdout and "mm(s)" not in r.stdout
    assert "1 actor, 1 mm, " in r.stdout and "3 actors, 1 mm, " in r.stdout


def test_run_and_fuzz_help_explain_their_strategy_lists():
    from migfuzz.fuzzer.search.portfolio import SEARCHES
    from migfuzz.fuzzer.scheduler import STRATEGIES
    run_help = " ".join(migfuzz("run", "--help").stdout.split())
    fuzz_help = " ".join(migfuzz("fuzz", "--help").stdout.split())
    fuzz_only = (set(SEARCHES) | {"exhaustive"}) - set(STRATEGIES)
    run_only = set(STRATEGIES) - set(SEARCHES)
    for name in fuzz_only:
        assert name in run_help, name                 # run says what fuzz adds
    for name in run_only:
        assert f"{name}, which fuzz leaves out" in fuzz_help, name


# -- item 29: the size-limit message names the file's real size -------------------------

def test_a_too_big_file_is_named_by_its_real_size(tmp_path):
    from migfuzz.corpus.input import MAX_BYTES
    big = tmp_path / "big.json"
    size = 52 * 1000 * 1000
    with open(big, "wb") as f:
        f.truncate(size)                               # sparse: no 52 MB written
    for argv in (["replay", str(big)], ["run", "--scenario", str(big)]):
        one_line_error(migfuzz(*argv), f"{size} bytes is larger than the {MAX_BYTES}-byte")


def test_load_reads_at_most_the_limit(tmp_path, monkeypatch):
    import builtins

    from migfuzz.corpus import input as inputs
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(inputs.MAX_BYTES * 10)
    reads = []
    real_open = builtins.open

    class Spy:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            reads.append(n)
            return self.f.read(n)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    monkeypatch.setattr(builtins, "open", lambda *a, **k: Spy(real_open(*a, **k)))
    with pytest.raises(inputs.InputError, match=f"{inputs.MAX_BYTES * 10} bytes"):
        inputs.load(str(big))
    assert reads == [inputs.MAX_BYTES + 1]
