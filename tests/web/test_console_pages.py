"""Plan, deliveries, ledger, calendars, audit: what each page shows and what each action changes."""

from __future__ import annotations

import csv
import io
import time
from datetime import date, datetime, timedelta

import openpyxl
import pytest
from fakes import ADMIN, login, make_app, make_runtime, post
from sqlalchemy import select

from bot.calendars.holiday_status import holiday_alert
from bot.clock import BEIJING
from bot.occurrence import PlannedMessage
from bot.store.audit import recent
from bot.store.models import Confirmation, Delivery
from bot.store.outbox import enqueue
from bot.store.queries import DeliveryRow, get_delivery, list_deliveries

HOLIDAY_KEY = "holiday_integrity|2026-dragon_boat|b1_group"     # 18 June: beyond the 35-day horizon
STUDY_KEY = "study|jsjy-2026-05@nudge-w2-0900:b1|b1_secretary"  # 20 May: within it


def row_of(runtime, key: str) -> DeliveryRow | None:
    with runtime.store.session(readonly=True) as session:
        row = session.scalar(select(Delivery).where(Delivery.key == key))
        return DeliveryRow.of(row) if row else None


# ---- overview -------------------------------------------------------------------------------

def test_overview_shows_counts_and_reload_error(admin, runtime) -> None:
    runtime.last_reload_error = "文件 schedules/meetings.yaml 第 3 行：格式错误"
    page = admin.get("/admin/").get_data(as_text=True)
    assert "待发送" in page and "已发送" in page and "第 3 行" in page


# ---- plan -----------------------------------------------------------------------------------

def test_plan_groups_by_day_and_hides_webhook_keys(admin, runtime) -> None:
    page = admin.get("/admin/plan?page=3").get_data(as_text=True)        # 8 to 21 June
    assert "2026年6月18日（周四）" in page and "第一党支部群" in page and "节前廉洁提醒" in page
    keys = [t.key.get_secret_value() for t in runtime.settings().targets.values() if hasattr(t, "key")]
    for number in range(1, 8):
        page = admin.get(f"/admin/plan?page={number}").get_data(as_text=True)
        assert not any(key in page for key in keys)


def test_plan_is_paged_a_fortnight_at_a_time(admin) -> None:
    first = admin.get("/admin/plan").get_data(as_text=True)
    assert "本页 2026-05-11 至 2026-05-24" in first and "共 91 天，第 1/7 页" in first
    assert "2026年6月18日" not in first and "page=2&amp;days=90" in first
    last = admin.get("/admin/plan?page=999").get_data(as_text=True)
    assert "本页 2026-08-03 至 2026-08-09" in last and "第 7/7 页" in last
    assert "第 1/3 页" in admin.get("/admin/plan?days=30&page=x").get_data(as_text=True)


def test_plan_shows_an_occurrence_once_with_its_targets_summarised(admin) -> None:
    page = admin.get("/admin/plan?page=3").get_data(as_text=True)
    article = page[page.index("节前廉洁提醒"):]
    article = article[:article.index("</article>")]
    assert article.count("<pre class=\"preview\">") == 1
    assert "发送对象：第一党支部群 等 3 个对象" in article and "（未写入发件箱 3）" in article
    assert article.count(">跳过</a>") == 3 and article.count(">立即发送</a>") == 3


def test_reader_sees_the_plan_without_actions(reader) -> None:
    page = reader.get("/admin/plan?page=3").get_data(as_text=True)
    assert "节前廉洁提醒" in page and ">跳过</a>" not in page and ">立即发送</a>" not in page


