from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import pytest
from chinese_calendar.constants import Holiday

from bot.calendars.holiday_file import HolidayPeriod, notice_span
from bot.calendars.holidays import HolidayCalendar, days_between
from bot.calendars.lunar import festival_date
from bot.calendars.statutory import statutory_days_off
from bot.errors import MissingHolidayData, ScheduleError
from bot.inputs import load_holidays

HOLIDAYS_DIR = Path(__file__).resolve().parents[2] / "schedules" / "holidays"
SHIPPED_YEARS = list(range(2019, 2027))
D = date.fromisoformat


@pytest.fixture(scope="module")
def calendar() -> HolidayCalendar:
    return load_holidays(HOLIDAYS_DIR)


# The bundled files against chinese_calendar.

def test_shipped_years_are_2019_to_2026(calendar: HolidayCalendar) -> None:
    assert calendar.years == frozenset(SHIPPED_YEARS)
    assert not (HOLIDAYS_DIR / "2027.yaml").exists()


@pytest.mark.parametrize("year", SHIPPED_YEARS, ids=str)
def test_every_day_matches_chinese_calendar(calendar: HolidayCalendar, year: int) -> None:
    wrong = [day for day in days_between(*notice_span(year))
             if calendar.is_workday(day) != chinese_calendar.is_workday(day)]
    assert wrong == []


CC_NAMES = {
    "new_year": Holiday.new_years_day.value, "spring_festival": Holiday.spring_festival.value,
    "tomb_sweeping": Holiday.tomb_sweeping_day.value, "labour_day": Holiday.labour_day.value,
    "dragon_boat": Holiday.dragon_boat_festival.value, "mid_autumn": Holiday.mid_autumn_festival.value,
    "national_day": Holiday.national_day.value,
}


@pytest.mark.parametrize("year", SHIPPED_YEARS, ids=str)
def test_days_belong_to_the_same_festival_as_chinese_calendar(calendar: HolidayCalendar, year: int) -> None:
    for period in calendar.periods(year):
        expected = {CC_NAMES[f] for f in period.festivals}
        for day in [*days_between(period.first_day, period.last_day), *period.workdays]:
            name = chinese_calendar.get_holiday_detail(day)[1]
            assert name is None or name in expected, (period.key, day, name)


LUNAR_OF = {"spring_festival": "春节", "dragon_boat": "端午", "mid_autumn": "中秋"}


@pytest.mark.parametrize("year", SHIPPED_YEARS, ids=str)
def test_lunar_festival_lies_in_its_block(calendar: HolidayCalendar, year: int) -> None:
    for period in calendar.periods(year):
        for festival in set(period.festivals) & set(LUNAR_OF):
            assert period.contains(festival_date(LUNAR_OF[festival], year)), period.key


# Days off and working days.

DAY_OFF = [
    ("2024-02-09", False, "2024-chuxi-worked"),
    ("2025-01-28", True, "2025-chuxi-off"),
    ("2026-02-16", True, "2026-chuxi-off"),
    ("2026-02-14", False, "2026-02-14-saturday-worked"),
    ("2019-05-04", True, "2019-05-04-amended-labour-day"),
    ("2019-05-05", False, "2019-05-05-sunday-worked-amended"),
    ("2019-04-28", False, "2019-04-28-sunday-worked-amended"),
    ("2020-02-01", True, "2020-02-01-saturday-workday-cancelled"),
    ("2020-02-02", True, "2020-02-02-spring-festival-extended"),
    ("2018-12-29", False, "2018-12-29-saturday-worked-for-2019-new-year"),
    ("2018-12-31", True, "2018-12-31-in-2019-new-year-block"),
    ("2026-09-20", False, "2026-09-20-sunday-worked-for-national-day"),
    ("2027-01-08", False, "2027-01-08-friday-without-data"),
    ("2027-01-09", True, "2027-01-09-saturday-without-data"),
    ("2027-01-01", True, "2027-01-01-friday-new-year-by-law-without-data"),
    ("2027-02-05", True, "2027-02-05-friday-chuxi-by-law-without-data"),
    ("2027-02-08", True, "2027-02-08-monday-third-day-of-spring-festival-by-law"),
    ("2027-04-05", True, "2027-04-05-monday-qingming-solar-term-by-law"),
    ("2027-05-03", False, "2027-05-03-monday-bridge-unknown-without-data"),
    ("2027-10-01", True, "2027-10-01-friday-national-day-by-law"),
]


