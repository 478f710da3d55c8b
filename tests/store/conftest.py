"""The ``store`` fixture: every store test runs on a SQLite file and on PostgreSQL.

PostgreSQL tests each get a fresh schema (dropped afterwards), so they are isolated from each
other and from anyone else using the same database. If PostgreSQL cannot be reached they skip,
unless CI=true, where they fail.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from bot.store.db import Store, open_store
from bot.store.outbox import NewDelivery

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@functools.cache
def postgres_problem() -> str | None:
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.Error as error:
        return f"PostgreSQL is unreachable at {PG_URL}: {error}"
    return None


def require_postgres() -> None:
    problem = postgres_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    require_postgres()
    schema = f"test_store_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/data/bot.sqlite3"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def new_delivery(name: str, due_at: datetime, **changes: Any) -> NewDelivery:
    """A planned holiday notice to one group; ``changes`` override any field."""
    target = changes.pop("target", "group-a")
    fields: dict[str, Any] = {
        "key": f"holiday|{name}|{target}", "rule": "holiday", "kind": "holiday_notice",
        "occurrence": name, "item": None, "target": target,
        "recipients": {"mentioned_list": ["@all"]}, "msgtype": "markdown",
        "title": "节前廉洁提醒", "text": f"**{name}** 廉洁过节", "card": None, "due_at": due_at,
        "reason": "春节前一个工作日", "provisional": False, "meta": {"holiday": "春节"},
    }
    return NewDelivery(**{**fields, **changes})


@pytest.fixture
def make() -> Callable[..., NewDelivery]:
    return new_delivery
