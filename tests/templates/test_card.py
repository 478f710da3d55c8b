"""A template's card (front matter ``card``): its parts render from the template, WeCom's lengths are
checked, and where no card can go the fields follow the body as lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import TemplateError
from bot.templates.card import MAX_FIELDS, TEXT_CHARS, TITLE_CHARS, within_limits
from bot.templates.limits import card_problems
from bot.templates.render import TemplateLibrary
from bot.templates.samples import sample_context

ROOT = Path(__file__).resolve().parents[2]


def library_with(text: str) -> TemplateLibrary:
    return TemplateLibrary(ROOT / "messages").with_edit("study_prompt", text)


def prompt_text(**changes: str) -> str:
    text = TemplateLibrary(ROOT / "messages").default_text("study_prompt") or ""
    for old, new in changes.items():
        text = text.replace(old, new)
    return text


def test_the_card_takes_title_fields_and_button_from_the_template() -> None:
    message = TemplateLibrary(ROOT / "messages").render("study_prompt", sample_context("study_prompt"))
    assert message.card is not None
    assert message.card.title == "学习提醒：《警示教育通报》2026年第5期"
    assert message.card.button == "已完成学习"
    assert message.card.fields[0] == ("截止时间", "5月22日（周五）18:00")
    assert message.card.text.startswith("张伟同志：")
    # Where no card can go (a group robot), the fields follow the body as lines
    assert message.text.endswith("学习材料：https://example.gov.cn/jsjy/2026-05")


def test_an_empty_field_is_left_out() -> None:
    context = sample_context("study_prompt")
    context["item"] = {**context["item"], "link": ""}
    message = TemplateLibrary(ROOT / "messages").render("study_prompt", context)
    assert message.card is not None and [name for name, _ in message.card.fields] == ["截止时间"]


def test_card_lengths_are_checked_with_the_fix() -> None:
    long_button = prompt_text(**{"button: 已完成学习": "button: 本支部全体党员已经完成学习"})
    message = library_with(long_button).render("study_prompt", sample_context("study_prompt"))
    assert message.card is not None
    problems = card_problems(message.card.as_dict("confirm:x"))
    assert problems == ["模板卡片的按钮文字共 13 个字，超过企业微信建议的 10 个字。处理办法：缩短按钮文字"]


def test_a_card_body_over_160_characters_is_refused() -> None:
    text = prompt_text(**{"学习完成后，": "学习完成后，" + "请认真组织学习。" * 10})
    card = library_with(text).render("study_prompt", sample_context("study_prompt")).card
    assert card is not None
    problems = card_problems(card.as_dict("confirm:x"))
    assert len(problems) == 1 and "说明" in problems[0] and "160 个字" in problems[0]


def test_card_fields_are_checked_and_a_link_may_be_long() -> None:
    text = prompt_text(**{"截止时间:": "截止时间和地点:"})
    card = library_with(text).render("study_prompt", sample_context("study_prompt")).card
    assert card is not None
    assert card_problems(card.as_dict("confirm:x")) == ["模板卡片的字段名称“截止时间和地点”超过 5 个字。处理办法：缩短名称"]


@pytest.mark.parametrize("card", ["card: 学习提醒", "card:\n  title: 学习提醒\n  colour: red",
                                  "card:\n  title: 学习提醒\n  fields: [截止时间]"])
def test_a_malformed_card_is_a_chinese_error(card: str) -> None:
    text = "---\ntitle: 学习提醒\nmsgtype: text\n" + card + "\n---\n正文\n"
    with pytest.raises(TemplateError) as error:
        library_with(text).render("study_prompt", sample_context("study_prompt"))
    assert "card" in str(error.value) and "处理办法" in str(error.value)


def test_a_card_for_a_push_is_cut_to_wecoms_lengths_and_a_link_is_kept_whole() -> None:
    link = "https://example.org/" + "a" * 60
    card = {"title": "标" * 40, "description": "文" * 200, "button_text": "已经完成了本期的学习", "button_key": "k",
            "fields": [["截止时间很长", "值" * 40], ["学习材料", link]] + [["第", "x"]] * 6}
    cut = within_limits(card)
    assert len(cut["title"]) == TITLE_CHARS and cut["title"].endswith("…")
    assert len(cut["description"]) == TEXT_CHARS and cut["button_text"] == "已经完成了本期的学习"
    assert len(cut["fields"]) == MAX_FIELDS and cut["fields"][0] == ["截止时间…", "值" * 29 + "…"]
    assert cut["fields"][1] == ["学习材料", link] and cut["button_key"] == "k"
