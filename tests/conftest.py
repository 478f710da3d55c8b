"""Shared fixtures: a copy of the project's shipped files in a temporary folder, and a fake clock."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from bot.clock import BEIJING, FakeClock

ROOT = Path(__file__).resolve().parent.parent


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
