"""Samples to preview a template with (a holiday of a chosen year, the sample meeting, a study item),
and the preview itself: rendered text, its size against WeCom's limit, and every problem."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.calendars.holiday_file import HolidayPeriod
from bot.calendars.holidays import HolidayCalendar
from bot.config import Settings
from bot.errors import TemplateError
from bot.rules.holidays import period_context
from bot.templates.card import PLACES, TEXT_CHARS, RenderedCard
from bot.templates.limits import CHANNEL_NAMES, channel_of, limit_for
from bot.templates.render import TemplateLibrary, TemplateProblem, validate_template
from bot.templates.samples import TEMPLATE_KINDS, sample_context
from bot.web.template_uses import TemplateUse, template_uses

DEFAULT = "default"


@dataclass(frozen=True)
class SampleChoice:
    value: str
    label: str
    group: str = ""


@dataclass(frozen=True)
class ChannelView:
    """The message as one channel shows it: a card, markdown or text, its size against that channel's limit."""

    channel: str             # robot | app | appchat | console | "" (no rule uses the template)
    form: str                # card | markdown | text
    size: int                # bytes (characters of the card's text for a card)
    limit: int
    targets: tuple[str, ...]  # the targets' titles

    @property
    def label(self) -> str:
        where = CHANNEL_NAMES.get(self.channel, "")
        kind = {"card": "模板卡片", "markdown": "markdown 消息", "text": "文字消息"}[self.form]
        return f"{where} · {kind}" if where else kind

    @property
    def size_line(self) -> str:
        if self.form == "card":
            return f"卡片正文 {self.size} 个字（上限 {self.limit} 个字）"
        return f"{self.size} 字节（{CHANNEL_NAMES.get(self.channel, '企业微信')}上限 {self.limit} 字节）"


@dataclass(frozen=True)
class Preview:
    text: str
    msgtype: str
    rendered: bool
    problems: list[TemplateProblem] = field(default_factory=list)
    card: RenderedCard | None = None
    views: list[ChannelView] = field(default_factory=list)
    uses: list[TemplateUse] = field(default_factory=list)
    places: tuple[tuple[str, str, str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"ok": not self.problems, "text": self.text, "msgtype": self.msgtype,
                "sizes": [{"label": v.label, "line": v.size_line} for v in self.views],
                "problems": [{"message": p.message, "line": p.line, "text": p.text} for p in self.problems]}


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
            settings: Settings | None = None, channels: Iterable[str] = ("robot",)) -> Preview:
    """The message as each channel that sends it shows it, its size against that channel's limit, its problems."""
    problems = validate_template(library, name, text, sample, channels)
    trial = library.with_edit(name, text)
    try:
        msgtype = trial.source(name).msgtype
    except Exception:  # noqa: BLE001 - the front matter's own error is among the problems
        msgtype = "text"
    try:
        message = trial.render(name, sample)
    except Exception as exc:  # an untrusted template may fail in any way; never a 500 for a preview
        if not problems:
            problems = [TemplateProblem.of(exc) if isinstance(exc, TemplateError) else
                        TemplateProblem("模板无法渲染。处理办法：检查模板的写法", None)]
        return Preview("", msgtype, False, problems)
    uses = template_uses(settings, name) if settings is not None else []
    views = channel_views(message.text, message.msgtype, message.card, uses, settings, channels)
    return Preview(message.text, message.msgtype, True, problems, message.card, views, uses,
                   PLACES if message.card else ())


def channel_views(text: str, msgtype: str, card: RenderedCard | None, uses: list[TemplateUse],
                  settings: Settings | None, channels: Iterable[str]) -> list[ChannelView]:
    """One view per (channel, form) the template reaches; the plain message when no rule uses it."""
    targets = settings.all_targets() if settings is not None else {}
    found: dict[tuple[str, str], list[str]] = {}
    for use in uses:
        for name in use.targets:
            channel = channel_of(targets.get(name))
            form = "card" if channel == "app" and use.card and card is not None else msgtype
            title = getattr(targets.get(name), "title", None) or name
            found.setdefault((channel, form), []).append(title)
    if not found:
        found[("", msgtype)] = []
    return [_view(channel, form, text, card, tuple(dict.fromkeys(names)), channels)
            for (channel, form), names in found.items()]


def _view(channel: str, form: str, text: str, card: RenderedCard | None, targets: tuple[str, ...],
          channels: Iterable[str]) -> ChannelView:
    if form == "card" and card is not None:
        return ChannelView(channel, form, len(card.text), TEXT_CHARS, targets)
    limit = limit_for(form, [channel] if channel else channels) or limit_for(form, channels)  # the one limits table
    return ChannelView(channel, form, len(text.encode("utf-8")), limit[0] if limit else 2048, targets)


def save_problems(library: TemplateLibrary, name: str, text: str, samples: list[dict[str, Any]],
                  channels: Iterable[str] = ("robot",)) -> list[TemplateProblem]:
    """Everything that forbids saving `text`, checked with each sample (no duplicates)."""
    found: dict[str, TemplateProblem] = {}
    for sample in samples:
        for problem in validate_template(library, name, text, sample, channels):
            found.setdefault(problem.message, problem)
    return list(found.values())
