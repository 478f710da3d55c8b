"""Reading the arrangement out of a notice's plain text (``notice_text.plain_text``).

Two kinds of notice exist: the yearly arrangement (国务院办公厅关于2026年部分节假日安排的通知), one
item per holiday, and an amendment of one holiday (关于调整2019年劳动节假期安排的通知, 关于延长2020年
春节假期的通知). Every problem found is collected as a Chinese sentence, so a refusal names all
that is missing at once; the checks of the arrangement itself are in ``notice_checks``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.calendars.holiday_file import FESTIVAL_NAMES

FESTIVAL_IDS_BY_NAME = {name: key for key, name in FESTIVAL_NAMES.items()}
_FEST = "|".join(FESTIVAL_NAMES.values())
_TITLE = re.compile(r"关于(\d{4})年部分节假日安排的通知")
_INTRO = re.compile(r"现将(\d{4})年元旦")
_AMENDMENT = re.compile(rf"关于(调整|延长)(\d{{4}})年({_FEST})(假期安排|假期)的通知")
_ITEM = re.compile(rf"[一二三四五六七]、((?:{_FEST})(?:、(?:{_FEST}))*):")
_LAST_ITEM_END = re.compile(r"节假日期间|鼓励单位和个人|国务院办公厅\d{4}年")
_AMENDMENT_ITEM = re.compile(r"一、(.*?)(?:二、|国务院办公厅\d{4}年|$)")
_EXTENSION = re.compile(rf"延长\d{{4}}年(?:{_FEST})假期至((?:\d{{1,2}}月)?\d{{1,2}}日)")
_DATE = re.compile(r"(?:(\d{4})年)?(?:(\d{1,2})月)?(\d{1,2})日(?:\(([^()]*)\))?")
_COUNT = re.compile(r"共(\d+)天|放假(\d+)天")
_SIGNATURE = re.compile(r"国务院办公厅(\d{4})年(\d{1,2})月(\d{1,2})日")
# gov.cn's policy pages state the day a notice was made public beside the day it was signed
_RELEASED = re.compile(r"成文日期.{0,160}?发布日期\W*(\d{4})[年-](\d{1,2})[月-](\d{1,2})")
_WEEKDAY = re.compile(r"(?:周|星期)([一二三四五六日天])")
_WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class ParsedItem:
    """One holiday as the notice states it; ``stated_days`` is its 共N天 (None when not stated)."""

    label: str
    festivals: tuple[str, ...]
    first_day: date
    last_day: date
    workdays: tuple[date, ...]
    stated_days: int | None


@dataclass
class ParsedNotice:
    """What one text says; ``kind`` is 'arrangement', '调整' or '延长'."""

    kind: str
    year: int
    title: str
    published: date | None
    items: list[ParsedItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    extended_to: date | None = None  # 延长: the new last day


@dataclass
class _Dates:
    """Reads dates in reading order: a date without year or month takes the previous one's."""

    year: int
    problems: list[str]
    month: int | None = None

    def read(self, text: str, label: str) -> list[date]:
        return [day for match in _DATE.finditer(text) if (day := self._one(match, label))]

    def _one(self, match: re.Match[str], label: str) -> date | None:
        year, month = int(match[1] or self.year), int(match[2] or self.month or 0)
        try:
            day = date(year, month, int(match[3]))
        except ValueError:
            self.problems.append(f"“{label}”中的“{match[0]}”不是有效的日期")
            return None
        self.year, self.month = year, month
        stated = _WEEKDAY.search(match[4] or "")
        if stated and _WEEKDAYS.index(stated[1].replace("天", "日")) != day.weekday():
            self.problems.append(f"“{label}”中的“{match[0]}”：{day} 实为周{_WEEKDAYS[day.weekday()]}")
        return day


