"""Backends for the store tests: every test that takes ``db_url`` (or ``store``) runs on
SQLite and on a real PostgreSQL.

PostgreSQL comes from ``MIGFUZZ_TEST_PG_URL`` (``.ci/run`` starts a throwaway cluster and
sets it). Under CI (``CI=true``) a missing URL fails the tests. Elsewhere the fixture starts
its own throwaway cluster (initdb under /tmp, Unix socket only, fsync off; see
../shared/docs/infra.md) and removes it at the end, so the PostgreSQL half never skips.
Each test gets a fresh database (CREATE DATABASE ... / DROP DATABASE ... WITH (FORCE)).
"""
from __future__ import annotations

import pytest

import pgserver

BACKENDS = ["sqlite", "postgresql"]
PG_PORT = 55433


@pytest.fixture(scope="session")
def pg_server():
    """A SQLAlchemy URL of a PostgreSQL server we may create databases on."""
    yield from pgserver.pg_server(PG_PORT, "the PostgreSQL half of the store tests")


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty PostgreSQL database for one test."""
    with pgserver.fresh_database(pg_server, "mf_") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """A fresh empty database URL, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url):
    from migfuzz.db.store import Store
    st = Store.open(db_url)
    yield st
    st.close()
