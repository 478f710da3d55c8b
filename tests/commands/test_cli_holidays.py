"""`wecom-reminder holidays import`: a notice file (or stdin) to schedules/holidays/<year>.yaml."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[2]
NOTICES = ROOT / "tests" / "fixtures" / "notices"
BUNDLED = ROOT / "schedules" / "holidays"


def folder(project: Path) -> Path:
    return project.parent / "schedules" / "holidays"


def holidays(project: Path, *args: str) -> int:
    return main(["--config", str(project), "holidays", "import", *args])


def test_print_shows_exactly_the_yaml_and_writes_nothing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p.name: p.read_bytes() for p in folder(project).iterdir()}
    assert holidays(project, str(NOTICES / "2026_news_site.txt"), "--print") == 0
    out, err = capsys.readouterr()
    assert out == (BUNDLED / "2026.yaml").read_text(encoding="utf-8")
    assert "已读取《国务院办公厅关于2026年部分节假日安排的通知》（2025-11-04）" in err
    assert "春节：2月15日（周日）至2月23日（周一），共9天；调休上班：2月14日（周六）、2月28日（周六）" in err
    assert {p.name: p.read_bytes() for p in folder(project).iterdir()} == before


def test_import_from_stdin_writes_the_year_file(project: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (folder(project) / "2026.yaml").unlink()
    monkeypatch.setattr("sys.stdin", io.StringIO((NOTICES / "2026_forum_halfwidth.txt").read_text(encoding="utf-8")))
    assert holidays(project, "-") == 0
    assert (folder(project) / "2026.yaml").read_text(encoding="utf-8") == (BUNDLED / "2026.yaml").read_text(
        encoding="utf-8")
    assert "已新增" in capsys.readouterr().err
    assert not [p for p in folder(project).iterdir() if p.name.startswith(".")]  # no temporary file left


def test_an_amendment_updates_the_year_and_records_itself(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder(project) / "2019.yaml").unlink()
    assert holidays(project, str(NOTICES / "2019_govcn_page.txt")) == 0
    assert "labour_day]\n    first_day: 2019-05-01\n    last_day: 2019-05-01" in (
        folder(project) / "2019.yaml").read_text(encoding="utf-8")
    assert holidays(project, str(NOTICES / "2019_labour_amendment.txt")) == 0
    assert (folder(project) / "2019.yaml").read_text(encoding="utf-8") == (BUNDLED / "2019.yaml").read_text(
        encoding="utf-8")
    err = capsys.readouterr().err
    assert "调整内容：劳动节放假调整为5月1日至4日，共4天；4月28日（星期日）、5月5日（星期日）上班" in err
    assert "已更新" in err


@pytest.mark.parametrize(("name", "reason"), [
    ("not_a_notice_article.txt", "所给内容不含通知正文"),
    ("2026_cut_off.txt", "缺少劳动节、端午节、中秋节、国庆节的放假安排"),
])
def test_a_text_that_is_not_a_complete_notice_is_refused_and_nothing_written(
        project: Path, capsys: pytest.CaptureFixture[str], name: str, reason: str) -> None:
    (folder(project) / "2026.yaml").unlink()
    before = sorted(p.name for p in folder(project).iterdir())
    assert holidays(project, str(NOTICES / name)) == 2
    captured = capsys.readouterr()
    assert reason in captured.err and "处理办法" in captured.err and captured.out == ""
    assert sorted(p.name for p in folder(project).iterdir()) == before


def test_a_missing_file_is_named(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert holidays(project, "/nonexistent/通知.txt") == 2
    assert "找不到文件 /nonexistent/通知.txt" in capsys.readouterr().err
