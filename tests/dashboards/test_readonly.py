"""The dashboard never writes: every page is visited and the database is byte-for-byte and
row-for-row what it was before the dashboard opened it; its engine refuses writes.
(This module runs after the browser tests, which used the same server.)"""
from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from conftest import db_fingerprint
from migfuzz.db.errors import StoreError


def test_every_page_then_database_unchanged(server):
    base = server["base"]
    paths = ["/", "/bugs", "/bugs?sort=count&order=asc", "/corpus", "/metrics", "/healthz",
             "/corpus?campaign=smoke-v5.15"]
    paths += [f"/campaigns/{n}" for n in ("smoke-v5.16", "smoke-v5.15")]
    for sig in server["bugs"]:
        paths += [f"/bugs/{quote(sig, safe='')}",
                  f"/bugs/{quote(sig, safe='')}/reproducer.json"]
    for p in paths:
        assert httpx.get(base + p, timeout=30).status_code == 200, p
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert httpx.request(method, base + "/bugs", timeout=10).status_code == 405
    assert db_fingerprint(server["path"]) == server["before"]


def test_engine_refuses_writes(server):
    store = server["app"].state.store
    with pytest.raises(OperationalError, match="readonly|read-only|query_only"):
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE bugs SET notes = 'written'")
    with pytest.raises((OperationalError, StoreError)):       # the store may name it
        store.update_bug(server["bugs"][0], notes="written by the dashboard")
    assert db_fingerprint(server["path"]) == server["before"]
