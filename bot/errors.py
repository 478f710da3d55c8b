"""The errors of wecom-reminder.

Every error a user can see carries a Chinese message built from the ids involved::

    BotError
    ├── ConfigError          config.yaml (or a file it names) is wrong: file, line, key path, fix
    ├── ScheduleError        a file under schedules/ is wrong: file, line, fix
    │   └── MissingHolidayData   no official arrangement for a year that is needed
    ├── TemplateError        a message template does not parse, render or fit WeCom's limits
    ├── UnknownTarget        a rule or a command names a target the config does not have
    └── DeliveryError        a message could not be delivered (the reason in words)

The CLI turns them into a message on stderr and an exit code.
"""

from __future__ import annotations

from pathlib import Path


class BotError(Exception):
    """Base of every error the user may see; ``str()`` is the Chinese message."""


def describe_place(file: str | Path | None, line: int | None = None, key: str | None = None) -> str:
    """Return '文件 F 第 N 行（键 K）' with whatever parts are known."""
    parts = []
    if file is not None:
        parts.append(f"文件 {file}")
    if line is not None:
        parts.append(f"第 {line} 行")
    where = " ".join(parts)
    if key:
        where = f"{where}（{key}）" if where else f"（{key}）"
    return where


class PlacedError(BotError):
    """An error in a file: names the file, the line, the key path and the fix."""

    def __init__(self, problem: str, *, file: str | Path | None = None, line: int | None = None,
                 key: str | None = None, fix: str | None = None) -> None:
        self.problem = problem
        self.file = str(file) if file is not None else None
        self.line = line
        self.key = key
        self.fix = fix
        where = describe_place(file, line, key)
        message = f"{where}：{problem}" if where else problem
        if fix:
            message += f"。处理办法：{fix}"
        super().__init__(message)


class ConfigError(PlacedError):
    """The configuration is wrong."""


class ScheduleError(PlacedError):
    """A schedule file (holidays, meetings, studies, announcements, .ics) is wrong."""


class MissingHolidayData(ScheduleError):
    """The State Council's arrangement for a year is not in schedules/holidays/."""

    def __init__(self, year: int) -> None:
        self.year = year
        super().__init__(
            f"缺少 {year} 年的国务院节假日安排",
            file=f"schedules/holidays/{year}.yaml",
            fix=f"国务院办公厅发布 {year} 年部分节假日安排的通知后，按 README 的说明添加该文件",
        )


class TemplateError(PlacedError):
    """A message template is wrong."""


class UnknownTarget(BotError):
    def __init__(self, name: str, where: str = "") -> None:
        self.name = name
        suffix = f"（{where}）" if where else ""
        super().__init__(f"未知的推送对象 {name}{suffix}。处理办法：在配置文件 targets 中定义它，或改用已有的名称")


class DeliveryError(BotError):
    """A message could not be delivered; the message says why, in words."""
