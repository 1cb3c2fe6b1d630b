"""Migrations agree with the models; engines are configured as infra.md says."""
from __future__ import annotations

import sqlite3

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from migfuzz.db import migrate
from migfuzz.db.engine import DEFAULT_URL, make_engine, resolve_url
from migfuzz.db.errors import StoreError
from migfuzz.db.models import Base
from migfuzz.db.store import Store


def test_migrations_match_models(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    assert diff == []


def test_downgrade_and_upgrade_again(store):
    store.create_campaign("c", "v5.16")
    with store.engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "base")
    with store.engine.connect() as conn:
        assert migrate.current(conn) is None
    store.close()
    with Store.open(store.url) as st:
        assert st.revision() == (migrate.head(), migrate.head())
        assert st.counts()["campaigns"] == 0


def test_url_resolution(monkeypatch):
    monkeypatch.delenv("MIGFUZZ_DB", raising=False)
    assert resolve_url(None) == DEFAULT_URL == "sqlite:///migfuzz.db"
    monkeypatch.setenv("MIGFUZZ_DB", "runs/x.db")
    assert resolve_url(None) == "sqlite:///runs/x.db"
    assert resolve_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert resolve_url("postgresql://u@/db?host=/tmp") == "postgresql+psycopg://u@/db?host=/tmp"
    for bad, msg in [("mysql://x/y", "unsupported database"),
                     ("sqlite://", "in-memory"),
                     ("sqlite:////no/such/dir/x.db", "does not exist")]:
        with pytest.raises(StoreError, match=msg):
            make_engine(bad)


def test_sqlite_settings(tmp_path):
    path = tmp_path / "s.db"
    st = Store.open(f"sqlite:///{path}")
    with st.engine.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        # a write transaction holds the write lock from BEGIN on (BEGIN IMMEDIATE) ...
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        # ... while readers still read (WAL)
        assert other.execute("SELECT count(*) FROM campaigns").fetchone() == (0,)
    with st._reader.begin() as conn:             # a read transaction does not take it
        conn.execute(text("SELECT 1"))
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    other.close()
    st.close()


def test_unreachable_postgres_is_one_line(tmp_path):
    with pytest.raises(StoreError, match="cannot open database") as e:
        Store.open(f"postgresql://nobody@/x?host={tmp_path}&port=1")
    assert "\n" not in str(e.value)
