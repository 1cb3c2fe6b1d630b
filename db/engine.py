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

Before SQLite touches a file, ``check_sqlite_file`` refuses what would fail half-way or
leave debris: a missing file where the command must not create one, a 0-byte file where a
database is needed, a read-only file or directory for a command that writes (SQLite would
create ``-wal``/``-shm`` files and then fail on the first write).

Reading commands use ``readonly_engine``: it never writes and never migrates, and it opens
an archived database in a read-only directory (see ``sqlite_readonly_engine``).
"""
from __future__ import annotations

import os
from urllib.parse import quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

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


def where(url: str) -> str:
    """How to name a database to its user: a SQLite file by its path, else the URL
    without its password."""
    try:
        u = make_url(url)
    except ArgumentError:
        return "<bad url>"
    if u.get_backend_name() == "sqlite" and u.database:
        return u.database
    return redact(url)


def check_sqlite_file(path: str, *, write: bool, create: bool) -> None:
    """Refuse, before SQLite opens anything, a file this command cannot use (one line)."""
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(path):
        if not create:
            raise StoreError(f"no database at {path} (give --db or set MIGFUZZ_DB; this "
                             f"command never creates one)")
        if not os.path.isdir(d):
            raise StoreError(f"database directory {d} does not exist")
        if not os.access(d, os.W_OK | os.X_OK):
            raise StoreError(f"cannot create database {path}: its directory {d} is not "
                             f"writable")
        return
    if os.path.isdir(path):
        raise StoreError(f"{path} is a directory, not a database file")
    if not os.access(path, os.R_OK):
        raise StoreError(f"cannot read database {path}: permission denied")
    if os.path.getsize(path) == 0 and not create:
        raise StoreError(f"{path} is empty (0 bytes): not a migfuzz database")
    if write:
        if not os.access(path, os.W_OK):
            raise StoreError(f"database {path} is read-only and this command writes to it "
                             f"(reading commands such as 'migfuzz bugs' can use it)")
        side = [path + "-wal", path + "-shm"]
        if not os.access(d, os.W_OK | os.X_OK) and not all(
                os.path.exists(f) and os.access(f, os.W_OK) for f in side):
            raise StoreError(f"database {path} is in a read-only directory ({d}) and this "
                             f"command writes to it (SQLite creates "
                             f"{os.path.basename(path)}-wal beside it); reading commands "
                             f"such as 'migfuzz bugs' can use it")


def make_engine(url: str | None = None, *, create: bool = True) -> Engine:
    """The read-write engine; ``create=False``: a missing SQLite file is an error."""
    u, backend = parse_url(url, "cannot be shared")
    if backend == "sqlite":
        check_sqlite_file(u.database, write=True, create=create)
        engine = create_engine(u, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _sqlite_events(engine)
        return engine
    return create_engine(u, pool_pre_ping=True)


def readonly_engine(url: str | None = None) -> Engine:
    """An engine that cannot write (for reading commands and the dashboard); a missing
    or empty SQLite file is an error. PostgreSQL: every session and transaction read-only."""
    u, backend = parse_url(url, "has nothing to read")
    if backend == "sqlite":
        return sqlite_readonly_engine(u.database)
    engine = create_engine(u, pool_pre_ping=True,
                           connect_args={"options": "-c default_transaction_read_only=on"})
    _pg_read_only(engine)
    return engine


def sqlite_readonly_engine(path: str) -> Engine:
    """Read a SQLite file without writing it, wherever it is.

    - File and directory writable: an ordinary connection with ``PRAGMA query_only``.
      (A ``mode=ro`` connection to a WAL database creates ``-wal``/``-shm`` files it then
      cannot remove; an ordinary one removes them at its last close, as a writer does.)
    - Otherwise, with a ``-wal`` file beside it (a writer is running, or left one):
      ``mode=ro``, which reads the log through ``-shm`` and sees every commit.
    - Otherwise (an archived file, or one in a read-only directory): ``mode=ro&immutable=1``.
      SQLite then takes no locks and creates no files: nothing can be writing it (a writer
      would need a ``-wal`` file, and in a read-only directory could not create one).
    """
    check_sqlite_file(path, write=False, create=False)
    full = os.path.abspath(path)
    d = os.path.dirname(full)
    wal, shm = full + "-wal", full + "-shm"
    if os.access(full, os.W_OK) and os.access(d, os.W_OK | os.X_OK):
        uri = f"file:{quote(full)}"
    elif os.path.exists(wal):
        if not os.path.exists(shm) and not os.access(d, os.W_OK | os.X_OK):
            raise StoreError(f"cannot read database {path}: it has a write-ahead log "
                             f"({os.path.basename(wal)}) but no "
                             f"{os.path.basename(shm)}, and its directory is read-only; "
                             f"copy the files to a writable directory")
        uri = f"file:{quote(full)}?mode=ro"
    else:
        uri = f"file:{quote(full)}?mode=ro&immutable=1"

    def connect():
        import sqlite3
        c = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                            check_same_thread=False)
        c.isolation_level = None          # transactions are begun explicitly (deferred)
        c.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        c.execute("PRAGMA query_only=ON")
        return c

    engine = create_engine("sqlite://", creator=connect)

    @event.listens_for(engine, "begin")
    def _begin(conn):                 # one consistent snapshot per read transaction
        conn.exec_driver_sql("BEGIN")
    try:
        check_intact(engine, f"sqlite:///{path}")
    except StoreError:
        engine.dispose()
        raise
    except DBAPIError as e:
        engine.dispose()
        raise StoreError(error_message(f"sqlite:///{path}", e, opening=True)) from None
    return engine


def check_intact(engine: Engine, url: str) -> None:
    """SQLite: ``PRAGMA quick_check`` (about 0.2 s for 300 MB), so that a damaged file is
    refused by every command when it opens the store, not only by those whose queries
    touch the damaged pages (the others would read garbage or fail half-way)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        rows = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check").all()]
    if rows != ["ok"]:
        first = str(rows[0] if rows else "no answer").replace("\n", " ")[:200]
        raise StoreError(f"database {where(url)} is damaged (PRAGMA quick_check: {first}); "
                         f"restore it from a copy or use another --db")


def _pg_read_only(engine: Engine) -> None:
    """Every transaction read-only, whatever the pool did to the connection before.

    The session default alone is not enough: after a transaction with the
    ``postgresql_readonly`` option (the Store's reader), SQLAlchemy resets psycopg's
    ``read_only`` attribute, and psycopg then begins with an explicit READ WRITE."""
    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, _record, _proxy):
        dbapi_conn.read_only = True

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")


DAMAGED = ("file is not a database", "database disk image is malformed",
           "malformed database schema", "database corruption")


def error_message(url: str, exc: BaseException, *, opening: bool = False) -> str:
    """One line for a database error, naming the database."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    msg = lines[0] if lines else type(orig).__name__
    w = where(url)
    low = msg.lower()
    if any(m in low for m in DAMAGED):
        return (f"database {w} is damaged ({msg}); restore it from a copy or use another "
                f"--db")
    if "readonly database" in low or "read-only" in low:
        return f"database {w} is read-only ({msg}); this command writes to it"
    return f"{'cannot open ' if opening else ''}database {w}: {msg}"


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
