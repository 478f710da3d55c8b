"""Importing the State Council's real notices 2019–2026, as different sites reprint them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from bot.calendars.holiday_file import HolidayNotice
from bot.calendars.notice_checks import NoticeRefused
from bot.calendars.notice_import import import_notice
from bot.calendars.notice_parse import parse_notice
from bot.calendars.notice_text import plain_text
from bot.inputs import read_notice

ROOT = Path(__file__).resolve().parents[2]
NOTICES = ROOT / "tests" / "fixtures" / "notices"
BUNDLED = ROOT / "schedules" / "holidays"

# one reprint per year, each in another form (see the README of the fixtures)
REPRINTS = {
    2019: "2019_govcn_page.txt", 2020: "2020_news_dateline.txt", 2021: "2021_fullwidth.txt",
    2022: "2022_halfwidth.txt", 2023: "2023_traditional.txt", 2024: "2024_with_header.txt",
    2025: "2025_page.html", 2026: "2026_news_site.txt",
}
AMENDMENTS = {2019: "2019_labour_amendment.txt", 2020: "2020_spring_extension.txt"}


def read(name: str) -> str:
    return (NOTICES / name).read_text(encoding="utf-8")


def bundled(year: int) -> str:
    return (BUNDLED / f"{year}.yaml").read_text(encoding="utf-8")


def imported(year: int, existing: dict[int, HolidayNotice] | None = None) -> str:
    """The year file after importing its notice and then its amendments, as an office would."""
    existing = dict(existing or {})
    result = import_notice(read(REPRINTS[year]), existing)
    if year in AMENDMENTS:
        existing[year] = result.notice
        result = import_notice(read(AMENDMENTS[year]), existing)
    return result.yaml


@pytest.mark.parametrize("year", sorted(REPRINTS), ids=[REPRINTS[y] for y in sorted(REPRINTS)])
def test_importing_each_year_reproduces_the_bundled_file_exactly(year: int) -> None:
    assert imported(year) == bundled(year)


def test_importing_next_to_the_neighbouring_years_also_reproduces_them() -> None:
    """元旦 blocks reach into December: the checks across years find no overlap in the real data."""
    existing = {y: read_notice(BUNDLED / f"{y}.yaml") for y in REPRINTS if y != 2024}
    assert imported(2024, existing) == bundled(2024)


def test_a_forum_paste_with_half_width_punctuation_and_blank_lines_reads_the_same() -> None:
    assert import_notice(read("2026_forum_halfwidth.txt"), {}).yaml == bundled(2026)


def test_the_output_is_valid_yaml_that_reads_back_to_the_same_notice(tmp_path: Path) -> None:
    path = tmp_path / "2026.yaml"
    path.write_text(import_notice(read("2026_news_site.txt"), {}).yaml, encoding="utf-8")
    assert read_notice(path).periods == read_notice(BUNDLED / "2026.yaml").periods
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["year"] == 2026


def test_the_original_2020_notice_before_its_extension() -> None:
    notice = import_notice(read("2020_news_dateline.txt"), {}).notice
    spring = notice.periods[1]
    assert (spring.first_day, spring.last_day) == (date(2020, 1, 24), date(2020, 1, 30))
    assert spring.workdays == (date(2020, 1, 19), date(2020, 2, 1))
    assert notice.amendments == ()


def test_the_extension_records_the_amendment_and_cancels_the_saturday_worked() -> None:
    original = import_notice(read("2020_news_dateline.txt"), {}).notice
    result = import_notice(read("2020_spring_extension.txt"), {2020: original})
    assert result.amendment is not None and result.amendment.published == date(2020, 1, 26)
    assert result.amendment.summary == "春节假期延长至2月2日（农历正月初九，星期日）；2月1日（星期六）不再调休上班"
    assert result.notice.periods[1].workdays == (date(2020, 1, 19),)
    assert result.previous == original


def test_importing_an_amendment_twice_records_it_once() -> None:
    original = import_notice(read("2019_govcn_page.txt"), {}).notice
    once = import_notice(read("2019_labour_amendment.txt"), {2019: original}).notice
    twice = import_notice(read("2019_labour_amendment.txt"), {2019: once}).notice
    assert twice.amendments == once.amendments and len(once.amendments) == 1


def test_an_amendment_without_the_year_on_file_is_refused() -> None:
    with pytest.raises(NoticeRefused, match="尚无 2019 年的节假日安排"):
        import_notice(read("2019_labour_amendment.txt"), {})


def test_the_original_notice_does_not_silently_drop_recorded_amendments() -> None:
    amended = read_notice(BUNDLED / "2020.yaml")
    with pytest.raises(NoticeRefused, match="已记录了1份调整通知"):
        import_notice(read("2020_news_dateline.txt"), {2020: amended})


def test_the_published_date_is_the_signature_unless_the_page_states_its_release() -> None:
    """The 2019 notice is signed 12月4日 and was made public on 12月6日 (the page says both)."""
    text = read("2019_govcn_page.txt")
    assert parse_notice(plain_text(text)).published == date(2018, 12, 6)  # type: ignore[union-attr]
    body = text[text.index("国务院办公厅关于2019年"):]
    assert parse_notice(plain_text(body)).published == date(2018, 12, 4)  # type: ignore[union-attr]
    assert import_notice(body, {}, published=date(2018, 12, 6)).notice.published == date(2018, 12, 6)


def test_a_news_article_that_is_not_the_notice_is_refused_with_the_reason() -> None:
    with pytest.raises(NoticeRefused, match="不含通知正文") as refused:
        import_notice(read("not_a_notice_article.txt"), {})
    assert "新闻报道" in str(refused.value)


def test_a_notice_cut_off_halfway_names_what_is_missing() -> None:
    with pytest.raises(NoticeRefused) as refused:
        import_notice(read("2026_cut_off.txt"), {})
    message = str(refused.value)
    assert "“劳动节”一项不完整" in message
    assert "缺少劳动节、端午节、中秋节、国庆节" in message
    assert "未见落款日期" in message


def test_text_about_something_else_is_refused() -> None:
    with pytest.raises(NoticeRefused, match="不是节假日安排通知"):
        import_notice("关于召开2026年度民主生活会的通知\n请各支部于12月10日前报送材料。", {})


def _edited(old: str, new: str) -> str:
    text = read("2026_news_site.txt")
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("至23日（农历正月初七、周一）放假调休，共9天", "至23日（农历正月初七、周一）放假调休，共8天",
     "“春节”写明共8天，但2月15日（周日）至2月23日（周一）是9天"),
    ("二、春节：2月15日（农历腊月二十八、周日）", "二、春节：2月17日（农历正月初一、周二）",
     "春节的法定假日2月16日（周一）不在“春节”的放假期间内"),
    ("5月9日（周六）上班", "5月8日（周五）上班", "调休上班日 2026-05-08 是周五"),
    ("1月4日（周日）上班", "1月3日（周六）上班", "调休上班日 2026-01-03 位于本放假期间"),
    ("1月4日（周日）上班", "1月4日（周一）上班", "2026-01-04 实为周日"),
    ("六、中秋节：9月25日（周五）至27日（周日）放假，共3天", "六、中秋节：9月25日（周五）至10月2日（周五）放假，共8天",
     "“国庆节”放假期间（2026-10-01 至 2026-10-07）与 2026 年“中秋节”放假期间.*重叠"),
    ("三、清明节：4月4日（周六）至6日（周一）放假，共3天。", "", "缺少清明节的放假安排"),
], ids=["count", "statutory-day", "weekday-workday", "workday-inside", "weekday-label", "overlap",
        "missing-holiday"])
def test_an_inconsistent_arrangement_is_refused_naming_the_problem(old: str, new: str, reason: str) -> None:
    with pytest.raises(NoticeRefused, match=reason):
        import_notice(_edited(old, new), {})


def test_html_pages_lose_their_scripts_and_styles() -> None:
    text = plain_text(read("2025_page.html"))
    assert "pageId" not in text and "text-indent" not in text
    assert "国务院办公厅关于2025年部分节假日安排的通知" in text


def test_a_paste_cut_inside_the_last_working_days_is_refused() -> None:
    text = read("2026_news_site.txt")
    with pytest.raises(NoticeRefused) as refused:
        import_notice(text[: text.index("9月20日（周日）、10月") + len("9月20日（周日）、10月")], {})
    assert "“国庆节”一项有无法识别的内容（可能不完整）" in str(refused.value)
    assert "未见落款日期" in str(refused.value)