@pytest.mark.parametrize(("day", "off"), [c[:2] for c in DAY_OFF], ids=[c[2] for c in DAY_OFF])
def test_is_day_off(calendar: HolidayCalendar, day: str, off: bool) -> None:
    assert calendar.is_day_off(D(day)) is off
    assert calendar.is_workday(D(day)) is not off


WALKS = [
    ("before", "2026-02-15", 1, "2026-02-14", "2026-02-14-saturday-before-spring-festival"),
    ("before", "2024-02-10", 1, "2024-02-09", "2024-02-09-chuxi-before-spring-festival"),
    ("before", "2024-02-10", 6, "2024-02-04", "2024-02-04-sunday-sixth-before"),
    ("before", "2019-04-29", 1, "2019-04-28", "2019-04-28-adjusted-sunday"),
    ("before", "2020-02-03", 1, "2020-01-23", "2020-01-23-before-extended-spring-festival"),
    ("before", "2024-01-02", 1, "2023-12-29", "2023-12-29-before-new-year-block"),
    ("before", "2027-01-04", 1, "2026-12-31", "2026-12-31-new-year-2027-off-by-law-without-data"),
    ("after", "2024-02-17", 1, "2024-02-18", "2024-02-18-adjusted-sunday"),
    ("after", "2026-01-01", 1, "2026-01-04", "2026-01-04-adjusted-sunday"),
    ("after", "2023-10-01", 2, "2023-10-08", "2023-10-08-second-after-combined-block"),
    ("after", "2023-10-01", 3, "2023-10-09", "2023-10-09-third-after-combined-block"),
    ("after", "2020-01-24", 1, "2020-02-03", "2020-02-03-after-extended-spring-festival"),
    ("after", "2026-12-31", 1, "2027-01-04", "2027-01-04-monday-after-new-year-by-law"),
    ("after", "2027-02-04", 1, "2027-02-09", "2027-02-09-after-spring-festival-by-law"),
]


@pytest.mark.parametrize(("direction", "day", "n", "expected"), [w[:4] for w in WALKS],
                         ids=[w[4] for w in WALKS])
def test_workday_before_and_after(calendar: HolidayCalendar, direction: str, day: str, n: int,
                                  expected: str) -> None:
    walk = calendar.workday_before if direction == "before" else calendar.workday_after
    assert walk(D(day), n) == D(expected)


ON_OR = [
    ("after", "2025-10-05", "2025-10-09", "2025-10-05-in-block"),
    ("after", "2025-10-11", "2025-10-11", "2025-10-11-adjusted-saturday-itself"),
    ("before", "2025-10-05", "2025-09-30", "2025-10-05-in-block"),
    ("before", "2025-09-28", "2025-09-28", "2025-09-28-adjusted-sunday-itself"),
]


@pytest.mark.parametrize(("direction", "day", "expected"), [w[:3] for w in ON_OR], ids=[w[3] for w in ON_OR])
def test_workday_on_or(calendar: HolidayCalendar, direction: str, day: str, expected: str) -> None:
    walk = calendar.workday_on_or_before if direction == "before" else calendar.workday_on_or_after
    assert walk(D(day)) == D(expected)


def test_n_must_be_positive(calendar: HolidayCalendar) -> None:
    with pytest.raises(ValueError):
        calendar.workday_before(D("2026-02-15"), 0)


# Periods.

def test_2024_mid_autumn_block_begins_two_days_before_the_festival(calendar: HolidayCalendar) -> None:
    festival = festival_date("中秋", 2024)
    period = calendar.period_of(festival)
    assert period is not None and period.first_day == festival - timedelta(days=2) == D("2024-09-15")