@pytest.mark.parametrize("key", [HOLIDAY_KEY, STUDY_KEY], ids=["beyond-horizon", "within-horizon"])
def test_skip_after_confirmation(admin, runtime, key: str) -> None:
    confirm = admin.get("/admin/plan/confirm", query_string={"key": key, "action": "skip"})
    assert confirm.status_code == 200 and "确认跳过" in confirm.get_data(as_text=True)
    assert row_of(runtime, key) is None or row_of(runtime, key).status == "pending"
    response = post(admin, "/admin/plan/action", {"key": key, "action": "skip"})
    assert response.status_code == 302
    assert row_of(runtime, key).status == "skipped"
    assert recent(runtime.store)[0].action == "跳过计划消息"
    runtime.replan()
    assert row_of(runtime, key).status == "skipped"        # re-planning does not bring it back
    page = admin.get(response.headers["Location"]).get_data(as_text=True)   # the page that shows it
    assert "已跳过该消息" in page and "已跳过 1" in page


@pytest.mark.parametrize("day", ["2026-06-18", "2026-05-12", "2027-01-01", "bad"],
                         ids=["its-day", "wrong-day", "out-of-range", "not-a-date"])
def test_action_finds_the_message_whatever_day_the_form_says(admin, runtime, day: str) -> None:
    confirm = admin.get("/admin/plan/confirm", query_string={"key": HOLIDAY_KEY, "action": "skip", "day": day})
    assert confirm.status_code == 200 and 'name="day" value="2026-06-18"' in confirm.get_data(as_text=True)
    response = post(admin, "/admin/plan/action", {"key": HOLIDAY_KEY, "action": "skip", "day": day})
    assert response.status_code == 302 and "page=3" in response.headers["Location"]
    assert row_of(runtime, HOLIDAY_KEY).status == "skipped"


def test_skip_touches_only_that_target(admin, runtime) -> None:
    post(admin, "/admin/plan/action", {"key": HOLIDAY_KEY, "action": "skip"})
    other = row_of(runtime, HOLIDAY_KEY.replace("b1_group", "b2_group"))
    assert other is None or other.status == "pending"


def test_send_now_makes_the_row_due_and_wakes_the_dispatcher(admin, runtime, clock) -> None:
    post(admin, "/admin/plan/action", {"key": HOLIDAY_KEY, "action": "send"})
    row = row_of(runtime, HOLIDAY_KEY)
    assert row.status == "pending" and row.due_at == clock.now()
    assert runtime.on_replan_requested.calls == 1
    assert recent(runtime.store)[0].action == "立即发送计划消息"


def test_send_now_of_an_existing_pending_row(admin, runtime, clock) -> None:
    runtime.replan()
    assert row_of(runtime, STUDY_KEY).status == "pending"
    post(admin, "/admin/plan/action", {"key": STUDY_KEY, "action": "send"})
    assert row_of(runtime, STUDY_KEY).due_at == clock.now()


def test_unknown_key_is_not_found(admin) -> None:
    assert post(admin, "/admin/plan/action", {"key": "no|such|key", "action": "skip"}).status_code == 404
    form = {"key": "no|such|key", "action": "skip", "day": "2026-06-18"}
    assert post(admin, "/admin/plan/action", form).status_code == 404


# ---- deliveries -----------------------------------------------------------------------------

def add_deliveries(runtime, count: int, start: datetime, **overrides) -> None:
    rows = [PlannedMessage(key=f"test|{overrides.get('kind', 'announcement')}|{start:%j}|{n}", rule="test",
                           kind=overrides.get("kind", "announcement"), occurrence=str(n),
                           target=overrides.get("target", "b1_group"), msgtype="text", title=f"通知{n}",
                           text=f"正文{n}", due_at=start + timedelta(hours=n), reason="测试")
            for n in range(count)]
    enqueue(runtime.store, rows, start)


def set_failed(runtime, key_part: str, error: str) -> int:
    with runtime.store.session() as session:
        row = session.scalar(select(Delivery).where(Delivery.key.contains(key_part)))
        row.status, row.last_error, row.errcode, row.attempts = "failed", error, 93000, 3
        return row.id


