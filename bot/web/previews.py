"""Samples to preview a template with (a holiday of a chosen year, the sample meeting, a study item),
and the preview itself: rendered text, its size against WeCom's limit, and every problem."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.calendars.holiday_file import HolidayPeriod
from bot.calendars.holidays import HolidayCalendar
from bot.rules.holidays import period_context
from bot.templates.limits import limit_for
from bot.templates.render import TemplateLibrary, TemplateProblem, validate_template
from bot.templates.samples import TEMPLATE_KINDS, sample_context

DEFAULT = "default"


@dataclass(frozen=True)
class SampleChoice:
    value: str
    label: str
    group: str = ""


@dataclass(frozen=True)
class Preview:
    text: str
    msgtype: str
    size: int
    limit: int
    problems: list[TemplateProblem] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"ok": not self.problems, "text": self.text, "msgtype": self.msgtype, "bytes": self.size,
                "limit": self.limit, "problems": [{"message": p.message, "line": p.line} for p in self.problems]}


def sample_choices(name: str, calendar: HolidayCalendar, studies: Any) -> list[SampleChoice]:
    base = sample_context(name)
    choices = [SampleChoice(DEFAULT, _default_label(base))]
    if "holiday" in base:
        choices += [SampleChoice(f"holiday:{p.key}", f"{p.year}年 {p.name}", f"{p.year}年节假日")
                    for year in sorted(calendar.years, reverse=True) for p in calendar.periods(year)]
    if "item" in base and "branch" in base and studies is not None:
        choices += [SampleChoice(f"study:{i.id}", i.title, "学习内容") for i in studies.items]
    return choices


def _default_label(base: dict[str, Any]) -> str:
    if "holiday" in base:
        return "内置示例：2026年春节"
    if "meeting" in base:
        return f"示例会议：{base['meeting']['title']}"
    if "item" in base:
        return f"示例学习内容：{base['item']['title']}"
    return "内置示例"


def build_sample(name: str, choice: str, calendar: HolidayCalendar, studies: Any) -> dict[str, Any]:
    """The context for `choice`; an unknown choice falls back to the built-in sample."""
    sample = sample_context(name)
    kind, _, key = choice.partition(":")
    if kind == "holiday" and "holiday" in sample:
        period = next((p for p in calendar.periods() if p.key == key), None)
        if period is not None:
            sample["holiday"] = period_context(period)
            sample["send_date"] = _send_day(name, period, calendar).isoformat()
            if "told" in sample:  # a correction: what the notice had said is this holiday's own dates
                sample["told"] = {k: sample["holiday"][k] for k in ("first_day", "last_day", "workdays")}
    elif kind == "study" and "item" in sample and studies is not None:
        item = studies.get(key)
        if item is not None:
            sample["item"] = item.context()
    return sample


def _send_day(name: str, period: HolidayPeriod, calendar: HolidayCalendar) -> Any:
    if TEMPLATE_KINDS.get(name) == "holiday_return":
        return calendar.workday_after(period.last_day, 1)
    return calendar.workday_before(period.first_day, 1)


def preview(library: TemplateLibrary, name: str, text: str, sample: dict[str, Any],
            channels: Iterable[str] = ("robot",)) -> Preview:
    """The rendered text, its size against the strictest limit of ``channels``, and its problems."""
    problems = validate_template(library, name, text, sample, channels)
    rendered, msgtype = "", "text"
    try:
        message = library.with_edit(name, text).render(name, sample)
        rendered, msgtype = message.text, message.msgtype
    except Exception as exc:  # an untrusted template may fail in any way; never a 500 for a preview
        if not problems:
            problems = [TemplateProblem(str(exc), getattr(exc, "line", None))]
    size = len(rendered.encode("utf-8"))
    limit = limit_for(msgtype, channels)
    return Preview(rendered, msgtype, size, limit[0] if limit else 2048, problems)


def save_problems(library: TemplateLibrary, name: str, text: str, samples: list[dict[str, Any]],
                  channels: Iterable[str] = ("robot",)) -> list[TemplateProblem]:
    """Everything that forbids saving `text`, checked with each sample (no duplicates)."""
    found: dict[str, TemplateProblem] = {}
    for sample in samples:
        for problem in validate_template(library, name, text, sample, channels):
            found.setdefault(problem.message, problem)
    return list(found.values())
