"""The web dashboard over the store: campaigns, bugs (with the interleaving of a reproducer
as a swimlane), the corpus, and a Prometheus ``/metrics`` endpoint.

Read-only by construction: SQLite is opened with ``mode=ro`` (and ``query_only``),
PostgreSQL sessions with ``default_transaction_read_only``; the schema is checked, never
migrated. Everything the pages need (scripts, styles, chart code) is served by the app.
See docs/dashboard.md.
"""
from .app import create_app

__all__ = ["create_app"]