def test_deliveries_filter_and_paginate(admin, runtime) -> None:
    add_deliveries(runtime, 60, datetime(2026, 4, 1, 9, tzinfo=BEIJING))
    add_deliveries(runtime, 5, datetime(2026, 4, 20, 9, tzinfo=BEIJING), kind="meeting_reminder", target="b2_group")
    page = admin.get("/admin/deliveries").get_data(as_text=True)
    assert "共 65 条" in page and "第 1/2 页" in page
    page = admin.get("/admin/deliveries?kind=meeting_reminder").get_data(as_text=True)
    assert "共 5 条" in page
    page = admin.get("/admin/deliveries?target=b2_group&since=2026-04-20&until=2026-04-20").get_data(as_text=True)
    assert "共 5 条" in page
    page = admin.get("/admin/deliveries?since=2026-04-02&until=2026-04-02").get_data(as_text=True)
    assert "共 24 条" in page
    assert "共 0 条" in admin.get("/admin/deliveries?status=sent").get_data(as_text=True)
    bad = admin.get("/admin/deliveries?since=bad&page=999")  # refused with a message, the rest still shown
    assert bad.status_code == 422 and "不是有效的日期" in bad.get_data(as_text=True)


def test_failed_delivery_shows_the_error_without_secrets_and_can_be_retried(admin, runtime) -> None:
    add_deliveries(runtime, 1, datetime(2026, 5, 1, 9, tzinfo=BEIJING))
    key = runtime.settings().targets["b1_group"].key.get_secret_value()
    row_id = set_failed(runtime, "test|", f"群机器人密钥无效 https://qyapi/webhook/send?key={key}")
    page = admin.get("/admin/deliveries?status=failed").get_data(as_text=True)
    assert "群机器人密钥无效" in page and key not in page and "93000" in page
    assert post(admin, f"/admin/deliveries/{row_id}/retry", {"status": "failed"}).status_code == 302
    row = get_delivery(runtime.store, row_id)
    assert row.status == "retry"
    assert recent(runtime.store)[0].action == "重试发送"
    assert post(admin, f"/admin/deliveries/{row_id}/retry").status_code == 302   # not retryable now
    assert len([e for e in recent(runtime.store) if e.action == "重试发送"]) == 1


def test_a_configuration_error_shows_target_cause_and_fix(admin, runtime) -> None:
    from bot.wecom.outcomes import configuration_error
    add_deliveries(runtime, 1, datetime(2026, 5, 1, 9, tzinfo=BEIJING), target="office")
    set_failed(runtime, "test|", configuration_error(60020, "not allow to access from your ip, from ip: 203.0.113.9"))
    page = admin.get("/admin/deliveries?status=failed").get_data(as_text=True)
    assert "党办纪检工作人员" in page and "203.0.113.9" in page and "应用管理 → 本应用 → 企业可信IP" in page


def test_deliveries_export_as_csv_follows_the_filters_and_hides_secrets(admin, runtime) -> None:
    add_deliveries(runtime, 3, datetime(2026, 4, 1, 9, tzinfo=BEIJING))
    add_deliveries(runtime, 2, datetime(2026, 4, 20, 9, tzinfo=BEIJING), kind="meeting_reminder", target="b2_group")
    key = runtime.settings().targets["b1_group"].key.get_secret_value()
    set_failed(runtime, "test|announcement|091|0", f"=HYPERLINK(\"x\") 群机器人密钥无效 ?key={key}")
    page = admin.get("/admin/deliveries?kind=announcement").get_data(as_text=True)
    assert "/admin/deliveries/export.csv?kind=announcement" in page
    response = admin.get("/admin/deliveries/export.csv?kind=announcement")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    data = response.get_data()
    assert data.startswith("\ufeff".encode())  # Excel and WPS read it as UTF-8
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[0][:6] == ["计划发送时间", "实际发送时间", "类别", "发送对象", "标题", "状态"]
    assert [line[0] for line in table[1:]] == ["2026-04-01 09:00", "2026-04-01 10:00", "2026-04-01 11:00"]
    first = dict(zip(table[0], table[1], strict=True))
    assert first["发送对象"] == "第一党支部群" and first["状态"] == "发送失败" and first["企业微信错误码"] == "93000"
    assert first["说明"].startswith("'=HYPERLINK")  # a spreadsheet shows it as text, never runs it
    assert key not in data.decode("utf-8-sig")
    assert admin.get("/admin/deliveries/export.csv?status=sent").get_data().decode("utf-8-sig").count("\n") == 1


