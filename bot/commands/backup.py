"""`wecom-reminder backup FILE`: a consistent copy of the SQLite database, even while `run` writes.

The database holds what cannot be re-created from the files: the delivery log, the study ledger,
the templates edited in the console, the audit log and the console's accounts. sqlite3's online
backup copies it page by page under a read transaction, so the copy is one moment's state; the
copy is checked (integrity_check) and only then put in place. PostgreSQL has pg_dump for this.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bot.errors import BotError, PlacedError
from bot.store.db import create_private

COUNTED = (("deliveries", "条发送记录"), ("confirmations", "条学习确认"), ("template_versions", "个模板版本"),
           ("audit_log", "条操作日志"))


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    counts: tuple[tuple[str, int], ...]  # (Chinese label, rows)

    def text(self) -> str:
        counted = "、".join(f"{rows} {label}" for label, rows in self.counts)
        return f"已备份到 {self.path}（{self.size / 1024:.0f} KB）：{counted}。"


def backup(database_url: str, target: Path, overwrite: bool = False) -> BackupResult:
    """Copy the database at ``database_url`` (as the config gives it) to ``target``."""
    if not database_url.startswith("sqlite:///"):
        raise BotError("本命令只备份 SQLite 数据库；PostgreSQL 请用 pg_dump，例如 pg_dump -Fc 库名 > 备份文件")
    source = Path(database_url[len("sqlite:///"):])
    if not source.is_file():
        raise PlacedError("数据库文件不存在（服务还没有运行过？），无需备份", file=source,
                          fix="确认 database.url 指向正在使用的数据库")
    if target.exists() and not overwrite:
        raise PlacedError("备份文件已存在，未覆盖", file=target, fix="换一个文件名，或加 --force 覆盖")
    if not target.parent.is_dir():
        raise PlacedError("备份文件所在的目录不存在", file=target, fix="先创建该目录，或换一个位置")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        create_private(partial)  # a backup is the whole database: readable by this user only
        _copy(source, partial)
        counts = _check(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, target.stat().st_size, counts)


def _copy(source: Path, destination: Path) -> None:
    # Read-only and without SQLAlchemy: a backup neither migrates nor changes the database.
    original = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    copy = sqlite3.connect(destination)
    try:
        original.backup(copy)
    finally:
        copy.close()
        original.close()


def _check(path: Path) -> tuple[tuple[str, int], ...]:
    with sqlite3.connect(path) as copy:
        verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            raise BotError(f"备份副本校验未通过（{verdict}），未保存；请检查磁盘后重试")
        counts = tuple((label, copy.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
                       for table, label in COUNTED)
    copy.close()
    return counts
