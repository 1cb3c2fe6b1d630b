"""Database URLs and engines.

``--db URL`` or ``MIGFUZZ_DB``; default ``sqlite:///migfuzz.db`` in the working directory.
A bare path (``runs/a.db``) means a SQLite file; ``postgres://`` and ``postgresql://`` mean
PostgreSQL through psycopg 3.

SQLite: WAL (readers never block the writer), ``busy_timeout`` (a second writer waits
instead of failing with "database is locked"), ``synchronous=NORMAL`` (a committed
transaction survives a killed process; only a power loss can drop the last few), foreign
keys on, and ``BEGIN IMMEDIATE`` for write transactions so a transaction that reads then
writes cannot fail half-way on lock upgrade (see ../shared/docs/infra.md). Read-only work
uses ``Store``'s reader engine, which begins DEFERRED and so does not hold the write lock.
"""
from __future__ import annotations

import os

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from .errors import StoreError

DEFAULT_URL = "sqlite:///migfuzz.db"
BUSY_TIMEOUT_MS = 30_000
READ_OPTION = "migfuzz_read"


def resolve_url(url: str | None = None) -> str:
    """The URL to use: the argument, else $MIGFUZZ_DB, else the default; normalized."""
    url = url or os.environ.get("MIGFUZZ_DB") or DEFAULT_URL
    if "://" not in url and not url.startswith("sqlite:"):
        url = "sqlite:///" + url                     # a bare path is a SQLite file
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
    return url


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<bad url>"


def parse_url(url: str | None, in_memory_why: str) -> tuple[URL, str]:
    """(URL with the psycopg driver for PostgreSQL, backend); StoreError for a bad URL,
    an in-memory SQLite database (``in_memory_why`` says why not) or another backend."""
    url = resolve_url(url)
    try:
        u = make_url(url)
    except ArgumentError:
        raise StoreError(f"bad database URL {url!r}") from None
    backend = u.get_backend_name()
    if backend == "sqlite":
        if u.database in (None, "", ":memory:"):
            raise StoreError(f"an in-memory SQLite database {in_memory_why}; give a file")
    elif backend == "postgresql":
        if u.get_driver_name() != "psycopg":
            u = u.set(drivername="postgresql+psycopg")
    else:
        raise StoreError(f"unsupported database {backend!r}: use sqlite:///FILE or "
                         f"postgresql://...")
    return u, backend


def make_engine(url: str | None = None) -> Engine:
    u, backend = parse_url(url, "cannot be shared")
    if backend == "sqlite":
        d = os.path.dirname(os.path.abspath(u.database))
        if not os.path.isdir(d):
            raise StoreError(f"database directory {d} does not exist")
        engine = create_engine(u, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _sqlite_events(engine)
        return engine
    return create_engine(u, pool_pre_ping=True)


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None        # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        if conn.get_execution_options().get(READ_OPTION):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
