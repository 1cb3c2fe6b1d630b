"""Open the store for reading only.

``Store.open`` migrates the schema (a write), so the dashboard builds its own engine and
hands it to ``Store``: SQLite through ``db.engine.sqlite_readonly_engine`` (``PRAGMA
query_only``; ``mode=ro`` or ``immutable`` where the file or its directory is read-only,
so an archived database opens too), PostgreSQL with every session and every
transaction read-only.
A database whose schema is not at this migfuzz's head is refused with a hint, not upgraded.
"""
from __future__ import annotations

import os

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from migfuzz.db import migrate
from migfuzz.db.engine import (_pg_read_only, parse_url, redact, resolve_url,
                               sqlite_readonly_engine)
from migfuzz.db.errors import StoreError
from migfuzz.db.store import Store


def _sqlite_ro_engine(path: str) -> Engine:
    # the reading commands' engine: query_only, and mode=ro / immutable where the file or
    # its directory is not writable (an archived database opens where it lies)
    if not os.path.isfile(path):
        raise StoreError(f"no database at {os.path.abspath(path)} (the dashboard never "
                         f"creates one)")
    return sqlite_readonly_engine(path)


def readonly_engine(url: str | None) -> Engine:
    u, backend = parse_url(url, "has nothing to show")
    if backend == "sqlite":
        return _sqlite_ro_engine(u.database)
    engine = create_engine(u, pool_pre_ping=True,
                           connect_args={"options": "-c default_transaction_read_only=on"})
    _pg_read_only(engine)
    return engine


def open_readonly(url: str | None = None) -> Store:
    """A Store whose engine cannot write; StoreError if the schema is not current."""
    url = resolve_url(url)
    engine = readonly_engine(url)
    try:
        with engine.connect() as conn:
            rev, head = migrate.check(conn)
    except StoreError:
        engine.dispose()
        raise
    except DBAPIError as e:
        engine.dispose()
        msg = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        raise StoreError(f"cannot open database {redact(url)}: {msg}") from None
    if rev != head:
        engine.dispose()
        raise StoreError(f"the database schema (revision {rev or 'none'}) is not this "
                         f"migfuzz's ({head}); run 'migfuzz db upgrade --db ...' first "
                         f"(the dashboard never migrates)")
    return Store(engine, url)