def parse_notice(text: str) -> ParsedNotice | None:
    """The notice in ``text`` (plain text), or None when it is no holiday notice at all."""
    if amendment := _AMENDMENT.search(text):
        return _parse_amendment(text, amendment)
    heading = _TITLE.search(text) or _INTRO.search(text)
    if heading is None:
        return None
    year = int(heading[1])
    notice = ParsedNotice("arrangement", year, f"国务院办公厅关于{year}年部分节假日安排的通知", _published(text))
    items = list(_ITEM.finditer(text, heading.end()))
    for index, item in enumerate(items):
        end = items[index + 1].start() if index + 1 < len(items) else _end_of_last(text, item.end())
        parsed = _item(item[1], text[item.end():end], year, notice.problems)
        if parsed is not None:
            notice.items.append(parsed)
    return notice


def _end_of_last(text: str, start: int) -> int:
    end = _LAST_ITEM_END.search(text, start)
    return end.start() if end else len(text)


def _parse_amendment(text: str, title: re.Match[str]) -> ParsedNotice:
    verb, year, label = title[1], int(title[2]), title[3]
    notice = ParsedNotice(verb, year, f"国务院办公厅{title[0]}", _published(text))
    body = text[title.end():]
    if verb == "延长":
        extension = _EXTENSION.search(body)
        days = _Dates(year, notice.problems).read(extension[1], label) if extension else []
        notice.extended_to = days[0] if days else None
        if notice.extended_to is None:
            notice.problems.append(f"未写明{label}假期延长至哪一天")
        return notice
    item = _AMENDMENT_ITEM.search(body)
    parsed = _item(label, item[1], year, notice.problems) if item else None
    if parsed is None:
        notice.problems.append(f"未写明调整后的{label}放假日期")
    else:
        notice.items.append(parsed)
    return notice


def _published(text: str) -> date | None:
    signatures = _SIGNATURE.findall(text)
    found = _RELEASED.search(text) or (signatures[-1] if signatures else None)
    if found is None:
        return None
    try:
        parts = found.groups() if isinstance(found, re.Match) else found
        return date(*map(int, parts))
    except ValueError:
        return None


def _item(label: str, body: str, year: int, problems: list[str]) -> ParsedItem | None:
    """One item: the sentence that says 放假, the sentences that end in 上班."""
    dates = _Dates(year, problems)
    sentences = [s for s in body.split("。") if s]
    off = next((s for s in sentences if "放假" in s), "")
    block = dates.read(off.split("放假")[0], label)
    if not 1 <= len(block) <= 2:
        problems.append(f"“{label}”一项不完整，未写明放假起止日期")
        return None
    first, last = _with_weekends(block[0], block[-1]) if "与周末连休" in off else (block[0], block[-1])
    workdays = _workdays([s for s in sentences if s is not off], dates, label)
    count = _COUNT.search(off)
    festivals = tuple(FESTIVAL_IDS_BY_NAME[name] for name in label.split("、"))
    return ParsedItem(label, festivals, first, last, workdays, int(count[1] or count[2]) if count else None)


def _workdays(sentences: list[str], dates: _Dates, label: str) -> tuple[date, ...]:
    """The days of the sentences ending in 上班; any other sentence with a date is reported
    (a paste cut inside the list of working days), except the notices' 鼓励… advice."""
    workdays: list[date] = []
    for sentence in sentences:
        if sentence.endswith("上班"):
            workdays += dates.read(sentence, label)
        elif _DATE.search(sentence) and "鼓励" not in sentence:
            dates.problems.append(f"“{label}”一项有无法识别的内容（可能不完整）：“{sentence}”")
    return tuple(workdays)


def _with_weekends(first: date, last: date) -> tuple[date, date]:
    """"与周末连休": the Saturday and Sunday next to the day off belong to the block."""
    while (first - timedelta(days=1)).weekday() >= 5:
        first -= timedelta(days=1)
    while (last + timedelta(days=1)).weekday() >= 5:
        last += timedelta(days=1)
    return first, last
