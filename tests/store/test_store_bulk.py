"""Schema 0003 and the bulk paths: a scenario stored once, inputs packed and given back
byte for byte, a database written before 0003 upgraded (and downgraded) with its inputs
intact, PostgreSQL's COPY path equal to its INSERT path, and the recorder's thinning of
crashes past the cap changing nothing a bug shows."""
from __future__ import annotations

import json

import pytest
from alembic import command
from sqlalchemy import text

from migfuzz.corpus import input as inputs
from migfuzz.corpus.builtin import get_scenario, scenario_names
from migfuzz.db import migrate, packing
from migfuzz.db.store import Store


def _inputs(n: int) -> list[dict]:
    """n distinct inputs over a few built-in scenarios, schedules of 1- and 2+-step pairs."""
    names = scenario_names()[:3]
    out = []
    for i in range(n):
        sc = get_scenario(names[i % len(names)])
        na = len(sc["actors"])
        sched = [[j % na, 1] for j in range(3 + i % 5)] + [[i % na, 2 + i]]
        out.append(inputs.make(sc, "v5.16", sched, strategy="random", seed=i))
    return out


def _crash(inp: dict, sig: str = "LOST_WRITE-000000000001", steps: int = 50) -> dict:
    return {"input": inp, "signature": sig, "kind": "LOST_WRITE", "title": f"LOST_WRITE {sig}",
            "trace_hash": "t", "steps": steps, "worker": "w0"}


def test_pack_round_trip_is_byte_for_byte():
    for inp in _inputs(12) + [inputs.make(get_scenario(scenario_names()[0]), "v6.1", [])]:
        sc_text, h, rest = packing.pack(inp)
        assert len(rest) < len(inputs.canonical(inp)) / 2     # the scenario is most of it
        back = packing.unpack(rest, json.loads(sc_text))
        assert inputs.canonical(back) == inputs.canonical(inp)
        assert h == packing.scenario_hash(sc_text)
    # a schedule that is not all integer pairs is kept as it is
    odd = {**_inputs(1)[0], "schedule": [[0, 1], "x"]}
    assert json.loads(packing.pack(odd)[2])["~schedule"] == [[0, 1], "x"]
    back = packing.unpack(packing.pack(odd)[2], odd["scenario"])
    assert inputs.canonical(back) == inputs.canonical(odd)
    assert packing.pack_schedule([[3, 1], [0, 1], [2, 4]]) == [3, 0, [2, 4]]
    assert packing.pack_schedule([[True, 1]]) is None


def test_scenario_stored_once_and_inputs_come_back(store):
    store.create_campaign("c", "v5.16")
    ins = _inputs(30)
    out = store.write_batch("c", corpus=[{"input": i, "coverage": [f"b:{k}"]}
                                         for k, i in enumerate(ins)],
                            crashes=[_crash(i) for i in ins[:10]])
    assert out["corpus"]["added"] == 30 and out["crashes"]["added"] == 10
    counts = store.counts()
    assert counts["scenarios"] == 3
    # the content hash composed by the store is corpus.input.content_hash
    assert sorted(out["corpus"]["new"]) == sorted(inputs.content_hash(i) for i in ins)
    got = {e["hash"]: e["input"] for e in store.iter_corpus("c")}
    for i in ins:
        assert inputs.canonical(got[inputs.content_hash(i)]) == inputs.canonical(i)
    state = store.load_campaign_state("c")
    assert sorted(inputs.canonical(e["input"]) for e in state.corpus) == \
        sorted(inputs.canonical(i) for i in ins)
    for c in store.list_crashes(campaign="c"):
        assert inputs.content_hash(c["input"]) == c["input_hash"]
    # the bug's reproducer is a whole input
    bug = store.list_bugs(campaign="c")[0]
    assert bug.reproducer["scenario"]["name"] in scenario_names()
    # a second campaign: the same scenarios, no new scenario rows
    store.create_campaign("d", "v5.16")
    store.write_batch("d", corpus=[{"input": i} for i in ins[:5]])
    assert store.counts()["scenarios"] == 3


def test_a_rolled_back_batch_writes_its_scenarios_again(store):
    store.create_campaign("c", "v5.16")
    ins = _inputs(3)
    with pytest.raises(Exception):
        store.write_batch("c", corpus=[{"input": ins[0]}],
                          crashes=[{**_crash(ins[0]), "signature": "x" * 65}])
    store.write_batch("c", corpus=[{"input": ins[0]}])
    assert store.counts()["scenarios"] == 1
    assert [e["input"]["scenario"]["name"] for e in store.iter_corpus("c")] == \
        [ins[0]["scenario"]["name"]]


