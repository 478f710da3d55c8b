from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from fakes import BRANCHES, ROOT, at, demo_settings, item_yaml, schedule_of, write_schedule

from bot.calendars.holidays import HolidayCalendar
from bot.clock import BEIJING
from bot.config import Settings
from bot.errors import ScheduleError
from bot.inputs import load_holidays, load_studies
from bot.occurrence import Occurrence
from bot.rules.studies import StudySchedule, plan_studies
from bot.templates.render import TemplateLibrary


@pytest.fixture(scope="session")
def calendar() -> HolidayCalendar:
    return load_holidays(ROOT / "schedules" / "holidays")


def plan(schedule: StudySchedule, calendar: HolidayCalendar, settings: Settings | None = None,
         confirmed: set[tuple[str, str]] | None = None, start: date = date(2026, 1, 1),
         end: date = date(2027, 12, 31)) -> list[Occurrence]:
    return plan_studies(schedule, settings or demo_settings(), calendar, start, end, at("2026-01-01 00:00"),
                        confirmed or set())


def by_kind(occurrences: list[Occurrence], kind: str) -> list[Occurrence]:
    return [o for o in occurrences if o.kind == kind]


# ---- the shipped file -----------------------------------------------------------------------


def test_shipped_schedule_has_24_monthly_issues(calendar: HolidayCalendar) -> None:
    schedule = load_studies(ROOT / "schedules" / "studies.yaml", BRANCHES)
    assert len(schedule.items) == 24
    assert {i.publish_at.year for i in schedule.items} == {2026, 2027}
    for item in schedule.items:
        local = item.publish_at.astimezone(BEIJING)
        assert (local.hour, local.minute) == (9, 0) and 8 <= local.day <= 18
        assert item.deadline.astimezone(BEIJING).hour == 18
        assert 4 <= (item.deadline - item.publish_at).days <= 18
        assert item.series == "警示教育通报" and item.audience is None and len(item.nudges) == 2
        if local.year == 2026:
            assert calendar.is_workday(local.date()), item.id


def test_shipped_2027_items_are_provisional(calendar: HolidayCalendar) -> None:
    schedule = load_studies(ROOT / "schedules" / "studies.yaml", BRANCHES)
    occurrences = plan(schedule, calendar)
    assert {o.provisional for o in occurrences if o.item.startswith("jsjy-2027")} == {True}
    assert {o.provisional for o in occurrences if o.item.startswith("jsjy-2026")} == {False}


# ---- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "words"), [
    ("items:\n  - id: a\n    title: t\n    colour: red\n    publish_at: \"2026-05-11 09:00\"\n"
     "    deadline: \"2026-05-22 18:00\"\n", 4, "未知的键 colour"),
    ("items:\n  - id: a\n    title: t\n    audience: [b1, b9]\n    publish_at: \"2026-05-11 09:00\"\n"
     "    deadline: \"2026-05-22 18:00\"\n", 4, "未知的支部 b9"),
    ("items:\n  - id: a\n    title: t\n    publish_at: \"2026-05-11 09:00\"\n"
     "    deadline: \"2026-05-01 18:00\"\n", 5, "早于或等于发布时间"),
    ("items:\n  - id: a\n    title: t\n    publish_at: \"2026-05-11\"\n"
     "    deadline: \"2026-05-22 18:00\"\n", 4, "不是有效的时间"),
    ("items:\n  - id: a\n    title: t\n    publish_at: \"2026-05-11 09:00\"\n"
     "    deadline: \"2026-05-22 18:00\"\n    nudges: [截止后1天 09:00]\n", 6, "无法识别的催办时间"),
    ("defaults:\n  nudge: []\nitems: []\n", 2, "未知的键 nudge"),
    ("items:\n  - id: 学习1\n    title: t\n    publish_at: \"2026-05-11 09:00\"\n"
     "    deadline: \"2026-05-22 18:00\"\n", 2, "格式不正确"),
], ids=["unknown-key", "unknown-branch", "deadline-before-publish", "bad-time", "bad-nudge",
        "unknown-default", "non-ascii-id"])
