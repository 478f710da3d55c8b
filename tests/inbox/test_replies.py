from __future__ import annotations

import pytest

from bot.inbox.replies import Intent, parse_number, understand

CONFIRMS = [
    "已学习", "已完成", "学习完成", "完成", "已学", "收到并已学习", "已组织学习", "学完了", "已学习。", "已学习！",
    "已经学习了", "收到，已学习", "我支部已完成学习", "已完成学习", "学习已完成", " 已学习 ", "已学完", "学习完毕",
    "已按要求完成学习",
]
WITH_NUMBER = [
    ("第5期已学习", 5), ("5期已完成", 5), ("第五期已学习", 5), ("已学习第十二期", 12), ("第 5 期 已学习", 5),
    ("第１２期已学习", 12), ("《警示教育通报》2026年第5期已学习", 5), ("第二十三期学习完成", 23), ("十期已学", 10),
]
NEAR_MISSES = [
    "未学习", "还没学习", "没完成", "尚未完成", "学习什么", "完成了吗？", "已学习吗", "已完成吗", "还未完成",
    "没有学习", "不完成", "学习了吗", "收到", "好的", "什么时候完成", "是否已学习", "都没学习", "全部未完成",
    "第5期和第6期已学习", "学习", "已学习?", "学完了没",
]


@pytest.mark.parametrize("text", CONFIRMS)
def test_confirmations(text: str) -> None:
    assert understand(text) == Intent("confirm")


@pytest.mark.parametrize(("text", "number"), WITH_NUMBER, ids=[t for t, _ in WITH_NUMBER])
def test_confirmations_naming_an_issue(text: str, number: int) -> None:
    assert understand(text) == Intent("confirm", number=number)


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_never_confirm(text: str) -> None:
    assert understand(text).kind in ("unknown", "help")


@pytest.mark.parametrize("text", ["全部已学习", "已全部学习", "都已学习", "均已完成学习"])
def test_everything_confirms_all_open_items(text: str) -> None:
    assert understand(text) == Intent("confirm", everything=True)


@pytest.mark.parametrize(("text", "intent"), [
    ("1", Intent("choose", choices=(1,))),
    ("2", Intent("choose", choices=(2,))),
    ("２", Intent("choose", choices=(2,))),
    ("1、3", Intent("choose", choices=(1, 3))),
    ("1,2", Intent("choose", choices=(1, 2))),
    ("第2项", Intent("choose", choices=(2,))),
    ("全部", Intent("choose", everything=True)),
    ("全部。", Intent("choose", everything=True)),
    ("都", Intent("choose", everything=True)),
], ids=["1", "2", "fullwidth-2", "1-and-3", "1-comma-2", "item-2", "all", "all-full-stop", "dou"])
def test_numbered_choices(text: str, intent: Intent) -> None:
    assert understand(text) == intent


@pytest.mark.parametrize(("text", "kind"), [
    ("进度", "progress"), ("查询", "progress"), ("查询进度", "progress"), ("学习进度", "progress"),
    ("帮助", "help"), ("?", "help"), ("？", "help"), ("help", "help"), ("", "unknown"), ("你好", "unknown"),
])
def test_progress_help_and_the_rest(text: str, kind: str) -> None:
    assert understand(text).kind == kind


@pytest.mark.parametrize(("text", "value"), [("5", 5), ("五", 5), ("十", 10), ("十二", 12), ("二十", 20),
                                             ("二十三", 23), ("一百零五", 105), ("两", 2)])
def test_chinese_numerals(text: str, value: int) -> None:
    assert parse_number(text) == value
