"""The dashboard on PostgreSQL (the cluster backend): every page renders, and no write
gets through, even after the Store's read-only transactions have used (and reset) the
pooled connections.

The server comes from ``MIGFUZZ_TEST_PG_URL`` (``.ci/run`` starts one; under CI a missing
URL fails); elsewhere a throwaway cluster is started on a Unix socket under /tmp."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from urllib.parse import quote

import httpx
import pytest

from conftest import serve
from filldb import run_campaign

PORT = 55434


def _as_postgres(cmd):
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def pg_server():
    url = os.environ.get("MIGFUZZ_TEST_PG_URL")
    if url:
        yield url
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("MIGFUZZ_TEST_PG_URL is not set under CI", pytrace=False)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("no PostgreSQL here: apt-get install -y postgresql", pytrace=False)
    pgbin = os.path.dirname(found[-1])
    root = tempfile.mkdtemp(prefix="pgdash.", dir="/tmp")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")

    def run(cmd):
        subprocess.run(_as_postgres(cmd), check=True, capture_output=True, timeout=120)
    data = f"{root}/data"
    try:
        run([f"{pgbin}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync"])
        run([f"{pgbin}/pg_ctl", "-D", data, "-l", f"{root}/pg.log", "-w", "-o",
             f"-p {PORT} -k {root} -c listen_addresses='' -c fsync=off", "start"])
        yield f"postgresql+psycopg://postgres@/postgres?host={root}&port={PORT}"
    finally:
        subprocess.run(_as_postgres([f"{pgbin}/pg_ctl", "-D", data, "-m", "fast", "-w",
                                     "stop"]), capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_url(pg_server):
    import psycopg
    from sqlalchemy.engine import make_url
    u = make_url(pg_server)
    q = dict(u.query)

    def admin():
        return psycopg.connect(dbname="postgres", user=u.username or "postgres",
                               password=u.password, host=q.get("host", u.host),
                               port=q.get("port", u.port), autocommit=True)
    name = "dash_" + uuid.uuid4().hex[:12]
    with admin() as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield u.set(database=name).render_as_string(hide_password=False)
    with admin() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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

    from dashboards import create_app
    from db.store import Store
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
                with pytest.raises(DBAPIError, match="read-only transaction"):
                    store.update_bug(sigs[0], notes="written by the dashboard")
                c.get("/bugs")
    finally:
        app.state.store.close()
    assert dump(pg_url) == before
