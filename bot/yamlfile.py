"""Load YAML and remember the line of every key, so errors can name the line to fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ScheduleError

KeyPath = tuple[Any, ...]


@dataclass
class LineMap:
    """Maps a key path such as ('rules', 0, 'at') to the 1-based line where it stands."""

    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of the path, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def dotted(path: KeyPath) -> str:
    """('rules', 0, 'at') -> 'rules[0].at'"""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _construct(node: yaml.Node, path: KeyPath, lines: LineMap, loader: yaml.SafeLoader) -> Any:
    lines.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in result:
                raise yaml.constructor.ConstructorError(
                    None, None, f"重复的键 {key}", key_node.start_mark)
            result[key] = _construct(value_node, (*path, key), lines, loader)
            lines.lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines, loader) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError:  # e.g. an impossible date such as 2026-02-30
        raise _BadValue(str(node.value), node.start_mark.line + 1) from None


class _BadValue(Exception):
    def __init__(self, value: str, line: int) -> None:
        super().__init__(value)
        self.value, self.line = value, line


def parse_yaml(text: str, source: str | Path, error: type = ScheduleError) -> tuple[Any, LineMap]:
    """Parse YAML text; a syntax error becomes ``error`` naming the source and the line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines = LineMap()
        data = _construct(node, (), lines, loader) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        raise error(f"YAML 格式错误：{problem}", file=source, line=line,
                    fix="检查该行的缩进、冒号和引号") from None
    except _BadValue as exc:
        raise error(f"“{exc.value}”不是有效的日期或数值", file=source, line=exc.line,
                    fix="检查该日期是否存在（如 2 月没有 30 日），写成 YYYY-MM-DD") from None
    finally:
        loader.dispose()
    return data, lines


def load_yaml(path: str | Path, error: type = ScheduleError) -> tuple[Any, LineMap]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("文件不存在", file=path, fix="检查路径是否正确") from None
    except UnicodeDecodeError:
        raise error("文件不是 UTF-8 编码", file=path, fix="以 UTF-8 编码另存该文件") from None
    return parse_yaml(text, path, error)