COMBINED = [
    (2020, "国庆节、中秋节", "2020-10-01", "2020-10-08", ("2020-09-27", "2020-10-10")),
    (2023, "中秋节、国庆节", "2023-09-29", "2023-10-06", ("2023-10-07", "2023-10-08")),
    (2025, "国庆节、中秋节", "2025-10-01", "2025-10-08", ("2025-09-28", "2025-10-11")),
]


@pytest.mark.parametrize(("year", "name", "first", "last", "workdays"), COMBINED,
                         ids=["2020-10-01", "2023-09-29", "2025-10-01"])
def test_combined_mid_autumn_and_national_day(calendar: HolidayCalendar, year: int, name: str, first: str,
                                              last: str, workdays: tuple[str, ...]) -> None:
    period = calendar.period_of(D(first))
    assert period is not None
    assert (period.name, period.first_day, period.last_day) == (name, D(first), D(last))
    assert period.workdays == tuple(map(D, workdays))
    assert period.key == f"{year}-mid_autumn+national_day"
    assert period.days == 8


def test_2026_mid_autumn_and_national_day_are_separate_and_ordered(calendar: HolidayCalendar) -> None:
    autumn = calendar.periods_between(D("2026-09-01"), D("2026-10-31"))
    assert [p.key for p in autumn] == ["2026-mid_autumn", "2026-national_day"]
    assert autumn[1].workdays[0] == D("2026-09-20") < autumn[0].first_day


NEW_YEAR_ACROSS = [
    (2019, "2018-12-30", "2019-01-01", ("2018-12-29",)),
    (2023, "2022-12-31", "2023-01-02", ()),
    (2024, "2023-12-30", "2024-01-01", ()),
]


@pytest.mark.parametrize(("year", "first", "last", "workdays"), NEW_YEAR_ACROSS,
                         ids=["2018-12-30", "2022-12-31", "2023-12-30"])
def test_new_year_block_across_the_year_end(calendar: HolidayCalendar, year: int, first: str, last: str,
                                            workdays: tuple[str, ...]) -> None:
    period = calendar.periods(year)[0]
    assert (period.key, period.first_day, period.last_day) == (f"{year}-new_year", D(first), D(last))
    assert period.workdays == tuple(map(D, workdays))
    assert calendar.period_of(D(first)) == period
    assert calendar.covers(D(first))


@pytest.mark.parametrize("day", ["2020-01-01", "2023-04-05", "2025-01-01"], ids=str)
def test_block_of_one_day(calendar: HolidayCalendar, day: str) -> None:
    period = calendar.period_of(D(day))
    assert period is not None and period.days == 1
    assert calendar.workday_before(D(day)) == D(day) - timedelta(days=1)
    assert calendar.workday_after(D(day)) == D(day) + timedelta(days=1)


def test_2019_labour_day_is_the_amended_state(calendar: HolidayCalendar) -> None:
    period = calendar.period_of(D("2019-05-01"))
    assert period is not None and (period.last_day, period.days) == (D("2019-05-04"), 4)
    assert period.workdays == (D("2019-04-28"), D("2019-05-05"))
    amendment = calendar.notice(2019)["amendments"][0]
    assert amendment["published"] == D("2019-03-22") and "劳动节" in amendment["title"]


def test_2020_spring_festival_is_the_amended_state(calendar: HolidayCalendar) -> None:
    period = calendar.period_of(D("2020-01-25"))
    assert period is not None and (period.last_day, period.days) == (D("2020-02-02"), 10)
    assert period.workdays == (D("2020-01-19"),)
    assert calendar.notice(2020)["amendments"][0]["published"] == D("2020-01-26")


def test_periods_are_ordered_and_carry_their_notice(calendar: HolidayCalendar) -> None:
    periods = calendar.periods()
    assert [p.first_day for p in periods] == sorted(p.first_day for p in periods)
    spring = calendar.periods(2026)[1]
    assert (spring.key, spring.days) == ("2026-spring_festival", 9)
    assert spring.notice_title == "国务院办公厅关于2026年部分节假日安排的通知"
    assert calendar.notice(2026)["published"] == D("2025-11-04")