# ---- ledger ---------------------------------------------------------------------------------

def test_ledger_matrix(admin) -> None:
    page = admin.get("/admin/ledger?year=2026").get_data(as_text=True)
    assert "第一党支部" in page and "《警示教育通报》2026年第1期" in page and "未完成" in page


def many_branches(text: str) -> str:
    """25 branches: the example's three and 22 more, each with its secretary."""
    extra = "".join(f"    - id: x{n}\n      name: 第{n}支部\n      secretary: {{userid: sx{n}, name: 书记{n}}}\n"
                    for n in range(4, 26))
    return text.replace("      group: b3_group\n", "      group: b3_group\n" + extra, 1)


@pytest.fixture
def big_ledger(tmp_path, clock):
    rt = make_runtime(tmp_path, clock, many_branches)
    client = make_app(rt).test_client()
    from fakes import ADMIN, login
    login(client, *ADMIN)
    yield rt, client
    rt.close()


def test_ledger_pages_branches_and_exports_them_all(big_ledger) -> None:
    runtime, client = big_ledger
    first = client.get("/admin/ledger?year=2026").get_data(as_text=True)
    assert "共 25 个支部，第 1/2 页" in first
    table = first[first.index('<table class="grid matrix">'):]   # the matrix pages; the chart shows every branch
    assert "第一党支部" in table and "第20支部" in table and "第21支部" not in table
    assert "第21支部" in first[:first.index('<table class="grid matrix">')]
    second = client.get("/admin/ledger?year=2026&page=2").get_data(as_text=True)
    table = second[second.index('<table class="grid matrix">'):]
    assert "第21支部" in table and "第25支部" in table and "第一党支部" not in table
    assert "branch=x25&amp;page=2" in second                              # the way back to this page
    csv = client.get("/admin/ledger/export.csv?year=2026").data.decode("utf-8-sig")
    assert "第一党支部" in csv and "第25支部" in csv
    book = openpyxl.load_workbook(io.BytesIO(client.get("/admin/ledger/export.xlsx?year=2026").data))
    names = {c.value for row in book["学习台账"].iter_rows() for c in row}
    assert {"第一党支部", "第21支部", "第25支部"} <= names


def test_manual_confirmation_returns_to_the_same_page_of_branches(big_ledger) -> None:
    runtime, client = big_ledger
    form = client.get("/admin/ledger/confirm?item=jsjy-2026-01&branch=x25&page=2").get_data(as_text=True)
    assert 'name="page" value="2"' in form and "year=2026&amp;page=2" in form
    data = {"item": "jsjy-2026-01", "branch": "x25", "by": "书记25", "at": "2026-01-20T10:00",
            "reason": "线下集中学习", "page": "2"}
    response = post(client, "/admin/ledger/confirm", data)
    assert response.status_code == 302 and response.headers["Location"].endswith("year=2026&page=2")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "01-20 10:00 补录" in page


def test_reader_sees_the_ledger_without_manual_confirmation(reader) -> None:
    page = reader.get("/admin/ledger?year=2026").get_data(as_text=True)
    assert "未完成" in page and "补录确认" not in page


def test_ledger_exports_a_valid_xlsx(admin) -> None:
    response = admin.get("/admin/ledger/export.xlsx?year=2026")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    sheet = book["学习台账"]
    assert sheet.cell(row=3, column=1).value == "学习内容"
    assert any("第一党支部" == c.value for row in sheet.iter_rows() for c in row)


