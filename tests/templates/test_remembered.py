"""Renders remembered per snapshot of the templates: the same message crosses to a worker once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bot.errors import TemplateError
from bot.templates.pool import RenderPool
from bot.templates.remembered import RememberedRenders
from bot.templates.render import TemplateLibrary

HEAD = "---\ntitle: 问候\nmsgtype: text\ndescription: 测试\n---\n"


class Counted:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"render {self.calls}"


def test_the_same_message_is_rendered_once_and_another_context_again() -> None:
    memo, render = RememberedRenders(), Counted()
    first = memo.get("reply_help", {"branch": {"name": "第一党支部"}}, render)
    again = memo.get("reply_help", {"branch": {"name": "第一党支部"}}, render)
    other = memo.get("reply_help", {"branch": {"name": "第二党支部"}}, render)
    assert (first, again, other) == ("render 1", "render 1", "render 2")
    assert memo.get("reply_progress", {"branch": {"name": "第一党支部"}}, render) == "render 3"


def test_only_the_latest_renders_are_kept() -> None:
    memo, render = RememberedRenders(size=2), Counted()
    for n in (1, 2, 3):
        memo.get("t", {"n": n}, render)
    assert memo.get("t", {"n": 3}, render) == "render 3"
    assert memo.get("t", {"n": 1}, render) == "render 4"  # forgotten: rendered again


def test_a_failed_render_is_not_remembered() -> None:
    memo, calls = RememberedRenders(), []

    def failing() -> str:
        calls.append(1)
        raise TemplateError("模板渲染出错")

    for _ in range(2):
        with pytest.raises(TemplateError):
            memo.get("t", {}, failing)
    assert len(calls) == 2


def test_a_context_that_cannot_be_pickled_is_rendered_each_time() -> None:
    memo, render = RememberedRenders(), Counted()
    context = {"lock": threading.Lock()}
    assert memo.get("t", context, render) == "render 1"
    assert memo.get("t", context, render) == "render 2"


def test_a_library_renders_through_its_pool_once_per_message(tmp_path: Path) -> None:
    (tmp_path / "hello.j2").write_text(HEAD + "{{ branch.name }}：您好", encoding="utf-8")
    pool = RenderPool(size=1)
    asked: list[str] = []
    original = pool.render

    def spy(directory: Path, edits: dict[str, str], name: str, context: dict[str, object]) -> object:
        asked.append(name)
        return original(directory, edits, name, context)

    pool.render = spy  # type: ignore[method-assign]
    try:
        library = TemplateLibrary(tmp_path, {}, pool)
        texts = [library.render("hello", {"branch": {"name": "第一党支部"}}).text for _ in range(3)]
        edited = TemplateLibrary(tmp_path, {"hello": HEAD + "{{ branch.name }}：请注意"}, pool)
        assert edited.render("hello", {"branch": {"name": "第一党支部"}}).text == "第一党支部：请注意"
    finally:
        pool.close()
    assert texts == ["第一党支部：您好"] * 3
    assert asked == ["hello", "hello"]  # once per snapshot of the templates