def test_schedule_errors_name_file_line_and_fix(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write_schedule(tmp_path, text)
    with pytest.raises(ScheduleError) as caught:
        load_studies(path, BRANCHES)
    assert caught.value.line == line and caught.value.file == str(path)
    assert words in str(caught.value) and "处理办法" in str(caught.value)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError, match="重复"):
        schedule_of(tmp_path, item_yaml("a", "2026-05-11 09:00", "2026-05-22 18:00"),
                    item_yaml("a", "2026-06-10 09:00", "2026-06-19 18:00"))


def test_defaults_apply_unless_an_item_overrides(tmp_path: Path) -> None:
    path = write_schedule(tmp_path, "defaults:\n  nudges: [\"截止当天 09:00\"]\n  audience: [b1]\nitems:\n"
                          "  - id: a\n    title: t\n    publish_at: \"2026-05-11 09:00\"\n"
                          "    deadline: \"2026-05-22 18:00\"\n"
                          "  - id: b\n    title: t\n    audience: all\n    nudges: []\n"
                          "    publish_at: \"2026-05-11 09:00\"\n    deadline: \"2026-05-22 18:00\"\n")
    first, second = load_studies(path, BRANCHES).items
    assert first.audience == ("b1",) and len(first.nudges) == 1
    assert second.audience is None and second.nudges == ()


# ---- planning -------------------------------------------------------------------------------


