"""What a branch secretary's reply means: confirm, pick from a numbered list, ask for progress or help.

Pure and deliberately strict: a reply confirms only when, after removing an issue number and a few
filler words, nothing but a known confirmation phrase is left. So "未学习", "完成了吗？" or
"学习什么" never confirm anything; they fall through to ``unknown`` (answered with the help text).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

IntentKind = Literal["confirm", "choose", "progress", "help", "unknown"]

CONFIRM_PHRASES = frozenset({
    "已学习", "已完成", "学习完成", "完成", "已学", "已组织学习", "学完", "已学完", "学习完毕", "完成学习",
    "已完成学习", "学习已完成", "已组织学习完成", "组织学习完成", "已组织完成学习", "已按要求学习",
    "已按要求完成学习", "已传达学习", "已学习完毕", "已学习完成", "已完成学习任务", "学好",
})
PROGRESS_WORDS = ("进度", "查询", "查看", "待办")
HELP_WORDS = frozenset({"帮助", "?", "help", "说明", "菜单", "使用说明"})
ALL_WORDS = frozenset({"全部", "全选", "都", "所有"})
# Rewritten before matching, in this order (so "收到并" goes before "收到").
FILLERS = (("已经", "已"), ("收到并", ""), ("收到", ""), ("好的", ""), ("我们支部", ""), ("我支部", ""),
           ("本支部", ""), ("我们", ""), ("全部", ""), ("所有", ""), ("都", ""), ("均", ""), ("了", ""),
           ("啦", ""), ("的", ""), ("报告", ""))
CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUMBER = "[零〇一二两三四五六七八九十百]+"
_ISSUE = re.compile(rf"第?(\d+|{_CN_NUMBER})期")
_TITLE = re.compile(r"《[^》]*》(?:\d{4}年)?")
_CHOICE = re.compile(r"^(?:第)?(\d{1,2})(?:[、,，和及\s]+(\d{1,2}))*(?:项|个|条)?$")
_TRAILING = re.compile(r"[。．.！!~～,，;；\s]+$")


@dataclass(frozen=True)
class Intent:
    """``confirm`` may name an issue number or all open items; ``choose`` answers a numbered list."""

    kind: IntentKind
    number: int | None = None              # confirm: the issue number (期号) named, if any
    choices: tuple[int, ...] = ()          # choose: 1-based positions in the offered list
    everything: bool = False               # choose / confirm: "全部"


def understand(text: str) -> Intent:
    """The intent of one reply, for the phrases secretaries actually write."""
    plain = normalize(text)
    if not plain:
        return Intent("unknown")
    if plain in HELP_WORDS or plain == "??":
        return Intent("help")
    if plain in ALL_WORDS:
        return Intent("choose", everything=True)
    if _CHOICE.match(plain):
        return Intent("choose", choices=_positions(plain))
    if any(word in plain for word in PROGRESS_WORDS) and not _is_confirmation(plain):
        return Intent("progress")
    return _confirmation(plain)


def normalize(text: str) -> str:
    """NFKC (full-width digits and ？ become ASCII), no spaces, no trailing punctuation."""
    plain = unicodedata.normalize("NFKC", text or "").strip().lower()
    plain = re.sub(r"\s+", "", plain)
    return _TRAILING.sub("", plain)


def _positions(plain: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", plain))


def _confirmation(plain: str) -> Intent:
    everything = any(word in plain for word in ("全部", "都", "均", "所有"))
    numbers = [parse_number(m.group(1)) for m in _ISSUE.finditer(plain)]
    if not _is_confirmation(plain) or len(set(numbers)) > 1:
        return Intent("unknown")
    return Intent("confirm", number=numbers[0] if numbers else None, everything=everything and not numbers)


def _is_confirmation(plain: str) -> bool:
    core = _ISSUE.sub("", _TITLE.sub("", plain))
    for filler, replacement in FILLERS:
        core = core.replace(filler, replacement)
    core = re.sub(r"[。．.！!~～,，;；、]", "", core)
    return core in CONFIRM_PHRASES


def parse_number(text: str) -> int:
    """'5' → 5, '五' → 5, '十二' → 12, '二十三' → 23, '一百零五' → 105."""
    if text.isdigit():
        return int(text)
    total, current = 0, 0
    for char in text:
        if char == "百":
            total += (current or 1) * 100
            current = 0
        elif char == "十":
            total += (current or 1) * 10
            current = 0
        else:
            current = CN_DIGITS[char]
    return total + current
