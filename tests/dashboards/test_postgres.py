"""The dashboard on PostgreSQL (the cluster backend): every page renders, and no write
gets through, even after the Store's read-only transactions have used (and reset) the
pooled connections.

The server comes from ``MIGFUZZ_TEST_PG_URL`` (``.ci/run`` starts one; under CI a missing
URL fails); elsewhere a throwaway cluster is started on a Unix socket under /tmp."""
from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

import pgserver
from conftest import serve
from filldb import run_campaign

PORT = 55434


@pytest.fixture(scope="module")
def pg_server():
    yield from pgserver.pg_server(PORT, "the dashboard's PostgreSQL tests")


@pytest.fixture(scope="module")
def pg_url(pg_server):
    with pgserver.fresh_database(pg_server, "dash_") as url:
        yield url


def dump(url: str) -> dict:
    from sqlalchemy import create_engine, text
    e = create_engine(url)
    try:
        with e.connect() as c:
            return {t: [tuple(r) for r in c.execute(text(f"SELECT * FROM {t} ORDER BY id"))]
                    for t in ("campaigns", "corpus_entries", "crashes", "bugs", "bug_titles",
                              "bug_variants", "stats")}
    finally:
        e.dispose()


def test_dashboard_on_postgres_reads_and_never_writes(pg_url):
    from sqlalchemy.exc import DBAPIError

    from migfuzz.dashboards import create_app
    from migfuzz.db.errors import StoreError
    from migfuzz.db.store import Store
    run_campaign(pg_url, "pg-smoke", workers=2, execs=150)
    with Store.open(pg_url) as s:
        sigs = [b.signature for b in s.list_bugs()]
        s.update_bug(sigs[0], notes="<script>x</script>", labels=["<b>l</b>"])
    before = dump(pg_url)
    app = create_app(pg_url)
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=30) as c:
            paths = ["/", "/campaigns/pg-smoke", "/bugs", "/bugs?variant=v5.16&sort=count",
                     "/corpus", "/metrics", "/healthz"]
            paths += [f"/bugs/{quote(s, safe='')}" for s in sigs]
            paths += [f"/bugs/{quote(s, safe='')}/reproducer.json" for s in sigs]
            for p in paths:
                r = c.get(p)
                assert r.status_code == 200, (p, r.text[:300])
            assert "&lt;script&gt;x&lt;/script&gt;" in \
                c.get(f"/bugs/{quote(sigs[0], safe='')}").text
            assert 'migfuzz_executions_total{campaign="pg-smoke",worker="w0"} 150' in \
                c.get("/metrics").text
            store = app.state.store
            for _ in range(3):             # after reader transactions have used the pool
                with pytest.raises(DBAPIError, match="read-only transaction"):
                    with store.engine.begin() as conn:
                        conn.exec_driver_sql("UPDATE bugs SET notes = 'written'")
                with pytest.raises((DBAPIError, StoreError), match="read-only"):
                    store.update_bug(sigs[0], notes="written by the dashboard")
                c.get("/bugs")
    finally:
        app.state.store.close()
    assert dump(pg_url) == before
