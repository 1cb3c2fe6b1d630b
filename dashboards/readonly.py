"""Open the store for reading only.

``Store.open`` migrates the schema (a write), so the dashboard takes the reading commands'
engine (``db.engine.readonly_engine``) and hands it to ``Store``: SQLite through
``db.engine.sqlite_readonly_engine`` (``PRAGMA
query_only``; ``mode=ro`` or ``immutable`` where the file or its directory is read-only,
so an archived database opens too), PostgreSQL with every session and every
transaction read-only.
A database whose schema is not at this migfuzz's head is refused with a hint, not upgraded.
"""
from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from migfuzz.db import migrate
from migfuzz.db.engine import readonly_engine, redact, resolve_url
from migfuzz.db.errors import StoreError
from migfuzz.db.store import Store


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
