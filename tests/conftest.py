"""Shared fixtures: a copy of the project's shipped files, a fake clock, a fresh PostgreSQL schema.

PostgreSQL tests each get a fresh schema (dropped afterwards), so they are isolated from each
other and from anyone else using the same database. If PostgreSQL cannot be reached they skip,
unless CI=true, where they fail: CI must run them all.
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from bot.clock import BEIJING, FakeClock

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def copy_project(dest: Path) -> Path:
    """config.example.yaml + schedules/ + messages/ in `dest`; returns the config path."""
    shutil.copytree(ROOT / "schedules", dest / "schedules")
    shutil.copytree(ROOT / "messages", dest / "messages")
    config = dest / "config.yaml"
    shutil.copy(ROOT / "config.example.yaml", config)
    return config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 5, 11, 8, 0, tzinfo=BEIJING))


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
    """A database URL whose search_path is a schema of its own, dropped after the test."""
    require_postgres()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
