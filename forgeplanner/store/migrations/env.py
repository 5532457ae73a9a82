"""Alembic environment. ForgePlanner runs migrations programmatically (forgeplanner.store.db)
and hands over an open connection in `config.attributes["connection"]`; the URL branch is
there for developers who run `alembic` by hand with `-x url=...`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from forgeplanner.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    engine = create_engine(url)
    with engine.connect() as conn:
        _configure(conn)


if context.is_offline_mode():
    raise RuntimeError("ForgePlanner migrations run online only")
run_migrations_online()