def test_upgrade_from_0002_keeps_every_input(db_url):
    """A database written by the 0002 schema (whole inputs in every row) is converted by
    0003 and reads the same; the downgrade puts the whole inputs back."""
    from sqlalchemy import create_engine
    ins = _inputs(7)
    eng = create_engine(db_url)
    with eng.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0002")
        conn.execute(text("INSERT INTO campaigns (name, variant, config, status, "
                          "engine_version, started_at, updated_at) VALUES "
                          "('old', 'v5.16', '{}', 'stopped', '6', 1, 1)"))
        cid = conn.execute(text("SELECT id FROM campaigns")).scalar()
        for k, i in enumerate(ins):
            conn.execute(text(
                "INSERT INTO corpus_entries (campaign_id, input_hash, input, scenario, "
                "variant, coverage, new_coverage, worker, found_at) VALUES "
                "(:c, :h, :i, :s, 'v5.16', '[]', 0, 'w0', :t)"),
                {"c": cid, "h": inputs.content_hash(i), "i": inputs.canonical(i),
                 "s": i["scenario"]["name"], "t": k})
        conn.execute(text(
            "INSERT INTO bugs (signature, kind, title, status, count, first_seen, last_seen, "
            "minimized, notes, labels, repro_attempts, repro_successes, updated_at) VALUES "
            "('LOST_WRITE-1', 'LOST_WRITE', 't', 'new', 1, 1, 1, false, '', '[]', 0, 0, 1)"))
        conn.execute(text(
            "INSERT INTO crashes (campaign_id, input_hash, signature, kind, title, trace_hash,"
            " variant, steps, input, worker, found_at) VALUES (:c, :h, 'LOST_WRITE-1', "
            "'LOST_WRITE', 't', '', 'v5.16', 3, :i, 'w0', 1)"),
            {"c": cid, "h": inputs.content_hash(ins[0]), "i": inputs.canonical(ins[0])})
    eng.dispose()
    # `migfuzz db status` reads an older schema as it is: no scenarios table yet
    with Store.open_readonly(db_url, require_head=False) as ro:
        assert ro.counts()["corpus_entries"] == 7 and "scenarios" not in ro.counts()
    with Store.open(db_url) as st:
        assert st.revision() == (migrate.head(), migrate.head())
        assert st.counts()["scenarios"] == 3
        got = [inputs.canonical(e["input"]) for e in st.iter_corpus("old")]
        assert got == [inputs.canonical(i) for i in ins]
        crash = st.list_crashes(campaign="old")[0]
        assert inputs.canonical(crash["input"]) == inputs.canonical(ins[0])
        with st.engine.connect() as conn:
            stored = conn.execute(text("SELECT input FROM corpus_entries ORDER BY id")
                                  ).scalars().all()
        assert all('"scenario"' not in s for s in stored)       # converted, not copied
        with st.engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0002")
            back = conn.execute(text("SELECT input FROM corpus_entries ORDER BY id")
                                ).scalars().all()
        assert back == [inputs.canonical(i) for i in ins]


@pytest.mark.parametrize("copy_min", [1, 10_000])
def test_copy_and_insert_paths_agree(pg_url, copy_min):
    """PostgreSQL: COPY (copy_min 1: every table through it) and multi-row INSERT give the
    same answers, the same rows and the same idempotence."""
    ins = _inputs(80)
    with Store.open(pg_url) as st:
        st.copy_min = copy_min
        st.create_campaign("c", "v5.16")
        batch = dict(corpus=[{"input": i, "coverage": [f"p:{k}", ["x", k]]}
                             for k, i in enumerate(ins)],
                     crashes=[_crash(i, steps=10 + k) for k, i in enumerate(ins)],
                     stats=[{"worker": f"w{k}", "t": 5.0, "executions": k,
                             "extra": {"k": k}} for k in range(70)])
        first = st.write_batch("c", **batch)
        again = st.write_batch("c", **batch)
        counts = st.counts()
        entries = list(st.iter_corpus("c"))
        bug = st.list_bugs(campaign="c")[0]
    assert first["corpus"]["added"] == 80 and first["stats"] == 70
    assert first["crashes"]["added"] == 80 and first["crashes"]["not_kept"] == 0
    assert again["corpus"]["added"] == 0 and again["crashes"]["added"] == 0
    assert again["stats"] == 0
    assert counts["corpus_entries"] == 80 and counts["crashes"] == 80
    assert counts["stats"] == 70 and counts["scenarios"] == 3
    by_hash = {e["hash"]: e["coverage"] for e in entries}
    assert by_hash[inputs.content_hash(ins[1])] == ["p:1", ["x", 1]]
    assert bug.count == 80 and bug.reproducer_steps == 10


def test_copy_path_rolls_back_whole(pg_url):
    """A COPY batch that fails leaves nothing, and the next one works (the temporary
    table is per transaction)."""
    ins = _inputs(70)
    with Store.open(pg_url) as st:
        st.copy_min = 1
        st.create_campaign("c", "v5.16")
        with pytest.raises(Exception):
            st.write_batch("c", corpus=[{"input": i} for i in ins],
                           crashes=[{**_crash(ins[0]), "kind": ""}])
        assert st.counts()["corpus_entries"] == 0
        assert st.write_batch("c", corpus=[{"input": i} for i in ins])["corpus"]["added"] == 70
