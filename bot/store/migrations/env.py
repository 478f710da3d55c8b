"""Alembic environment. ``bot.store.db.upgrade`` passes the connection in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from bot.store.models import Base


def run_on(connection) -> None:  # noqa: ANN001 - an SQLAlchemy Connection
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    # For developers generating a revision: set "sqlalchemy.url" on the Config.
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as own:
        run_on(own)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; open the store instead")
run_online()