def test_ledger_exports_csv_with_bom(admin) -> None:
    response = admin.get("/admin/ledger/export.csv?year=2026")
    assert response.data.startswith("\ufeff".encode()) and "学习内容" in response.data.decode("utf-8-sig")


def test_manual_confirmation_needs_a_reason_and_is_audited(admin, runtime) -> None:
    form = {"item": "jsjy-2026-01", "branch": "b2", "by": "李娜", "at": "2026-01-20T10:00", "reason": ""}
    assert post(admin, "/admin/ledger/confirm", form).status_code == 422
    response = post(admin, "/admin/ledger/confirm", {**form, "reason": "线下集中学习，书记未在企业微信确认"})
    assert response.status_code == 302
    with runtime.store.session(readonly=True) as session:
        row = session.scalar(select(Confirmation).where(Confirmation.item == "jsjy-2026-01",
                                                        Confirmation.branch == "b2"))
        assert (row.source, row.recorded_by, row.late) == ("manual", "admin", False)
    assert recent(runtime.store)[0].action == "补录学习确认"
    assert "补录" in admin.get("/admin/ledger?year=2026").get_data(as_text=True)


def test_manual_confirmation_in_the_future_is_refused(admin) -> None:
    form = {"item": "jsjy-2026-01", "branch": "b2", "by": "李娜", "at": "2026-06-01T10:00", "reason": "x"}
    assert post(admin, "/admin/ledger/confirm", form).status_code == 422


# ---- calendars ------------------------------------------------------------------------------

GOOD_ICS = """BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:a1@test\r
DTSTAMP:20260501T000000Z\r\nDTSTART;TZID=Asia/Shanghai:20260520T143000\r
DTEND;TZID=Asia/Shanghai:20260520T160000\r\nSUMMARY:视频会议\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"""
BROKEN_ICS = GOOD_ICS.replace("DTSTART;TZID=Asia/Shanghai:20260520T143000", "DTSTART;TZID=Asia/Shanghai:2026-05-xx")


def upload(client, name: str, text: str):
    return post(client, "/admin/calendars/upload", {"file": (io.BytesIO(text.encode()), name)},
                content_type="multipart/form-data")


def test_calendars_page_shows_years_and_series(admin) -> None:
    page = admin.get("/admin/calendars").get_data(as_text=True)
    assert "国务院办公厅关于2026年部分节假日安排的通知" in page and "第一党支部支委会" in page
    assert "每季度第一个月第三个周二" in page and "FREQ=" not in page  # the cadence as the file says it


def test_valid_ics_is_saved_with_a_safe_name(admin, runtime) -> None:
    response = upload(admin, "../../etc/视频 会议.ics", GOOD_ICS)
    assert response.status_code == 302
    folder = runtime.settings().path("schedules")
    assert (folder / "视频_会议.ics").read_bytes() == GOOD_ICS.encode()
    assert not (folder.parent.parent / "etc").exists()
    assert recent(runtime.store)[0].subject == "schedules/视频_会议.ics"


def test_broken_ics_is_refused_and_nothing_written(admin, runtime) -> None:
    before = sorted(p.name for p in runtime.settings().path("schedules").iterdir())
    response = upload(admin, "broken.ics", BROKEN_ICS)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "未被采用" in page and "第" in page and "行" in page
    assert sorted(p.name for p in runtime.settings().path("schedules").iterdir()) == before
    assert recent(runtime.store) == []


@pytest.mark.parametrize(("today", "level"), [
    (date(2026, 9, 30), None), (date(2026, 10, 1), "提示"), (date(2026, 11, 30), "提示"),
    (date(2026, 12, 1), "警告"), (date(2026, 12, 14), "警告"), (date(2026, 12, 15), "严重")],
    ids=["sep-30", "oct-1", "nov-30", "dec-1", "dec-14", "dec-15"])
