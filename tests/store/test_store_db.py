"""Opening a store: migrations, SQLite settings, UTC instants, the leader lock."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import StatementError

from bot.clock import BEIJING
from bot.store.claims import claim_due
from bot.store.db import Store, alembic_config, normalize_url, open_store, try_leader_lock
from bot.store.models import Base, Delivery, KeyValue
from bot.store.outbox import ROW_FIELDS, sync_plan
from bot.store.queries import list_deliveries

T0 = datetime(2025, 1, 27, 9, 30, tzinfo=BEIJING)
TABLES = {"deliveries", "inbox", "confirmations", "template_versions", "audit_log", "admin_users", "kv"}


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(any_store: Store) -> str | None:
    with any_store.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_migrations_create_the_schema_from_empty(any_store: Store) -> None:
    assert TABLES <= set(inspect(any_store.engine).get_table_names())
    assert current_revision(any_store) == head_revision()


def test_reopening_is_idempotent_and_keeps_data(store_url: str, make) -> None:
    with open_store(store_url) as first:
        sync_plan(first, [make("2025", T0)], T0, T0, T0)
    with open_store(store_url) as second:
        assert current_revision(second) == head_revision()
        assert [row.key for row in list_deliveries(second)] == ["holiday|2025|group-a"]


def test_models_match_the_migrations(any_store: Store) -> None:
    with any_store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_sqlite_settings_on_every_connection(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "bot.sqlite3"
    with open_store(f"sqlite:///{path}") as any_store, any_store.engine.connect() as connection:
        pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert path.exists()
        assert any_store.dialect == "sqlite"
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 2  # FULL
        assert pragma("busy_timeout") == 5000
        assert pragma("foreign_keys") == 1


@pytest.mark.parametrize(("given", "driver"), [
    ("postgresql://u@h:5432/db", "postgresql+psycopg"),
    ("postgres://u@h/db", "postgresql+psycopg"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
    ("sqlite:///data/bot.sqlite3", "sqlite"),
], ids=["postgresql", "postgres", "explicit-driver", "sqlite"])
def test_postgresql_urls_use_psycopg(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


def test_instants_come_back_aware_in_utc(any_store: Store, make) -> None:
    sync_plan(any_store, [make("2025", T0)], T0, T0, T0)
    [row] = list_deliveries(any_store)
    assert row.due_at == T0
    assert row.due_at.tzinfo == timezone.utc
    assert row.created_at.tzinfo == timezone.utc


def test_naive_datetimes_are_refused(any_store: Store, make) -> None:
    naive = datetime(2025, 1, 27, 9, 30)
    with pytest.raises(ValueError, match="aware"):
        make("2025", naive)
    with pytest.raises(ValueError, match="aware"):
        claim_due(any_store, naive, "w1")
    with pytest.raises(StatementError, match="aware"), any_store.session() as session:
        session.add(KeyValue(key="ics-etag", value="x", updated_at=naive))
    with any_store.session(readonly=True) as session:
        assert session.scalars(select(KeyValue)).all() == []


def test_session_rolls_back_on_error(any_store: Store) -> None:
    with pytest.raises(RuntimeError), any_store.session() as session:
        session.add(KeyValue(key="k", value={"a": 1}, updated_at=T0))
        session.flush()
        raise RuntimeError("boom")
    with any_store.session() as session:
        assert session.get(KeyValue, "k") is None
        session.add(KeyValue(key="k", value={"a": 1}, updated_at=T0))
    with any_store.session(readonly=True) as session:
        assert session.get(KeyValue, "k").value == {"a": 1}


def test_unique_delivery_key_is_enforced(any_store: Store, make) -> None:
    sync_plan(any_store, [make("2025", T0)], T0, T0, T0)
    with pytest.raises(Exception, match="(?i)unique"), any_store.session() as session:
        row = {name: getattr(make("2025", T0), name) for name in ROW_FIELDS}
        session.add(Delivery(**row))


def test_leader_lock_has_one_holder(any_store: Store) -> None:
    name = f"daily-summary-{uuid.uuid4().hex}"
    with try_leader_lock(any_store, name) as first, try_leader_lock(any_store, name) as second:
        assert first is True
        assert second is False  # on SQLite too: `run` and `send` are two processes on one file
    with try_leader_lock(any_store, name) as again:
        assert again is True


def can_write_now(any_store: Store) -> bool:
    other = any_store.engine.raw_connection()
    try:
        other.execute("PRAGMA busy_timeout=0")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except Exception as error:  # sqlite3.OperationalError: database is locked
        assert "locked" in str(error)
        return False
    finally:
        other.close()


def test_sqlite_write_sessions_take_the_lock_up_front(tmp_path: Path) -> None:
    any_store = open_store(f"sqlite:///{tmp_path}/bot.sqlite3")
    with any_store.session(readonly=True) as session:
        session.execute(text("SELECT 1"))
        assert can_write_now(any_store)
    with any_store.session() as session:
        # A transaction that reads first already holds the write lock, so it cannot fail
        # half-way with "database is locked" when it writes.
        session.execute(text("SELECT 1"))
        assert not can_write_now(any_store)
    any_store.close()


def test_head_revision_constant_matches_the_migrations() -> None:
    """open_store skips loading Alembic when the database is at HEAD_REVISION: it must be the real head."""
    from bot.store.db import HEAD_REVISION
    assert HEAD_REVISION == head_revision()


def test_0002_house_drops_the_addresses_stored_in_rows(store_url: str, make) -> None:
    """Rows written before 0002 carried the robot's key; after it, only the target's name is left."""
    from alembic import command
    with open_store(store_url) as any_store:
        sync_plan(any_store, [make("2025", T0)], T0, T0, T0)
        with any_store._writer.begin() as connection:
            command.downgrade(alembic_config(connection), "0001")
        with any_store.session() as session:
            session.execute(text("UPDATE deliveries SET recipients = :r"), {"r": '{"webhook_key": "secret-key"}'})
    with open_store(store_url) as any_store:
        assert current_revision(any_store) == head_revision()
        assert "recipients" not in {c["name"] for c in inspect(any_store.engine).get_columns("deliveries")}
        assert [row.target for row in list_deliveries(any_store)] == ["group-a"]
