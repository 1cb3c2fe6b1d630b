"""The store: campaigns, corpus entries, crashes, bugs and stats in SQL.

SQLite is the embedded default (WAL, busy timeout, BEGIN IMMEDIATE); PostgreSQL through
psycopg 3 serves clusters. The rest of migfuzz uses :class:`Store` only: plain dicts and
dataclasses go in and out, no ORM session leaks. See docs/store.md.

Names are imported lazily so that ``import db`` (the CLI does it for every command) does
not load SQLAlchemy and Alembic until a store is actually used.
"""
from .errors import StoreError

_LAZY = {"Store": "store", "Campaign": "store", "CampaignState": "store", "Bug": "store",
         "BUG_STATUSES": "store", "CAMPAIGN_STATUSES": "store", "crash_records": "store",
         "DEFAULT_URL": "engine", "resolve_url": "engine"}

__all__ = ["StoreError", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'db' has no attribute {name!r}")
