from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import TemplateError
from bot.templates.render import (
    TemplateLibrary,
    cn_date,
    cn_date_full,
    cn_dates,
    cn_datetime,
    cn_ymd,
    validate_template,
)
from bot.templates.samples import sample_context
from bot.templates.syntax import chinese_syntax_error

ROOT = Path(__file__).resolve().parents[2]
HEAD = "---\ntitle: 测试\nmsgtype: text\ndescription: 测试\n---\n"


@pytest.fixture
def library() -> TemplateLibrary:
    return TemplateLibrary(ROOT / "messages")


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-02-14", "2月14日（周六）"),
    ("2026-02-16", "2月16日（周一）"),
    ("2026-10-01T09:00:00+08:00", "10月1日（周四）"),
], ids=["2026-02-14-adjusted-saturday", "2026-02-16-chuxi", "2026-10-01-guoqing"])
def test_chinese_date_filter(value: str, expected: str) -> None:
    assert cn_date(value) == expected


def test_other_date_filters() -> None:
    assert cn_date_full("2026-02-14") == "2026年2月14日（周六）"
    assert cn_ymd("2026-02-14") == "2026年2月14日"
    assert cn_datetime("2026-03-06T14:30:00+08:00") == "3月6日（周五）14:30"
    assert cn_dates(["2026-02-14", "2026-02-28"]) == "2月14日（周六）、2月28日（周六）"


def test_every_shipped_template_is_valid(library: TemplateLibrary) -> None:
    for name in library.names():
        problems = validate_template(library, name, library.source(name).text, sample_context(name))
        assert problems == [], (name, problems)


def test_pre_holiday_notice_states_the_dates(library: TemplateLibrary) -> None:
    text = library.render("holiday_integrity", sample_context("holiday_integrity")).text
    assert "春节廉洁过节提醒" in text
    assert "2月15日（周日）至2月23日（周一）放假，共9天" in text
    assert "2月14日（周六）、2月28日（周六）上班" in text
    assert "中央八项规定" in text


def test_syntax_error_names_the_file_line(library: TemplateLibrary) -> None:
    text = HEAD + "第一行\n{% if holiday.days %}\n没有结束\n"
    problems = validate_template(library, "holiday_integrity", text, sample_context("holiday_integrity"))
    assert len(problems) == 1
    assert problems[0].line is not None and problems[0].line >= 7
    assert "语法错误" in problems[0].message and "处理办法" in problems[0].message


@pytest.mark.parametrize(("body", "says"), [
    ("{{ holiday.name ", "模板意外结束，缺少 “}}”"),
    ("{{ holiday.name }", "此处不应出现 “}”"),
    ("{% if holiday.days %}没有结束", "{% if %} 块没有结束，缺少 {% elif %} 或 {% else %} 或 {% endif %}"),
    ("{% if holiday.days %}x{% endfor %}", "无法识别的标签 {% endfor %}：此处应为 {% elif %} 或 {% else %} 或 {% endif %}"),
    ("{% fro x in holiday.work_days %}{% endfor %}", "无法识别的标签 {% fro %}"),
    ("{{ holiday.name holiday.days }}", "此处应为 “}}”，实际是 “holiday”"),
    ("{{ holiday.start | cn_dat }}", "没有名为 cn_dat 的过滤器"),
    ("{{ '廉洁过节 }}", "无法识别的字符 “'”（字符串的引号是否成对？）"),
    ("{# 注释", "注释 {# 缺少结尾的 #}"),
    ("{{ }}", "此处缺少变量或表达式（遇到 “}}”）"),
], ids=["unclosed-print", "half-closed", "unclosed-if", "wrong-end-tag", "unknown-tag", "two-expressions",
        "unknown-filter", "unclosed-string", "unclosed-comment", "empty-print"])
def test_syntax_errors_are_explained_in_chinese(library: TemplateLibrary, body: str, says: str) -> None:
    problems = validate_template(library, "holiday_integrity", HEAD + body + "\n", sample_context("holiday_integrity"))
    assert len(problems) == 1
    assert says in problems[0].message
    assert "Jinja" not in problems[0].message and "expected" not in problems[0].message


def test_an_unrecognised_jinja_error_keeps_jinja_words_behind_a_chinese_lead() -> None:
    assert chinese_syntax_error("something new") == "无法解析的写法（Jinja 的提示：something new）"


def test_unknown_variable_is_named_with_the_known_ones(library: TemplateLibrary) -> None:
    problems = validate_template(library, "holiday_integrity", HEAD + "{{ holday.name }}\n",
                                 sample_context("holiday_integrity"))
    assert "holday" in problems[0].message and "holiday" in problems[0].message


def test_unknown_attribute_is_refused(library: TemplateLibrary) -> None:
    problems = validate_template(library, "holiday_integrity", HEAD + "{{ holiday.nmae }}\n",
                                 sample_context("holiday_integrity"))
    assert "nmae" in problems[0].message


def test_size_limit_counts_utf8_bytes(library: TemplateLibrary) -> None:
    fits = HEAD + "汉" * 682 + "\n"        # 2046 bytes
    too_long = HEAD + "汉" * 683 + "\n"    # 2049 bytes
    ctx = sample_context("study_nudge")
    assert validate_template(library, "study_nudge", fits, ctx) == []
    problems = validate_template(library, "study_nudge", too_long, ctx)
    assert "2049 字节" in problems[0].message and "2048" in problems[0].message


def test_markdown_limit_is_4096(library: TemplateLibrary) -> None:
    head = HEAD.replace("msgtype: text", "msgtype: markdown")
    assert validate_template(library, "x", head + "汉" * 1365 + "\n", {}) == []
    assert "4096" in validate_template(library, "x", head + "汉" * 1366 + "\n", {})[0].message


@pytest.mark.parametrize("body", [
    "{{ ''.__class__.__mro__ }}",
    "{{ holiday.__class__ }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}",
    "{{ 'x' * 100000000 }}",
    "{{ 10 ** 100000 }}",
], ids=["dunder", "class", "nested-loops", "repeat", "power"])
def test_sandbox_refuses_escapes_and_runaway_templates(library: TemplateLibrary, body: str) -> None:
    problems = validate_template(library, "holiday_integrity", HEAD + body + "\n",
                                 sample_context("holiday_integrity"))
    assert problems, body


def test_front_matter_is_required(library: TemplateLibrary) -> None:
    problems = validate_template(library, "x", "没有元数据\n", {})
    assert "元数据" in problems[0].message


def test_edit_is_used_ahead_of_the_file_and_can_include_a_partial(tmp_path: Path) -> None:
    (tmp_path / "_sign.j2").write_text(HEAD + "{{ organisation.name }}\n", encoding="utf-8")
    (tmp_path / "note.j2").write_text(HEAD + "默认\n", encoding="utf-8")
    library = TemplateLibrary(tmp_path, {"note": HEAD + "修改后\n{% include '_sign.j2' %}\n"})
    assert library.names() == ["note"]
    assert library.render("note", {"organisation": {"name": "示范局"}}).text == "修改后\n示范局"
    assert TemplateLibrary(tmp_path).render("note", {}).text == "默认"


def test_render_error_is_a_template_error(library: TemplateLibrary) -> None:
    with pytest.raises(TemplateError, match="messages/holiday_integrity.j2"):
        library.render("holiday_integrity", {})
