"""Opening the database: engine, SQLite pragmas, migrations on open, sessions, the leader lock.

SQLite is a real database here: WAL, ``synchronous=FULL`` (a ``sent`` that rolls back after a
crash is a duplicate message), a busy timeout and foreign keys, on every connection. Write
sessions on SQLite start with ``BEGIN IMMEDIATE`` so that a transaction that reads and then
writes takes the write lock up front instead of failing half-way with "database is locked".
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=5000", "foreign_keys=ON")
_BEGIN_OPTION = "wecom_sqlite_begin"
_MIGRATION_LOCK = "wecom-reminder:migrations"
# The newest migration. A database already there is opened without loading Alembic (it costs
# ~15 MB of resident memory for the life of the process); a test checks this against Alembic.
HEAD_REVISION = "0003_attempts"


class Store:
    """An open database. ``session()`` commits on success and rolls back on error."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name
        # Same pool, but transactions on SQLite begin IMMEDIATE (see the module docstring).
        self._writer = engine.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A unit of work. ``readonly=True`` reads a snapshot without taking SQLite's write lock."""
        bind = self.engine if readonly else self._writer
        with Session(bind, expire_on_commit=False) as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            if readonly:
                session.rollback()
            else:
                session.commit()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def normalize_url(url: str) -> URL:
    """``postgresql://`` (and ``postgres://``) mean psycopg 3; anything else passes through."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
    return make_url(url)


def open_store(url: str) -> Store:
    """Open (and migrate to the newest schema) the database at ``url``."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed)
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
        event.listen(engine, "connect", _configure_postgresql)
    store = Store(engine)
    try:
        if current_revision(store) != HEAD_REVISION:
            upgrade(store)
    except BaseException:
        store.close()
        raise
    return store


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        path = Path(url.database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        create_private(path)
    engine = create_engine(url)
    event.listen(engine, "connect", _configure_sqlite)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def create_private(path: Path) -> None:
    """Create ``path`` readable by this user only (mode 0600) unless it exists: it holds the ledger,
    names and replies. SQLite gives its -wal and -shm files the same mode as the database file."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 module so that _begin_sqlite decides its kind.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _configure_postgresql(dbapi_connection: Any, _record: Any) -> None:
    # psycopg prepares statements it sees often; a generic plan made while a table was small
    # (a seq scan for "key IN (...)") would be kept as the table grows to 50,000 rows.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.commit()


def _begin_sqlite(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))


def current_revision(store: Store) -> str | None:
    """The schema revision recorded in the database, or None for an empty database."""
    with store.engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic config for the migrations shipped in the package (no alembic.ini needed)."""
    from alembic.config import Config
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(store: Store, revision: str = "head") -> None:
    """Run the migrations in one transaction; concurrent openers wait for each other."""
    from alembic import command
    with store._writer.begin() as connection:
        if store.dialect == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(lock_key(_MIGRATION_LOCK))))
        command.upgrade(alembic_config(connection), revision)


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL advisory locks."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def try_leader_lock(store: Store, name: str) -> Iterator[bool]:
    """Yield whether this holder is the only one for ``name`` for the duration of the block.

    PostgreSQL: a session advisory lock on a dedicated connection, released on exit (or when the
    process dies and the connection closes). SQLite: an flock on a file beside the database (the
    service and a `send` are two processes on one file), released the same ways; an in-memory
    database has one holder by nature.
    """
    if store.dialect != "postgresql":
        with _file_lock(store, name) as held:
            yield held
        return
    key = lock_key(name)
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        leader = bool(connection.execute(select(func.pg_try_advisory_lock(key))).scalar_one())
        try:
            yield leader
        finally:
            if leader:
                _release(connection, key)


@contextmanager
def _file_lock(store: Store, name: str) -> Iterator[bool]:
    database = store.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield True
        return
    path = Path(f"{database}.{re.sub(r'[^A-Za-z0-9_-]', '_', name)}.lock")
    path.touch()
    with path.open("r+b") as handle:  # closing it releases the lock, on Linux and on Windows
        yield _try_lock(handle)


def _try_lock(handle: Any) -> bool:
    """An exclusive, non-blocking lock on the open file (flock on Linux, msvcrt on Windows)."""
    try:
        if os.name == "nt":
            import msvcrt
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _release(connection: Connection, key: int) -> None:
    try:
        connection.execute(select(func.pg_advisory_unlock(key)))
    except Exception:
        # A connection that may still hold the lock must never go back to the pool.
        log.warning("未能释放咨询锁 %s，丢弃该数据库连接", key)
        connection.invalidate()