def test_prompts_go_to_each_secretary_with_a_card(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = schedule_of(tmp_path, item_yaml("jsjy-2026-05", "2026-05-11 09:00", "2026-05-22 18:00"))
    prompts = by_kind(plan(schedule, calendar), "study_prompt")
    assert [(o.targets, o.occurrence) for o in prompts] == [
        (("b1_secretary",), "jsjy-2026-05@prompt:b1"), (("b2_secretary",), "jsjy-2026-05@prompt:b2"),
        (("b3_secretary",), "jsjy-2026-05@prompt:b3")]
    first = prompts[0]
    assert first.due_at == at("2026-05-11 09:00") and first.rule == "study" and first.item == "jsjy-2026-05"
    assert first.template == "study_prompt" and not first.provisional
    assert first.meta["branch"] == "b1"
    assert first.meta["button_key"] == "confirm:jsjy-2026-05"  # the card's parts come from the template
    assert first.context["secretary"] == {"name": "张伟", "userid": "zhangwei"}
    assert first.context["item"]["deadline"] == "2026-05-22T18:00:00+08:00"


def test_prompt_contexts_render_with_the_shipped_templates(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = schedule_of(tmp_path, item_yaml("jsjy-2026-05", "2026-05-11 09:00", "2026-05-22 18:00"))
    library = TemplateLibrary(ROOT / "messages")
    for occurrence in plan(schedule, calendar):
        text = library.render(occurrence.template, occurrence.context).text
        assert "《警示教育通报》2026年第5期" in text
    overdue = by_kind(plan(schedule, calendar), "study_overdue")[0]
    assert "第一党支部（书记：张伟）" in library.render("study_overdue", overdue.context).text


def test_publish_on_national_day_moves_to_the_next_working_day(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = schedule_of(tmp_path, item_yaml("x", "2026-10-03 09:00", "2026-10-16 18:00"))
    prompt = by_kind(plan(schedule, calendar), "study_prompt")[0]
    assert prompt.due_at == at("2026-10-08 09:00")  # 10-01..10-07 off; 10-08 a Thursday
    assert "顺延至下一个工作日 10月8日（周四）" in prompt.reason and "10月3日（周六）" in prompt.reason
    assert prompt.context["item"]["publish_at"] == "2026-10-08T09:00:00+08:00"


def test_publish_on_an_adjusted_saturday_is_not_moved(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = schedule_of(tmp_path, item_yaml("x", "2026-02-14 09:00", "2026-02-27 18:00"))
    assert by_kind(plan(schedule, calendar), "study_prompt")[0].due_at == at("2026-02-14 09:00")


def test_nudges_count_working_days_across_a_holiday(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = schedule_of(tmp_path, item_yaml("x", "2026-09-21 09:00", "2026-10-09 18:00"))
    nudges = [o for o in by_kind(plan(schedule, calendar), "study_nudge") if o.meta["branch"] == "b1"]
    # two working days before Fri 10-09: Thu 10-08, then (10-01..07 off) Wed 09-30
    assert [o.due_at for o in nudges] == [at("2026-09-30 09:00"), at("2026-10-09 09:00")]
    assert nudges[0].targets == ("b1_secretary",) and nudges[0].template == "study_nudge"


def test_a_nudge_on_a_day_off_moves_to_the_previous_working_day(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = schedule_of(tmp_path, item_yaml("x", "2026-09-21 09:00", "2026-10-09 18:00",
                                               nudges='["截止前3天 15:00"]'))
    nudge = [o for o in by_kind(plan(schedule, calendar), "study_nudge") if o.meta["branch"] == "b1"][0]
    assert nudge.due_at == at("2026-09-30 15:00")  # 10-06 is 国庆 → Wed 09-30
    assert "提前至前一个工作日 9月30日（周三）" in nudge.reason


def test_nudges_skip_confirmed_branches(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = schedule_of(tmp_path, item_yaml("x", "2026-05-11 09:00", "2026-05-22 18:00"))
    nudges = by_kind(plan(schedule, calendar, confirmed={("x", "b1"), ("other", "b2")}), "study_nudge")
    assert {o.meta["branch"] for o in nudges} == {"b2", "b3"}
    assert len(nudges) == 4


def test_nudges_after_the_deadline_are_dropped(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = schedule_of(tmp_path, item_yaml("x", "2026-05-11 09:00", "2026-05-22 08:30"))
    nudges = by_kind(plan(schedule, calendar), "study_nudge")
    assert {o.due_at for o in nudges} == {at("2026-05-20 09:00")}  # 截止当天 09:00 is after 08:30


def test_overdue_lists_the_missing_branches(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = schedule_of(tmp_path, item_yaml("x", "2026-05-11 09:00", "2026-05-22 18:00"))
    overdue = by_kind(plan(schedule, calendar, confirmed={("x", "b1"), ("x", "b3")}), "study_overdue")
    assert len(overdue) == 1
    assert overdue[0].due_at == at("2026-05-22 18:00") and overdue[0].targets == ("office",)
    assert overdue[0].context["missing"] == [{"name": "第二党支部", "secretary": "李娜"}]
    assert (overdue[0].context["total"], overdue[0].context["confirmed_count"]) == (3, 2)


def test_no_admin_target_means_no_overdue_notice(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = schedule_of(tmp_path, item_yaml("x", "2026-05-11 09:00", "2026-05-22 18:00"))
    settings = demo_settings(admins={"target": None})
    assert by_kind(plan(schedule, calendar, settings), "study_overdue") == []


def test_audience_and_group_notice(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = schedule_of(tmp_path, item_yaml("x", "2026-05-11 09:00", "2026-05-22 18:00", audience="[b2]"))
    settings = demo_settings(studies={"group_notice": True})
    prompts = by_kind(plan(schedule, calendar, settings), "study_prompt")
    assert {(o.targets, "button_key" in o.meta) for o in prompts} == {(("b2_secretary",), True), (("b2_group",), False)}


def test_window_selects_by_beijing_day(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = schedule_of(tmp_path, item_yaml("x", "2026-05-11 09:00", "2026-05-22 18:00"))
    only_the_20th = plan(schedule, calendar, start=date(2026, 5, 20), end=date(2026, 5, 20))
    assert {o.kind for o in only_the_20th} == {"study_nudge"} and len(only_the_20th) == 3


def test_items_without_holiday_data_are_provisional(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = schedule_of(tmp_path, item_yaml("x", "2027-05-11 09:00", "2027-05-21 18:00"))
    assert {o.provisional for o in plan(schedule, calendar)} == {True}


def test_the_overdue_report_of_a_hundred_branches_fits_one_message() -> None:
    """A hundred unconfirmed branches once rendered 4,239 bytes: WeCom refuses markdown over 4,096."""
    library = TemplateLibrary(ROOT / "messages")
    missing = [{"name": f"第{n}党支部", "secretary": f"书记{n}"} for n in range(1, 101)]
    context = {"item": {"title": "《警示教育通报》2026年第1期", "deadline": "2026-01-23T18:00:00+08:00"},
               "missing": missing, "total": 100, "confirmed_count": 0}
    text = library.render("study_overdue", context).text
    assert len(text.encode("utf-8")) <= 4096
    assert "第40党支部（书记：书记40）" in text and "第41党支部" not in text
    assert "另有 60 个支部" in text
