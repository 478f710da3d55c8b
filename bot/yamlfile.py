"""Load YAML and remember the line of every key, so errors can name the line to fix."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.errors import PlacedError, ScheduleError

KeyPath = tuple[Any, ...]
# libyaml's parser where PyYAML was built with it: ten times faster than the pure-Python one on
# the meetings of a hundred branches (start-up time); both give every node its line.
SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
    loader = SafeLoader(text)
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


# ---- values and validation errors (config.yaml; any YAML read into pydantic models) ----------

_ENV_PATTERN = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def expand_value(value: Any, path: KeyPath, lines: LineMap, source: Path,
                 error: type[PlacedError] = ScheduleError) -> Any:
    """Replace ${VAR} and file:/path strings, recursively."""
    if isinstance(value, dict):
        return {k: expand_value(v, (*path, k), lines, source, error) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_value(v, (*path, i), lines, source, error) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    if match := _ENV_PATTERN.match(value):
        name = match.group(1)
        if name not in os.environ:
            raise error(f"环境变量 {name} 未设置", file=source, line=lines.line_of(path),
                              key=dotted(path), fix=f"设置环境变量 {name}，或在配置文件中直接填写该值")
        return os.environ[name]
    if value.startswith("file:"):
        secret_path = Path(value[5:])
        try:
            return secret_path.read_text(encoding="utf-8").strip()
        except OSError:
            raise error(f"无法读取文件 {secret_path}", file=source, line=lines.line_of(path),
                              key=dotted(path), fix="检查该文件是否存在且可读") from None
    return value


_PYDANTIC_MESSAGES = {
    "missing": ("缺少必填项", "补上该项"),
    "extra_forbidden": ("未知的配置项", "检查拼写，或删除该项；可用的配置项见 config.example.yaml"),
    "int_parsing": ("应为整数", "填写一个整数"),
    "int_type": ("应为整数", "填写一个整数"),
    "bool_parsing": ("应为 true 或 false", "填写 true 或 false"),
    "string_type": ("应为文字", "用引号括起该值"),
    "list_type": ("应为列表", "写成 [a, b] 或逐行以 - 开头"),
    "dict_type": ("应为键值映射", "写成 键: 值 的形式"),
    "literal_error": ("取值不在允许范围内", None),
    "string_pattern_mismatch": ("格式不正确", "只使用字母、数字、下划线或连字符"),
    "union_tag_invalid": ("type 取值不正确", "type 应为 robot、app、appchat 或 console"),
    "union_tag_not_found": ("缺少 type", "填写 type: robot、app、appchat 或 console"),
    "greater_than_equal": ("数值过小", None),
    "less_than_equal": ("数值过大", None),
}


def config_error_from(exc: ValidationError, source: Path, lines: LineMap,
                      error: type[PlacedError] = ScheduleError) -> PlacedError:
    """The first pydantic error as an ``error`` naming the file, line, key path and fix."""
    # A typo shows as an unknown key plus a missing one; the unknown key is the one to name.
    first = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
    loc = tuple(part for part in first["loc"] if not (isinstance(part, str) and part in _TARGET_TAGS))
    problem, fix = _PYDANTIC_MESSAGES.get(first["type"], (None, None))
    if first["type"] in ("value_error", "assertion_error"):
        problem = str(first.get("ctx", {}).get("error", first["msg"]))
    elif first["type"] == "literal_error":
        fix = f"可用的取值：{first.get('ctx', {}).get('expected', '')}"
    elif first["type"] in ("greater_than_equal", "less_than_equal"):
        fix = f"允许的范围见 README；当前限制：{first.get('ctx', {})}"
    if problem is None:
        problem = f"取值不正确（{first['msg']}）"
    if first["type"] == "extra_forbidden" and loc:
        problem = f"未知的配置项 {loc[-1]}"
    extra = len(exc.errors()) - 1
    if extra:
        fix = f"{fix or '按说明修改'}；另有 {extra} 处错误，改正后再运行 check 查看"
    return error(problem, file=source, line=lines.line_of(loc), key=dotted(loc) or None,
                       fix=fix or "按 README 中的配置说明修改")


_TARGET_TAGS = {"robot", "app", "appchat", "console"}


# Values as our YAML files write them -------------------------------------------------------

_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|秒|分钟|小时|天)$")
_DURATION_UNITS = {"s": 1, "秒": 1, "m": 60, "分钟": 60, "h": 3600, "小时": 3600, "d": 86400, "天": 86400}


def parse_duration(value: Any) -> timedelta:
    """'2h', '30m', '90s', '1d' (or 小时/分钟/秒/天) → timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ValueError("时长格式应为 数字+单位，如 2h、30m、90s、1d")
    return timedelta(seconds=int(match.group(1)) * _DURATION_UNITS[match.group(2)])


def parse_clock_time(value: Any) -> time:
    """'10:00' → time(10, 0). YAML may already give minutes for an unquoted 10:00 (sexagesimal)."""
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML 1.1 reads an unquoted 10:00 as 600
        value = f"{value // 60}:{value % 60:02d}"
    match = re.match(r"^(\d{1,2}):(\d{2})$", str(value).strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError("时间格式应为 HH:MM，如 10:00")
    return time(int(match.group(1)), int(match.group(2)))
