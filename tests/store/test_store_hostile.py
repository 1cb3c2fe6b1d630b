"""Bad corpus files and newer schemas are refused with one line, and the database is left
exactly as it was (on both backends)."""
from __future__ import annotations

import json

import pytest
import storedata as D
from sqlalchemy import create_engine, inspect, text

from migfuzz.corpus import input as inputs
from migfuzz.corpus import jsonl
from migfuzz.db.errors import StoreError
from migfuzz.db.store import Store
from migfuzz.cli import main


def dump(url: str) -> dict:
    """Every row of every table, to compare a database before and after."""
    eng = create_engine(url)
    try:
        with eng.connect() as conn:
            out = {}
            for t in sorted(inspect(conn).get_table_names()):
                out[t] = sorted(map(repr, conn.execute(text(f'SELECT * FROM "{t}"')).all()))
            return out
    finally:
        eng.dispose()


def good_entry(i: int) -> dict:
    e = D.entry(i)
    return {"hash": inputs.content_hash(e["input"]), **e}


def line(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


HEADER = {"format": "migfuzz-corpus", "version": 1, "campaign": "c", "variant": "v5.16",
          "engine_version": "1", "entries": 3}


def _with(**kw) -> dict:
    e = good_entry(50)
    e.update(kw)
    return e


def _input_with(**kw) -> dict:
    return {"input": {**D.make_input(50), **kw}}


def _nested(depth: int) -> dict:
    inp = D.make_input(50)
    x: object = 1
    for _ in range(depth):
        x = [x]
    inp["scenario"] = {**inp["scenario"], "deep": x}
    return {"input": inp}


BAD_LINES = {
    "malformed JSON": b'{"hash": "abc", "input": \n',
    "not an object": b"[1, 2, 3]\n",
    "invalid UTF-8": b'{"worker": "\xff\xfe"}\n',
    "foreign format": line({"format": "syzkaller-prog", "version": 1}),
    "newer corpus version": line({**HEADER, "version": 2}),
    "header not first": line(HEADER),
    "newer input version": line(_input_with(version=99)),
    "not a migfuzz input": line(_input_with(format="other")),
    "unknown variant": line(_input_with(variant="v9.99")),
    "schedule wrong type": line(_input_with(schedule="0,0,1")),
    "schedule out of range": line(_input_with(schedule=[[7, 1]])),
    "seed wrong type": line(_input_with(seed="seven")),
    "coverage wrong type": line(_with(coverage={"a": 1})),
    "coverage key wrong type": line(_with(coverage=[1, 2])),
    "found_at wrong type": line(_with(found_at="yesterday")),
    "found_at not finite": b'{"input": ' + json.dumps(D.make_input(50)).encode()
                           + b', "found_at": Infinity}\n',
    "new_coverage negative": line(_with(new_coverage=-1)),
    "worker wrong type": line(_with(worker=5)),
    "worker with NUL": line(_with(worker="w\x00")),
    "parent not a hash": line(_with(parent="../../etc/passwd")),
    "unknown key": line(_with(extra=1)),
    "hash mismatch": line(_with(hash="0" * 24)),
    "lone surrogate": line(_input_with(scenario={**D.make_input(50)["scenario"],
                                                 "name": "\ud800"})),
    "huge line": b'{"worker": "' + b"a" * (jsonl.MAX_LINE + 10) + b'"}\n',
    "deeply nested (parser)": b"[" * 200_000 + b"]" * 200_000 + b"\n",
    "deeply nested (input)": line(_nested(60)),
}


@pytest.fixture
def seeded(db_url):
    with Store.open(db_url) as st:
        st.create_campaign("c", "v5.16")
        st.add_corpus_entries("c", [D.entry(i) for i in range(5)])
    return db_url


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_corpus_file_rejected(seeded, tmp_path, capsys, case):
    bad = BAD_LINES[case]
    first = line(HEADER) if case != "header not first" else b""
    body = first + line(good_entry(100)) + bad + line(good_entry(101))
    path = tmp_path / "bad.jsonl"
    path.write_bytes(body)
    before = dump(seeded)
    for name in ("c", "fresh"):                       # an existing and a new campaign
        rc = main(["corpus", "import", str(path), "--db", seeded, "--name", name])
        err = capsys.readouterr().err
        assert rc == 2, (case, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and len(lines[0]) < 400, err[:500]
        where = 2 if case == "header not first" else 3
        assert lines[0].startswith(f"migfuzz: error: {path}:{where}: "), lines[0]
    assert dump(seeded) == before


def test_bad_corpus_messages(tmp_path):
    """Spot-check that the one line says what is wrong."""
    def err(data: bytes) -> str:
        p = tmp_path / "x.jsonl"
        p.write_bytes(data)
        with pytest.raises(inputs.InputError) as e:
            jsonl.load(str(p))
        return str(e.value)
    assert "newer than this migfuzz" in err(line({**HEADER, "version": 2}))
    assert "input format version 99 is newer" in err(line(_input_with(version=99)))
    assert "malformed JSON" in err(BAD_LINES["malformed JSON"])
    assert "byte limit" in err(BAD_LINES["huge line"])
    assert "nested deeper" in err(BAD_LINES["deeply nested (input)"])
    assert "unreadable JSON" in err(BAD_LINES["deeply nested (parser)"])
    assert "does not match" in err(BAD_LINES["hash mismatch"])
    assert "not valid Unicode" in err(BAD_LINES["lone surrogate"])
    with pytest.raises(inputs.InputError, match="No such file"):
        jsonl.load(str(tmp_path / "missing.jsonl"))


def test_good_file_after_rejections(seeded, tmp_path, capsys):
    path = tmp_path / "good.jsonl"
    path.write_bytes(line(HEADER) + b"".join(line(good_entry(i)) for i in range(3, 9))
                     + b"\n" + line(D.make_input(9)))            # a bare input line too
    assert main(["corpus", "import", str(path), "--db", seeded]) == 0
    assert "7 entries read, 5 added to campaign c, 2 already there" in capsys.readouterr().out
    with Store.open(seeded) as st:
        assert len(st.load_campaign_state("c").corpus) == 10


def _set_revision(url: str, rev: str) -> None:
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": rev})
    eng.dispose()


def test_newer_schema_refused(seeded, tmp_path, capsys):
    _set_revision(seeded, "9999_from_the_future")
    before = dump(seeded)
    with pytest.raises(StoreError, match=r"revision 9999_from_the_future\) is newer than "
                                         r"this migfuzz"):
        Store.open(seeded)
    path = tmp_path / "good.jsonl"
    path.write_bytes(line(HEADER) + line(good_entry(60)))
    for argv in (["campaigns"], ["db", "upgrade"], ["db", "status"],
                 ["corpus", "import", str(path)], ["corpus", "export", "--name", "c"]):
        assert main([*argv, "--db", seeded]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is newer than this migfuzz" in err[0]
    assert dump(seeded) == before


def test_older_schema_upgrades(db_url, capsys):
    with pytest.raises(StoreError, match="run 'migfuzz db upgrade'"):
        Store.open(db_url, upgrade=False)
    assert main(["db", "upgrade", "--db", db_url]) == 0
    assert "schema at revision" in capsys.readouterr().out
    with Store.open(db_url, upgrade=False) as st:
        rev, head = st.revision()
        assert rev == head
    assert main(["db", "status", "--db", db_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"]["campaigns"] == 0
