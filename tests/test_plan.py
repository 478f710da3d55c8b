"""The plan against the official arrangements, checked day by day with an independent source."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from bot.cli import main
from bot.clock import BEIJING
from bot.config import load_settings
from bot.inputs import load_holidays
from bot.plan import PlanInputs, build_plan, expand, plan_occurrences
from bot.rules.holidays import ToldHoliday, plan_holiday_rules
from bot.templates.render import TemplateLibrary

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def holidays_only(project: Path) -> Path:
    """The shipped config and holidays, without meetings and studies."""
    for name in ("meetings.yaml", "studies.yaml", "announcements.yaml"):
        (project.parent / "schedules" / name).unlink(missing_ok=True)
    return project


def official_blocks(first: date, last: date) -> list[tuple[date, date]]:
    """Maximal runs of days off that contain a statutory holiday, per chinese_calendar."""
    blocks, day = [], first
    while day <= last:
        if not chinese_calendar.is_workday(day):
            start = day
            while not chinese_calendar.is_workday(day + timedelta(days=1)):
                day += timedelta(days=1)
            run = [start + timedelta(days=i) for i in range((day - start).days + 1)]
            if any(chinese_calendar.get_holiday_detail(d)[1] for d in run):
                blocks.append((start, day))
        day += timedelta(days=1)
    return blocks


def previous_workday(day: date) -> date:
    day -= timedelta(days=1)
    while not chinese_calendar.is_workday(day):
        day -= timedelta(days=1)
    return day


def next_workday(day: date) -> date:
    day += timedelta(days=1)
    while not chinese_calendar.is_workday(day):
        day += timedelta(days=1)
    return day


def run_plan_json(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    assert main(["--config", str(config), "plan", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_pre_holiday_notices_2019_to_2026_match_the_official_arrangements(
        holidays_only: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = run_plan_json(holidays_only, capsys, "--from", "2019-01-01", "--to", "2026-12-31")
    window = (date(2019, 1, 1), date(2026, 12, 31))
    blocks = official_blocks(date(2018, 12, 1), date(2026, 12, 31))
    expected_notices = {previous_workday(a) for a, _ in blocks} & _dates_between(*window)
    expected_returns = {next_workday(b) for _, b in blocks} & _dates_between(*window)

    notices = [m for m in plan if m["kind"] == "holiday_notice"]
    returns = [m for m in plan if m["kind"] == "holiday_return"]
    assert {m["due_at"][:10] for m in notices} == {d.isoformat() for d in expected_notices}
    assert {m["due_at"][:10] for m in returns} == {d.isoformat() for d in expected_returns}
    assert all(m["due_at"].endswith("T10:00:00+08:00") for m in notices)
    assert all(m["due_at"].endswith("T09:00:00+08:00") for m in returns)
    # three groups, one notice per block each: combined 中秋+国庆 blocks get one notice
    assert len(notices) == 3 * len(expected_notices)


def test_no_message_on_a_day_off(holidays_only: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = run_plan_json(holidays_only, capsys, "--from", "2019-01-01", "--to", "2026-12-31")
    off = [m["due_at"] for m in plan if not chinese_calendar.is_workday(date.fromisoformat(m["due_at"][:10]))]
    assert off == []


@pytest.mark.parametrize(("start", "kind", "due", "name"), [
    ("2026-02-01", "holiday_notice", "2026-02-14T10:00:00+08:00", "春节"),
    ("2026-01-01", "holiday_return", "2026-01-04T09:00:00+08:00", "元旦"),
    ("2025-09-01", "holiday_notice", "2025-09-30T10:00:00+08:00", "国庆节、中秋节"),
    ("2023-09-01", "holiday_notice", "2023-09-28T10:00:00+08:00", "中秋节、国庆节"),
    ("2023-12-01", "holiday_notice", "2023-12-29T10:00:00+08:00", "元旦"),
    ("2024-09-01", "holiday_notice", "2024-09-14T10:00:00+08:00", "中秋节"),
    ("2025-01-01", "holiday_notice", "2025-01-27T10:00:00+08:00", "春节"),
], ids=["2026-chunjie-saturday", "2026-yuandan-return-sunday", "2025-combined", "2023-combined",
        "2024-yuandan-in-december", "2024-zhongqiu-adjusted-saturday", "2025-chuxi-off"])
def test_real_cases(holidays_only: Path, capsys: pytest.CaptureFixture[str], start: str, kind: str, due: str,
                    name: str) -> None:
    end = (date.fromisoformat(start) + timedelta(days=40)).isoformat()
    plan = run_plan_json(holidays_only, capsys, "--from", start, "--to", end)
    first = next(m for m in plan if m["kind"] == kind)
    assert first["due_at"] == due
    assert name in first["text"] or name in first["reason"]


def test_json_fields(holidays_only: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = run_plan_json(holidays_only, capsys, "--from", "2026-02-01", "--to", "2026-02-28")
    message = plan[0]
    assert set(message) >= {"key", "due_at", "kind", "rule", "target", "template", "text"}
    # Names only: the robot's key (a secret) stays in the config; the channel looks it up when it sends.
    assert "recipients" not in message and "6a1f0c2e" not in json.dumps(message)
    assert message["target"] == "b1_group" and message["rule"] == "holiday_integrity"
    assert len({m["key"] for m in plan}) == len(plan)


def test_missing_year_is_shown_as_awaiting_the_notice(holidays_only: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(holidays_only), "plan", "--from", "2026-12-01", "--to", "2027-12-31"]) == 0
    out = capsys.readouterr().out
    assert "2027年节假日安排尚未发布" in out and "待国务院通知" in out
    plan = run_plan_json(holidays_only, capsys, "--from", "2027-01-01", "--to", "2027-12-31")
    assert [m for m in plan if m["kind"].startswith("holiday")] == []


def test_plan_is_stable_and_keys_do_not_depend_on_now(holidays_only: Path) -> None:
    settings = load_settings(holidays_only)
    inputs = PlanInputs(settings=settings, calendar=load_holidays(ROOT / "schedules" / "holidays"),
                        templates=TemplateLibrary(ROOT / "messages"))
    first = build_plan(inputs, date(2026, 1, 1), date(2026, 12, 31), datetime(2026, 1, 1, tzinfo=BEIJING))
    later = build_plan(inputs, date(2026, 1, 1), date(2026, 12, 31), datetime(2026, 6, 1, tzinfo=BEIJING))
    assert [m.key for m in first.messages] == [m.key for m in later.messages]


def test_each_distinct_text_is_rendered_once(holidays_only: Path) -> None:
    settings = load_settings(holidays_only)
    calls: list[str] = []

    class CountingLibrary(TemplateLibrary):
        def render(self, name, context):  # type: ignore[no-untyped-def]
            calls.append(name)
            return super().render(name, context)

    inputs = PlanInputs(settings=settings, calendar=load_holidays(ROOT / "schedules" / "holidays"),
                        templates=CountingLibrary(ROOT / "messages"))
    occurrences = plan_occurrences(inputs, date(2026, 1, 1), date(2026, 12, 31), datetime(2026, 1, 1, tzinfo=BEIJING))
    messages = expand(occurrences, settings, inputs.templates)
    assert len(messages) == 3 * len(occurrences)
    assert len(calls) == len(occurrences)


def test_lunar_festival_rule(holidays_only: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = holidays_only.read_text(encoding="utf-8").replace("rules:\n", """rules:
  - id: lantern
    kind: holiday_notice
    template: holiday_integrity
    to: [office]
    festivals: [元宵, 重阳]
    workdays_before: 0
    at: "09:30"
