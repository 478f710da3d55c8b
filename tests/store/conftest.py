"""The ``store`` fixture: every store test runs on a SQLite file and on PostgreSQL (``pg_schema_url``,
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from bot.occurrence import PlannedMessage
from bot.store.db import Store, open_store


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


def new_delivery(name: str, due_at: datetime, **changes: Any) -> PlannedMessage:
    """A planned holiday notice to one group; ``changes`` override any field."""
    target = changes.pop("target", "group-a")
    fields: dict[str, Any] = {
        "key": f"holiday|{name}|{target}", "rule": "holiday", "kind": "holiday_notice",
        "occurrence": name, "item": None, "target": target,
        "msgtype": "markdown",
        "title": "节前廉洁提醒", "text": f"**{name}** 廉洁过节", "card": None, "due_at": due_at,
        "reason": "春节前一个工作日", "provisional": False, "meta": {"holiday": "春节"},
    }
    return PlannedMessage(**{**fields, **changes})


@pytest.fixture
def make() -> Callable[..., PlannedMessage]:
    return new_delivery
