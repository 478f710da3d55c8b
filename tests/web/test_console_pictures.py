"""The console's pictures: the year calendar, the ledger chart, delivery titles and details."""

from __future__ import annotations

import re


def cell(page: str, day: str) -> str:
    """The <td> of ``day`` (YYYY-MM-DD) in the year grid."""
    match = re.search(r'<td class="([^"]*)" title="([^"]*)"><a href="[^"]*day=' + day + r'#day">', page)
    assert match, f"no cell for {day}"
    return f"{match.group(1)} | {match.group(2)}"


def test_the_year_calendar_shows_days_off_adjusted_days_and_sends(admin) -> None:
    page = admin.get("/admin/calendars?year=2026").get_data(as_text=True)
    assert page.count('<table class="month">') == 12
    assert cell(page, "2026-02-16").startswith("holiday") and "春节放假" in cell(page, "2026-02-16")
    assert cell(page, "2026-02-14").startswith("adjusted")          # a Saturday worked (调休上班)
    assert cell(page, "2026-03-07").startswith("weekend")
    assert "计划发送" in cell(page, "2026-06-18")                   # the notice before 端午节
    assert "today" in cell(page, "2026-05-11")


def test_an_unpublished_year_is_provisional(admin) -> None:
    page = admin.get("/admin/calendars?year=2027").get_data(as_text=True)
    assert cell(page, "2027-01-01").startswith("provisional") and "尚未发布" in cell(page, "2027-01-01")


def test_clicking_a_day_lists_its_sends(admin) -> None:
    page = admin.get("/admin/calendars?year=2026&day=2026-06-18").get_data(as_text=True)
    day = page[page.index('id="day"'):]
    assert "6月18日计划发送的消息" in day and "节前廉洁提醒" in day and "10:00" in day and "端午节" in day
    assert "chosen" in cell(page, "2026-06-18")


def test_a_one_day_holiday_is_written_as_one_day(admin) -> None:
    page = admin.get("/admin/calendars").get_data(as_text=True)
    assert "元旦：1月1日，共1天" in page and "1月1日至1月1日" not in page


def test_the_ledger_draws_a_chart_and_a_sentence_with_names(admin, runtime, clock) -> None:
    from datetime import timedelta

    from bot.store.confirmations import confirm
    item = runtime.studies().get("jsjy-2026-04")
    confirm(runtime.store, item.id, "b1", "zhangwei", item.deadline - timedelta(days=1), "reply",
            deadline=item.deadline)
    confirm(runtime.store, item.id, "b2", "lina", item.deadline + timedelta(days=1), "reply", deadline=item.deadline)
    page = admin.get("/admin/ledger?year=2026").get_data(as_text=True)
    assert page.count('<svg class="chart"') == 2
    assert "第一党支部：按时完成 1" in page and "第二党支部：逾期完成 1" in page and "机关党支部：逾期未完成" in page
    sentence = page[page.index('id="year-sentence"'):page.index('<div class="charts">')]
    assert "2026年全年学习《警示教育通报》" in sentence and "按时完成率" in sentence and "逾期完成1" in sentence
    assert "张伟" in page and "zhangwei" not in page


def _delivery(runtime, clock, **changes):
    from datetime import timedelta

    from bot.occurrence import PlannedMessage
    from bot.store.outbox import enqueue
    from bot.store.queries import list_deliveries
    values = dict(key=f"t|{len(changes)}|{sorted(changes)}", due_at=clock.now() + timedelta(hours=1),
                  kind="meeting_reminder", rule="meeting:x", occurrence="m1#1d", target="b1_group",
                  template="meeting_reminder", msgtype="markdown", title="会议提醒", text="## 会议提醒\n\n**支委会**",
                  reason="测试", item=None, provisional=False,
                  meta={"title": "第一党支部支委会", "meeting_start": "2026-05-13T16:00:00+08:00"}, card=None)
    values.update(changes)
    enqueue(runtime.store, [PlannedMessage(**values)], clock.now())
    return list_deliveries(runtime.store, limit=1, order="desc")[0]


def test_deliveries_say_what_and_a_detail_page_shows_the_payload_masked(admin, runtime, clock) -> None:
    row = _delivery(runtime, clock)
    page = admin.get("/admin/deliveries").get_data(as_text=True)
    assert "第一党支部支委会（5月13日（周三）16:00）" in page
    assert "第一党支部支委会（5月13日（周三）16:00）" in admin.get("/admin/").get_data(as_text=True)  # 概况 too
    detail = admin.get(f"/admin/deliveries/{row.id}").get_data(as_text=True)
    assert "会议提醒：第一党支部支委会" in detail and "POST /cgi-bin/webhook/send?key=******" in detail
    assert "6a1f0c2e-0b1d-4c55-9a11-00000000b001" not in detail and "&#34;msgtype&#34;: &#34;markdown&#34;" in detail


def test_a_configuration_error_comes_with_its_fix(admin, runtime, clock) -> None:
    from sqlalchemy import update

    from bot.store.models import Delivery
    row = _delivery(runtime, clock, key="t|robot-gone")
    with runtime.store.session() as session:  # as the dispatcher records a permanent failure
        session.execute(update(Delivery).where(Delivery.id == row.id).values(
            status="failed", attempts=1, errcode=93000, last_error="群机器人密钥无效或机器人已被移出群聊（93000）"))
    detail = admin.get(f"/admin/deliveries/{row.id}").get_data(as_text=True)
    assert "93000" in detail and "重新添加机器人" in detail


def test_the_detail_page_lists_each_attempt_with_wecoms_errcode_and_errmsg(admin, runtime, clock) -> None:
    from datetime import timedelta

    from bot.store.claims import claim_due
    from bot.store.outbox import AttemptOutcome, record_outcomes
    from bot.wecom.outcomes import classify
    row = _delivery(runtime, clock, key="t|attempts")
    busy = classify(-1, None, None, "system busy, hint: [17], more info at https://open.work.weixin.qq.com/q?e=-1")
    for n, outcome in enumerate((busy, classify(0, None, None, "ok")), start=1):
        at = row.due_at + timedelta(minutes=n)
        claim_due(runtime.store, at, "w1")
        record_outcomes(runtime.store, [AttemptOutcome(row.id, n, outcome.status, outcome.error, outcome.errcode,
                                                       next_attempt_at=at, errmsg=outcome.errmsg)],
                        at + timedelta(seconds=2))
    detail = admin.get(f"/admin/deliveries/{row.id}").get_data(as_text=True)
    table = detail[detail.index("每次尝试"):detail.index("发送的内容")]
    assert re.search(r"第 1 次.*?:01:00.*?:01:02.*?待重试.*?-1.*?system busy, hint: \[17\], more info at "
                     r"https://open.work.weixin.qq.com/q<.*?企业微信系统繁忙", table, re.S)
    assert re.search(r"第 2 次.*?:02:00.*?已发送.*?>0<.*?>ok<.*?发送成功", table, re.S)
    assert "e=-1" not in detail


def test_a_reversed_or_invalid_date_range_is_refused_with_a_message(admin) -> None:
    reversed_range = admin.get("/admin/deliveries?since=2026-05-20&until=2026-05-01")
    assert reversed_range.status_code == 422 and "晚于截止日期" in reversed_range.get_data(as_text=True)
    invalid = admin.get("/admin/deliveries?since=2026-13-40")
    assert invalid.status_code == 422 and "不是有效的日期" in invalid.get_data(as_text=True)
