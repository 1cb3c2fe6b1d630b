"""Alembic environment: migfuzz passes an open connection (inside its own transaction)
through ``config.attributes``; with only a URL (autogenerate during development) it
connects itself."""
from alembic import context
from sqlalchemy import create_engine

from migfuzz.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


conn = config.attributes.get("connection")
if conn is not None:
    _run(conn)
else:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    with create_engine(url).begin() as c:
        _run(c)