""", 1)
    holidays_only.write_text(text, encoding="utf-8")
    plan = run_plan_json(holidays_only, capsys, "--from", "2026-01-01", "--to", "2026-12-31")
    lantern = [m["due_at"] for m in plan if m["rule"] == "lantern"]
    # 元宵 2026-03-03 is a Tuesday; 重阳 2026-10-18 is a Sunday → the Friday before
    assert lantern == ["2026-03-03T09:30:00+08:00", "2026-10-16T09:30:00+08:00"]


def _dates_between(first: date, last: date) -> set[date]:
    return {first + timedelta(days=i) for i in range((last - first).days + 1)}


def test_corrections_follow_what_each_target_was_told(holidays_only: Path) -> None:
    settings = load_settings(holidays_only)
    calendar = load_holidays(ROOT / "schedules" / "holidays")
    spring = next(p for p in calendar.periods(2026) if p.name == "春节")
    as_notice = ToldHoliday("holiday_integrity", spring.first_day, spring.last_day, spring.workdays)
    earlier = ToldHoliday("holiday_integrity", spring.first_day, date(2026, 2, 22), spring.workdays)
    told = {spring.key: {"b1_group": as_notice, "b2_group": earlier, "b3_group": earlier}}

    def corrections(now: datetime) -> list:
        found = plan_holiday_rules(settings, calendar, now.date(), now.date(), now, told)
        return [o for o in found if o.kind == "holiday_correction"]

    [one] = corrections(datetime(2026, 2, 16, 11, 0, tzinfo=BEIJING))
    assert one.targets == ("b2_group", "b3_group")  # b1 was told what holds
    assert one.occurrence == f"{spring.key}!correction:2026-02-15~2026-02-23~2026-02-14+2026-02-28"
    assert one.context["told"]["last_day"] == "2026-02-22" and one.meta["last_day"] == "2026-02-23"
    assert "此前提醒为2月15日（周日）至2月22日（周日）" in one.reason
    assert corrections(datetime(2026, 2, 24, 9, 0, tzinfo=BEIJING)) == []  # the holiday is over