def test_holiday_alert_levels(today: date, level: str | None) -> None:
    alert = holiday_alert({2025, 2026}, today)
    assert (alert.level if alert else None) == level


def test_holiday_alert_quiet_when_next_year_is_loaded() -> None:
    assert holiday_alert({2026, 2027}, date(2026, 12, 20)) is None
    assert holiday_alert({2025}, date(2026, 3, 1)).level == "严重"


def test_calendar_page_warns_in_december(admin, clock) -> None:
    clock.set(datetime(2026, 12, 16, 9, tzinfo=BEIJING))
    assert login(admin, *ADMIN).status_code == 302          # months later: the old session has ended
    page = admin.get("/admin/calendars").get_data(as_text=True)
    assert "【严重】" in page and "2027年" in page


# ---- audit and escaping ---------------------------------------------------------------------

def test_audit_page_is_paginated(admin, runtime) -> None:
    from bot.store.audit import audit
    for n in range(55):
        audit(runtime.store, actor="admin", action="测试", subject=f"对象{n}", before=None, after="<i>x</i>",
              at=datetime(2026, 5, 1, tzinfo=BEIJING))
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert "第 1/2 页" in page and "&lt;i&gt;x&lt;/i&gt;" in page and "<i>x</i>" not in page


def test_script_in_names_is_escaped(tmp_path, clock) -> None:
    rt = make_runtime(tmp_path, clock, lambda t: t.replace("name: 第一党支部", "name: 第一党支部<script>alert(1)</script>"))
    client = make_app(rt).test_client()
    from fakes import ADMIN, login
    login(client, *ADMIN)
    for path in ("/admin/ledger?year=2026", "/admin/calendars"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    rt.close()


def test_a_stalled_scheduler_turns_healthz_red_and_warns_on_the_overview(app, admin, runtime) -> None:
    client = app.test_client()
    assert client.get("/healthz").status_code == 200  # not started yet: nothing to judge
    runtime.beat()
    assert client.get("/healthz").get_json()["status"] == "ok"
    assert "定时发送已停止" not in admin.get("/admin/").get_data(as_text=True)
    runtime.heartbeat = time.monotonic() - 10 * 60  # no cycle for ten minutes
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.get_json()["status"] == "stalled"
    assert "定时发送已停止 10 分钟" in answer.get_json()["message"]
    assert "定时发送已停止 10 分钟" in admin.get("/admin/").get_data(as_text=True)


def test_a_callback_that_could_not_be_recorded_turns_healthz_red(app) -> None:
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    app.extensions["wecom_callback"].note_refused()  # as the callback does when the database is down
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.get_json()["status"] == "callbacks_unrecorded"
    assert "未能记录" in answer.get_json()["message"] and "重新推送" in answer.get_json()["message"]


def test_alerts_that_cannot_reach_the_administrators_turn_healthz_red(app, admin, runtime, clock) -> None:
    from bot.delivery.alerts import raise_alert
    client = app.test_client()
    assert raise_alert(runtime.store, runtime.settings(), clock.now(), "1 条消息发送失败", ["节前廉洁提醒 → 第一党支部群"],
                       "检查群机器人", []) == 1
    assert client.get("/healthz").status_code == 200  # queued, not failed
    [row] = list_deliveries(runtime.store, kind="alert")
    set_failed(runtime, row.key, "应用凭据无效（40001）")
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.get_json()["status"] == "alerts_undelivered"
    page = admin.get("/admin/").get_data(as_text=True)
    assert "近一天有 1 条告警未能送达管理员" in page
    assert "共 1 条" in admin.get("/admin/deliveries?kind=alert").get_data(as_text=True)
    clock.advance(timedelta(days=1, minutes=1))
    assert client.get("/healthz").status_code == 200  # a day later it is history, in the delivery log
