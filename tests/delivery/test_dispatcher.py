"""The dispatcher against the simulator: exactly once, retries, token refresh, alerts, leases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fakes import (
    APP_SEND,
    ROBOT_SEND,
    delivery,
    enqueue,
    make_settings,
    robot_key,
    run_until_settled,
    wait_for,
)
from sqlalchemy import update

from bot.clock import FakeClock
from bot.delivery.dispatcher import AMBIGUOUS, DISPATCH_LOCK, Dispatcher
from bot.delivery.send_now import deliver_now
from bot.inbox.ledger import NUDGE_CONFIRMED, cancel_confirmed_nudges
from bot.scheduler import release_orphaned_sends
from bot.simulator import Simulator
from bot.store.attempts import attempts_of
from bot.store.claims import begin_send, claim_due
from bot.store.db import Store, try_leader_lock
from bot.store.models import Confirmation, Delivery
from bot.store.outbox import record_outcome
from bot.store.queries import get_delivery, list_deliveries

MakeDispatcher = Callable[..., Dispatcher]


def rows_of(store: Store, **filters: Any) -> list[Any]:
    return list_deliveries(store, limit=10_000, order="asc", **filters)


def only(store: Store, key: str) -> Any:
    return next(row for row in rows_of(store) if row.key == key)


def test_one_message_to_thirty_robots_and_app_users_arrives_exactly_once(
        any_store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    now = clock.now()
    enqueue(any_store, [delivery(f"g{i}", settings, now) for i in range(30)] + [delivery("office", settings, now)], now)
    report = make_dispatcher(settings, on=any_store).dispatch_due()
    assert report.sent == 31 and report.failed == report.retried == 0
    for i in range(30):
        assert [m["text"]["content"] for m in sim.group_messages(robot_key(i))] == ["spring：廉洁过节，严守纪律"]
    assert [m["text"]["content"] for m in sim.user_messages("zhangwei")] == ["spring：廉洁过节，严守纪律"]
    assert len(sim.user_messages("lina")) == 1
    office = only(any_store, "holiday|spring|office")
    assert office.status == "sent" and office.msgid and office.attempts == 1
    assert len(sim.requests(ROBOT_SEND)) == 30 and len(sim.requests(APP_SEND)) == 1


def test_a_server_error_is_retried_later_and_sent_once(store: Store, sim: Simulator, clock: FakeClock,
                                                       make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    enqueue(store, [delivery("g1", settings, clock.now())], clock.now())
    sim.inject(ROBOT_SEND, http_status=502)
    dispatcher = make_dispatcher(settings)
    first = dispatcher.dispatch_due()
    row = only(store, "holiday|spring|g1")
    assert first.retried == 1 and row.status == "retry" and "HTTP 502" in row.last_error
    assert row.next_attempt_at > clock.now()
    run_until_settled(dispatcher, clock)
    assert only(store, "holiday|spring|g1").status == "sent"
    assert len(sim.group_messages(robot_key(1))) == 1


def test_an_app_timeout_is_retried_and_the_duplicate_check_keeps_it_single(
        store: Store, start_sim: Callable[..., Simulator], clock: FakeClock, mono: Any,
        make_dispatcher: MakeDispatcher) -> None:
    sim = start_sim(mono)
    settings = make_settings(sim.url, request_timeout=timedelta(seconds=0.3))
    enqueue(store, [delivery("office", settings, clock.now())], clock.now())
    sim.inject(APP_SEND, delay=0.8)  # answered after we gave up: WeCom did deliver it
    dispatcher = make_dispatcher(settings)
    assert dispatcher.dispatch_due().retried == 1
    assert "超时" in only(store, "holiday|spring|office").last_error
    run_until_settled(dispatcher, clock)
    wait_for(lambda: len(sim.requests(APP_SEND)) == 2)  # the first call lands late
    bodies = [r.body for r in sim.requests(APP_SEND)]
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # the same bytes: WeCom drops the second
    assert len(sim.user_messages("zhangwei")) == 1
    assert [d["reason"] for d in sim.dropped] == ["duplicate"]
    assert only(store, "holiday|spring|office").status == "sent"


def test_45009_waits_a_window_without_a_hot_loop(store: Store, sim: Simulator, clock: FakeClock,
                                                  make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    enqueue(store, [delivery("g2", settings, clock.now())], clock.now())
    sim.inject(ROBOT_SEND, errcode=45009)
    dispatcher = make_dispatcher(settings)
    assert dispatcher.dispatch_due().retried == 1
    assert dispatcher.dispatch_due().retried == 0  # nothing is due again right away
    row = only(store, "holiday|spring|g2")
    assert row.errcode == 45009 and row.next_attempt_at >= clock.now() + timedelta(seconds=60)
    assert len(sim.requests(ROBOT_SEND)) == 1
    run_until_settled(dispatcher, clock)
    assert only(store, "holiday|spring|g2").status == "sent"


def test_system_busy_is_retried_three_times_then_fails_and_alerts(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    enqueue(store, [delivery("g3", settings, clock.now())], clock.now())
    sim.inject(ROBOT_SEND, errcode=-1, times=-1)
    run_until_settled(make_dispatcher(settings), clock)
    row = only(store, "holiday|spring|g3")
    assert row.status == "failed" and row.attempts == 4 and "系统繁忙" in row.last_error
    assert len(sim.requests(ROBOT_SEND)) == 4
    # Each attempt is kept with WeCom's own errmsg (its "more info" link without the query string).
    attempts = attempts_of(store, row.id)
    assert [(a.attempt, a.outcome, a.errcode) for a in attempts] == [(1, "retry", -1), (2, "retry", -1),
                                                                    (3, "retry", -1), (4, "failed", -1)]
    assert all("hint: [" in a.errmsg and "?" not in a.errmsg and "系统繁忙" in a.explanation for a in attempts)
    assert "企业微信系统繁忙（-1）" in sim.user_messages("admin1")[0]["text"]["content"]


def test_an_expired_token_is_refreshed_once_and_the_message_sent_once(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    enqueue(store, [delivery("office", settings, clock.now())], clock.now())
    sim.inject(APP_SEND, errcode=42001)
    assert make_dispatcher(settings).dispatch_due().sent == 1
    assert sim.token_fetches == 2
    assert len(sim.requests(APP_SEND)) == 2 and len(sim.user_messages("zhangwei")) == 1


def test_an_expired_token_forever_fails_without_looping(store: Store, sim: Simulator, clock: FakeClock,
                                                        make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url, admin="g0")  # the alert goes by robot, which still works
    enqueue(store, [delivery("office", settings, clock.now())], clock.now())
    sim.inject(APP_SEND, errcode=42001, times=-1)
    report = make_dispatcher(settings).dispatch_due()
    assert report.failed == 1 and report.alerts == 1
    row = only(store, "holiday|spring|office")
    assert row.status == "failed" and row.errcode == 42001 and row.attempts == 1
    assert len(sim.requests(APP_SEND)) == 2 and sim.token_fetches == 2
    assert "42001" in sim.group_messages(robot_key(0))[0]["text"]["content"]


def test_an_invalid_robot_key_fails_at_once_and_alerts_the_admins(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    sim.remove_robot(robot_key(5))
    enqueue(store, [delivery("g5", settings, clock.now())], clock.now())
    report = make_dispatcher(settings).dispatch_due()
    assert report.failed == 1 and report.failed_keys == ("holiday|spring|g5",)
    row = only(store, "holiday|spring|g5")
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("群机器人密钥无效，或机器人已被移出群聊（93000）。处理办法：")
    alert = rows_of(store, kind="alert")
    assert len(alert) == 1 and alert[0].status == "sent" and alert[0].target == "admin"
    text = sim.user_messages("admin1")[0]["text"]["content"]
    assert "推送对象「第5群」配置有误" in text and "节前廉洁提醒 → 第5群：群机器人密钥无效，或机器人已被移出群聊（93000）" in text


def test_a_failing_alert_does_not_alert_about_itself(store: Store, sim: Simulator, clock: FakeClock,
                                                     make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url, admin="g7")
    sim.remove_robot(robot_key(7))
    enqueue(store, [delivery("g7", settings, clock.now())], clock.now())
    run_until_settled(make_dispatcher(settings), clock)
    assert [(r.kind, r.status) for r in rows_of(store)] == [("holiday_notice", "failed"), ("alert", "failed")]


def test_missed_rows_from_recovery_raise_one_alert(store: Store, sim: Simulator, clock: FakeClock,
                                                   make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    dispatcher = make_dispatcher(settings)
    enqueue(store, [delivery(f"g{i}", settings, clock.now()) for i in range(3)], clock.now())
    missed = rows_of(store)
    assert dispatcher.alert_missed(missed) == 1
    assert dispatcher.alert_missed(missed) == 0  # the same rows: the same alert key
    alert = rows_of(store, kind="alert")[0]
    assert "3 条消息错过发送时间" in alert.text


def test_many_missed_rows_are_alerted_in_parts_that_each_reach_the_administrators(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    """Thirty missed nudges with the recovery's reason: twenty lines and "另有 10 条" made 2,097 bytes
    in the year benchmark, WeCom refused the alert (over 2,048), and nobody heard of them."""
    from dataclasses import replace

    settings = make_settings(sim.url)
    dispatcher = make_dispatcher(settings)
    enqueue(store, [delivery(f"g{i}", settings, clock.now()) for i in range(30)], clock.now())
    reason = "服务停止期间已超过补发时限，未发送（停机 3 小时 12 分）"
    missed = [replace(row, last_error=reason) for row in rows_of(store)]
    with store.session() as session:  # as recovery leaves them
        session.execute(update(Delivery).values(status="missed", last_error=reason))
    assert dispatcher.alert_missed(missed) >= 2
    run_until_settled(dispatcher, clock)
    alerts = rows_of(store, kind="alert")
    assert all(row.status == "sent" and len(row.text.encode()) <= 2048 for row in alerts)
    texts = [m["text"]["content"] for m in sim.user_messages("admin1")]
    assert len(texts) == len(alerts) and not any("另有" in text for text in texts)
    assert sum(text.count(reason) for text in texts) == 30


def test_a_confirmed_study_nudge_is_cancelled_not_sent(store: Store, sim: Simulator, clock: FakeClock,
                                                       make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    now = clock.now()
    nudges = [delivery("office", settings, now, name=f"s1@nudge:{b}", kind="study_nudge", item="s1",
                       meta={"branch": b}) for b in ("b1", "b2")]
    enqueue(store, nudges, now)
    with store.session() as session:
        session.add(Confirmation(item="s1", branch="b1", confirmed_by="zhangwei", confirmed_at=now, source="reply"))
    cancelled = cancel_confirmed_nudges(store, now)
    report = make_dispatcher(settings).dispatch_due()
    assert (cancelled, report.sent) == (1, 1)
    cancelled = only(store, "holiday|s1@nudge:b1|office")
    assert cancelled.status == "cancelled" and cancelled.last_error == NUDGE_CONFIRMED
    assert len(sim.user_messages("zhangwei")) == 1


def test_a_card_goes_out_as_a_button_card_and_can_be_updated(store: Store, sim: Simulator, clock: FakeClock,
                                                             make_dispatcher: MakeDispatcher) -> None:
    from bot.wecom.api import update_template_card
    settings = make_settings(sim.url)
    card = {"title": "学习提醒", "description": "请于5月15日前完成学习", "button_text": "已完成学习",
            "button_key": "confirm:s1"}
    enqueue(store, [delivery("office", settings, clock.now(), kind="study_prompt", card=card)], clock.now())
    make_dispatcher(settings).dispatch_due()
    row = only(store, "holiday|spring|office")
    message = sim.user_messages("zhangwei")[0]
    assert message["msgtype"] == "template_card"
    sent_card = message["template_card"]
    assert sent_card["card_type"] == "button_interaction" and sent_card["task_id"].startswith("wr_")
    assert sent_card["button_list"] == [{"text": "已完成学习", "style": 1, "key": "confirm:s1"}]
    assert row.response_code and row.msgid
    update_template_card(settings, row.response_code, ["zhangwei"], "已完成")
    assert sim.user_messages("zhangwei")[0]["card"]["replace_name"] == "已完成"


def test_update_template_card_raises_a_chinese_delivery_error(sim: Simulator) -> None:
    import pytest

    from bot.errors import DeliveryError
    from bot.wecom.api import update_template_card
    with pytest.raises(DeliveryError, match="更新模板卡片失败") as raised:
        update_template_card(make_settings(sim.url), "no-such-code", ["zhangwei"], "已完成")
    # A used or expired code is not a template to shorten (the send's meaning of 40058).
    assert "response_code 已使用" in str(raised.value) and "缩短" not in str(raised.value)



def test_a_recall_refused_says_it_cannot_be_recalled_not_that_a_template_is_long(sim: Simulator) -> None:
    import pytest

    from bot.errors import DeliveryError
    from bot.wecom.api import recall
    with pytest.raises(DeliveryError, match="撤回消息失败") as raised:
        recall(make_settings(sim.url), "no-such-msgid")
    assert "无法撤回" in str(raised.value) and "缩短" not in str(raised.value)

def test_a_crashed_send_is_re_sent_marked_resent_and_a_stale_attempt_cannot_overwrite(
        any_store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    enqueue(any_store, [delivery("g8", settings, clock.now())], clock.now())
    [crashed] = claim_due(any_store, clock.now(), "dead-worker", lease_seconds=60)
    assert begin_send(any_store, crashed, "dead-worker", clock.now(), lease_seconds=60)  # then it died
    clock.advance(61)
    assert make_dispatcher(settings, on=any_store).dispatch_due().sent == 1
    row = get_delivery(any_store, crashed.id)
    assert (row.status, row.attempts, row.resent) == ("sent", 2, True)
    assert len(sim.group_messages(robot_key(8))) == 1
    assert not record_outcome(any_store, crashed.id, crashed.attempts, status="failed", now=clock.now(), error="x")
    assert get_delivery(any_store, crashed.id).status == "sent"


def test_at_start_a_row_left_sending_is_released_only_when_nobody_is_dispatching(
        any_store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    enqueue(any_store, [delivery("g9", settings, clock.now())], clock.now())
    [orphan] = claim_due(any_store, clock.now(), "dead-worker", lease_seconds=600)
    assert begin_send(any_store, orphan, "dead-worker", clock.now(), lease_seconds=600)
    with try_leader_lock(any_store, DISPATCH_LOCK):  # a replica mid-pass: the row may be its
        assert release_orphaned_sends(any_store, clock.now()) == 0
    assert release_orphaned_sends(any_store, clock.now()) == 1  # nobody dispatching: it is an orphan
    assert make_dispatcher(settings, on=any_store).dispatch_due().sent == 1  # at once, not in 10 minutes
    row = get_delivery(any_store, orphan.id)
    assert (row.status, row.resent) == ("sent", True)


def test_an_ambiguous_robot_send_is_reported_when_the_config_says_so(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url, ambiguous_robot_send="report")
    enqueue(store, [delivery("g9", settings, clock.now())], clock.now())
    [crashed] = claim_due(store, clock.now(), "dead-worker", lease_seconds=60)
    assert begin_send(store, crashed, "dead-worker", clock.now(), lease_seconds=60)
    clock.advance(61)
    report = make_dispatcher(settings).dispatch_due()
    assert report.unknown_keys == ("holiday|spring|g9",)
    row = only(store, "holiday|spring|g9")
    assert row.status == "unknown" and row.last_error == AMBIGUOUS
    assert sim.requests(ROBOT_SEND) == []
    assert "1 条消息发送结果不明" in sim.user_messages("admin1")[0]["text"]["content"]


def test_without_wecom_settings_everything_goes_to_the_console(
        store: Store, clock: FakeClock, make_dispatcher: MakeDispatcher, capsys: Any) -> None:
    settings = make_settings(None)
    enqueue(store, [delivery("g1", settings, clock.now()), delivery("console", settings, clock.now())], clock.now())
    assert make_dispatcher(settings).dispatch_due().sent == 2
    out = capsys.readouterr().out
    assert "==== 发送至 第1群：节前廉洁提醒 ====" in out and "==== 发送至 控制台：节前廉洁提醒 ====" in out


def test_next_due_at_sees_pending_retry_and_abandoned_rows(store: Store, sim: Simulator, clock: FakeClock,
                                                           make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    dispatcher = make_dispatcher(settings)
    assert dispatcher.next_due_at() is None
    later = clock.now() + timedelta(hours=3)
    enqueue(store, [delivery("g1", settings, later)], clock.now())
    assert dispatcher.next_due_at() == later
    enqueue(store, [delivery("g2", settings, clock.now(), name="now")], clock.now())
    sim.inject(ROBOT_SEND, http_status=500)
    dispatcher.dispatch_due()
    retry_at = only(store, "holiday|now|g2").next_attempt_at
    assert dispatcher.next_due_at() == retry_at < later


def test_deliver_now_returns_final_rows(store: Store, start_sim: Callable[..., Simulator]) -> None:
    from bot.clock import SystemClock
    sim = start_sim()
    settings = make_settings(sim.url)
    clock = SystemClock()
    enqueue(store, [delivery("g1", settings, clock.now()), delivery("office", settings, clock.now())], clock.now())
    sim.inject(ROBOT_SEND, http_status=503)
    rows = deliver_now(store, settings, clock, ["holiday|spring|office", "holiday|spring|g1"], timeout=10)
    assert [(r.target, r.status) for r in rows] == [("office", "sent"), ("g1", "sent")]
    assert rows[1].attempts == 2


def test_a_send_recorded_while_the_database_is_busy_is_not_sent_again(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    """SQLite answered 'database is locked' (a writer starved of the GIL held the lock past the busy
    timeout) as a batch's outcomes were recorded: they were dropped, the rows stayed 'sending', and
    each was sent again when its lease ran out. The year benchmark saw 44 such duplicates."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.exc import OperationalError

    settings = make_settings(sim.url)
    enqueue(store, [delivery(f"g{i}", settings, clock.now()) for i in range(3)], clock.now())
    refusals = []

    def busy_once(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO delivery_attempts") and len(refusals) < 2:
            refusals.append(statement)
            raise OperationalError(statement, None, sqlite3.OperationalError("database is locked"))

    event.listen(Engine, "before_cursor_execute", busy_once)
    try:
        report = make_dispatcher(settings).dispatch_due()
    finally:
        event.remove(Engine, "before_cursor_execute", busy_once)
    assert len(refusals) == 2 and report.sent == 3
    assert [row.status for row in rows_of(store)] == ["sent"] * 3
    clock.advance(3600)  # long past any lease
    assert make_dispatcher(settings).dispatch_due().sent == 0
    for i in range(3):
        assert len(sim.group_messages(robot_key(i))) == 1