def test_adjusted_working_day_belongs_to_no_block(calendar: HolidayCalendar) -> None:
    assert calendar.period_of(D("2026-02-14")) is None


# Years without a notice.

MISSING = [
    ("2026-11-01", "2027-02-28", [2027], "2026-11-01-to-2027-02-28"),
    ("2026-01-01", "2026-12-31", [], "2026-whole-year"),
    ("2025-06-01", "2028-01-01", [2027, 2028], "2025-06-01-to-2028-01-01"),
]


@pytest.mark.parametrize(("start", "end", "expected"), [m[:3] for m in MISSING], ids=[m[3] for m in MISSING])
def test_missing_years(calendar: HolidayCalendar, start: str, end: str, expected: list[int]) -> None:
    assert calendar.missing_years(D(start), D(end)) == expected


COVERS = [
    ("2027-01-01", False), ("2027-02-05", False), ("2026-12-31", True), ("2026-01-01", True),
    ("2018-12-29", True), ("2018-12-28", False),
]


@pytest.mark.parametrize(("day", "covered"), COVERS, ids=[c[0] for c in COVERS])
def test_covers(calendar: HolidayCalendar, day: str, covered: bool) -> None:
    assert calendar.covers(D(day)) is covered


def test_notice_of_a_year_without_data(calendar: HolidayCalendar) -> None:
    with pytest.raises(MissingHolidayData, match="2027"):
        calendar.notice(2027)


# Validation of an administrator's file.

VALID = """\
year: 2030
notice:
  title: 国务院办公厅关于2030年部分节假日安排的通知
  published: 2029-11-01
amendments: []
holidays:
  - name: 元旦
    festivals: [new_year]
    first_day: 2029-12-30
    last_day: 2030-01-01
    workdays: [2029-12-29]
  - name: 春节
    festivals: [spring_festival]
    first_day: 2030-02-02
    last_day: 2030-02-08
    workdays: [2030-01-26, 2030-02-09]
"""

EXTRA_BLOCK = """\
  - name: {name}
    festivals: [{festival}]
    first_day: {first}
    last_day: {last}
    workdays: []
"""

# (id, old text, new text, line, words of the problem, words of the fix)
BAD = [
    ("unknown-key", "    workdays: [2029-12-29]\n", "    workdays: [2029-12-29]\n    note: 与周末连休\n",
     12, "未知的键 note", "删除该键"),
    ("missing-key", "    last_day: 2030-01-01\n", "", 7, "缺少键 last_day", "添加 last_day"),
    ("impossible-date", "2030-02-08", "2030-02-30", 15, "“2030-02-30”不是有效的日期", "YYYY-MM-DD"),
    ("unpadded-date", "2030-02-08", "2030-2-8", 15, "“2030-2-8”不是有效的日期", "YYYY-MM-DD"),
    ("quoted-impossible-date", "2030-02-08", '"2030-02-30"', 15, "不是有效的日期", "YYYY-MM-DD"),
    ("last-before-first", "last_day: 2030-02-08", "last_day: 2030-02-01", 15, "早于开始日期", "起止日期"),
    ("workday-on-monday", "2030-01-26,", "2030-01-28,", 16, "是周一，不是周六或周日", "只能是周六或周日"),
    ("workday-inside-block", "2030-01-26,", "2030-02-03,", 16, "位于本放假期间", "删除该日期"),
    ("overlapping-blocks", "", EXTRA_BLOCK.format(name="清明节", festival="tomb_sweeping", first="2030-02-08",
                                                  last="2030-02-08"), 19, "重叠", "不能重叠"),
    ("date-outside-notice-year", "first_day: 2029-12-30", "first_day: 2029-11-30", 9,
     "不在 2030 年或 2029 年 12 月之内", "2029-12-01 至 2030-12-31"),
    ("unknown-festival", "[new_year]", "[new_years]", 8, "未知的节日标识 new_years", "new_year（元旦）"),
    ("festival-twice", "", EXTRA_BLOCK.format(name="春节", festival="spring_festival", first="2030-03-02",
                                              last="2030-03-02"), 18,
     "spring_festival（春节）在本年度通知中出现两次", "只属于一个放假期间"),
    ("amendment-without-summary", "amendments: []\n",
     "amendments:\n  - published: 2030-01-20\n    title: 国务院办公厅关于调整2030年春节假期安排的通知\n",
     6, "缺少键 summary", "添加 summary"),
    ("no-holidays", VALID[VALID.index("holidays:"):], "holidays: []\n", 6, "未列出任何放假安排", "README"),
]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_loads(tmp_path: Path) -> None:
    calendar = load_holidays(write(tmp_path, "2030.yaml", VALID).parent)
    assert [p.key for p in calendar.periods()] == ["2030-new_year", "2030-spring_festival"]
    assert calendar.is_workday(D("2029-12-29"))


