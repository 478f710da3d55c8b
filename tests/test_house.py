"""The house's rules, checked mechanically so that later work cannot undo them (issue 15).

At most 16 modules at the top of bot/; no module over 400 lines; no import cycle, function-local
imports included; SQL only under bot/store/; WeCom's protocol only under bot/wecom/ (the
simulator, WeCom's side in tests and the demo, has its own); calendars/ and rules/ read no file.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[1] / "bot"
MAX_TOP_MODULES = 16
MAX_LINES = 400
# Outside bot/store/ a module may name a session (a transaction handed to it) and catch a
# unique violation; it may not build a statement or touch a table.
SQLALCHEMY_ALLOWED = {("sqlalchemy.orm", "Session"), ("sqlalchemy.exc", "IntegrityError")}
WECOM_MARKERS = ("qyapi.weixin.qq.com", "cgi-bin/", "wechatpy", "defusedxml")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(BOT.rglob("*.py")):
        parts = path.relative_to(BOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports under ``if TYPE_CHECKING:``: never run, so never a cycle."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            lines.update(child.lineno for child in ast.walk(node) if hasattr(child, "lineno"))
    return lines


def imported(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The bot modules ``name`` imports anywhere in its body (function-local imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], *filter(None, [base])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in known:
                    yield full
                elif base in known:
                    yield base


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imported(name, path, known)) - {name} for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_few_modules_stand_at_the_top_of_bot() -> None:
    top = [p.name for p in BOT.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(top) <= MAX_TOP_MODULES, f"{len(top)} modules at the top of bot/: group some into a package"


@pytest.mark.parametrize("path", sorted(BOT.rglob("*.py")), ids=lambda p: str(p.relative_to(BOT)))
def test_no_module_is_over_400_lines(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES


def test_there_is_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


CORE_PACKAGES = ("bot.calendars", "bot.rules", "bot.templates")
CORE_MODULES = {"bot.plan", "bot.occurrence", "bot.config", "bot.yamlfile", "bot.clock", "bot.errors", "bot.formatting"}


def _core(module: str) -> bool:
    return module in CORE_MODULES or module.startswith(CORE_PACKAGES)


def test_the_pure_core_imports_only_the_core() -> None:
    """Calendars, rules, the plan and rendering never reach the store, the network or the runtime."""
    outside = {m: sorted(d for d in deps if not _core(d)) for m, deps in import_graph().items() if _core(m)}
    assert {m: deps for m, deps in outside.items() if deps} == {}


def test_the_cycle_finder_finds_a_function_local_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _outside(folder: str) -> list[Path]:
    return [p for p in sorted(BOT.rglob("*.py")) if folder not in p.relative_to(BOT).parts[:1]]


@pytest.mark.parametrize("path", _outside("store"), ids=lambda p: str(p.relative_to(BOT)))
def test_sql_lives_in_store(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            names = {(node.module, alias.name) for alias in node.names}
            assert names <= SQLALCHEMY_ALLOWED, f"line {node.lineno}: {sorted(names - SQLALCHEMY_ALLOWED)}"
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("sqlalchemy") for a in node.names), f"line {node.lineno}"
        if isinstance(node, ast.ImportFrom) and node.module == "bot.store.models":
            tables = [alias.name for alias in node.names if not alias.name.isupper()]  # constants are fine
            assert not tables, f"line {node.lineno}: {tables} are bot.store's tables; use a function of bot.store"


@pytest.mark.parametrize("path", [p for p in _outside("wecom") if "simulator" not in p.parts],
                         ids=lambda p: str(p.relative_to(BOT)))
def test_wecom_protocol_lives_in_wecom(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not [marker for marker in WECOM_MARKERS if marker in text]


# Calendars and rules take what bot/inputs.py read: they never open a file or reach the network.
READING_CALLS = {"open", "load_yaml"}
READING_METHODS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "exists", "is_file", "is_dir",
                   "glob", "rglob", "iterdir", "stat"}
NETWORK_MODULES = ("requests", "urllib.request", "http.client", "socket", "httpx")


def _reads(tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in READING_CALLS:
                yield f"line {node.lineno}: {func.id}()"
            elif isinstance(func, ast.Attribute) and func.attr in READING_METHODS | READING_CALLS:
                yield f"line {node.lineno}: .{func.attr}()"
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        yield from (f"line {node.lineno}: import {n}" for n in names if n.startswith(NETWORK_MODULES))


@pytest.mark.parametrize("path", sorted([*(BOT / "calendars").rglob("*.py"), *(BOT / "rules").rglob("*.py")]),
                         ids=lambda p: str(p.relative_to(BOT)))
def test_calendars_and_rules_read_nothing(path: Path) -> None:
    assert list(_reads(ast.parse(path.read_text(encoding="utf-8")))) == []


def test_the_reading_check_finds_a_read() -> None:
    source = "import requests\nfrom pathlib import Path\nPath('x').read_text()\nopen('y')\nload_yaml(p)\n"
    assert len(list(_reads(ast.parse(source)))) == 4


# What `run` loads at start: these would cost memory and start-up time for work it rarely does
# (an Excel export, a migration, a .ics calendar, a lunar date, a Traditional-script notice).
RARELY_NEEDED = ("openpyxl", "alembic", "icalendar", "recurring_ical_events", "lunar_python", "opencc")
RUN_IMPORTS = ("bot.cli", "bot.commands.handlers", "bot.commands.server", "bot.runtime", "bot.scheduler",
               "bot.delivery.dispatcher", "bot.web", "bot.inbox.callback", "bot.inbox.group_bot")


def test_run_loads_rarely_needed_libraries_only_on_use() -> None:
    import subprocess
    import sys
    probe = (f"import importlib, sys\nfor name in {RUN_IMPORTS!r}: importlib.import_module(name)\n"
             f"print(' '.join(m for m in {RARELY_NEEDED!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=BOT.parent).stdout.split()
    assert loaded == []
