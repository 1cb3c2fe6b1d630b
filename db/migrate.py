"""Schema migrations with Alembic, run from code (no alembic.ini).

``check_and_upgrade(conn)`` runs inside the caller's write transaction: it reads the
database's revision, refuses one this code does not know (a newer migfuzz wrote it), and
otherwise upgrades to head. Concurrent openers are serialized by the transaction (SQLite:
BEGIN IMMEDIATE; PostgreSQL: an advisory transaction lock), so only the first one migrates.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from .errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
PG_LOCK_KEY = 0x6D6967667A7A      # "migfzz": the advisory lock that serializes migrations


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["url"] = url
    return cfg


def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    return script().get_current_head()


def current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def check(conn: Connection) -> tuple[str | None, str]:
    """(database revision, code head); StoreError if the database is newer than the code."""
    sd = script()
    rev, hd = current(conn), sd.get_current_head()
    if rev is not None:
        try:
            known = sd.get_revision(rev) is not None
        except Exception:                     # alembic raises for unknown ids
            known = False
        if not known:
            raise StoreError(f"the database schema (revision {rev}) is newer than this "
                             f"migfuzz understands (head {hd}); upgrade migfuzz")
    return rev, hd


def check_and_upgrade(conn: Connection, upgrade: bool = True) -> str:
    """Within an open write transaction: refuse newer, upgrade older. Returns the revision."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
    rev, hd = check(conn)
    if rev == hd:
        return rev
    if not upgrade:
        raise StoreError(f"the database schema (revision {rev or 'none'}) is older than "
                         f"this migfuzz (head {hd}); run 'migfuzz db upgrade'")
    command.upgrade(alembic_config(conn), "head")
    return hd