@pytest.mark.parametrize(("old", "new", "line", "problem", "fix"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_file_names_file_line_and_fix(tmp_path: Path, old: str, new: str, line: int, problem: str,
                                          fix: str) -> None:
    text = VALID + new if old == "" else VALID.replace(old, new, 1)
    assert text != VALID
    path = write(tmp_path, "2030.yaml", text)
    with pytest.raises(ScheduleError) as caught:
        load_holidays(tmp_path)
    assert_placed(caught.value, path, line, problem, fix)


def assert_placed(error: ScheduleError, path: Path, line: int, problem: str, fix: str) -> None:
    message = str(error)
    assert (error.file, error.line) == (str(path), line), message
    assert f"文件 {path} 第 {line} 行" in message
    assert problem in message and fix in (error.fix or "") and "处理办法" in message


def test_file_name_must_match_year(tmp_path: Path) -> None:
    path = write(tmp_path, "2031.yaml", VALID)
    with pytest.raises(ScheduleError) as caught:
        load_holidays(tmp_path)
    assert_placed(caught.value, path, 1, "与 year: 2030 不一致", "改名为 2030.yaml")


DECEMBER_BLOCK = EXTRA_BLOCK.format(name="国庆节", festival="national_day", first="2030-12-28",
                                    last="2030-12-29")
NEXT_YEAR = """\
year: 2031
notice:
  title: 国务院办公厅关于2031年部分节假日安排的通知
  published: 2030-11-01
holidays:
  - name: 元旦
    festivals: [new_year]
    first_day: {first}
    last_day: 2031-01-01
    workdays: [{workday}]
"""
ACROSS_FILES = [
    ("block-overlaps-other-file", "2030-12-21", "2030-12-14", 8, "与 2030 年“国庆节”放假期间"),
    ("workday-in-other-files-block", "2031-01-01", "2030-12-28", 10, "位于 2030 年“国庆节”放假期间"),
]


@pytest.mark.parametrize(("first", "workday", "line", "problem"), [a[1:] for a in ACROSS_FILES],
                         ids=[a[0] for a in ACROSS_FILES])
def test_conflicts_across_files(tmp_path: Path, first: str, workday: str, line: int, problem: str) -> None:
    write(tmp_path, "2030.yaml", VALID + DECEMBER_BLOCK)
    path = write(tmp_path, "2031.yaml", NEXT_YEAR.format(first=first, workday=workday))
    with pytest.raises(ScheduleError) as caught:
        load_holidays(tmp_path)
    assert_placed(caught.value, path, line, problem, "")


def test_period_checks_its_invariants_when_built_in_code() -> None:
    with pytest.raises(ScheduleError, match="不是周六或周日"):
        HolidayPeriod("春节", ("spring_festival",), 2030, D("2030-02-02"), D("2030-02-08"),
                      (D("2030-02-11"),), "通知")


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_laws_days_off_lie_inside_every_published_notice(calendar: HolidayCalendar, year: int) -> None:
    """The days used before a notice appears are days off in each notice under the 2025 law."""
    days = statutory_days_off(year)
    assert len(days) == 13  # 元旦1 春节4 清明1 劳动2 端午1 中秋1 国庆3
    assert [d for d in sorted(days) if not calendar.is_day_off(d) or not calendar.covers(d)] == []
