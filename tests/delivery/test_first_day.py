"""Issue 10: the configuration errors of a first deployment, each against the simulator playing
that tenant. Each fails its delivery at once (no retry storm) with one Chinese cause and fix."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fakes import APP_SEND, delivery, enqueue, make_settings, robot_key, run_until_settled

from bot.clock import FakeClock
from bot.delivery.dispatcher import Dispatcher
from bot.simulator import Simulator
from bot.store.db import Store, open_store
from bot.store.queries import list_deliveries, unheard_alerts

MakeDispatcher = Callable[..., Dispatcher]
CARD = {"title": "学习提醒", "description": "请于5月15日前完成学习", "button_text": "已完成学习",
        "button_key": "confirm:s1"}


def send_one(store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher, target: str,
             settings: Any = None, **changes: Any) -> Any:
    settings = settings or make_settings(sim.url)
    enqueue(store, [delivery(target, settings, clock.now(), **changes)], clock.now())
    make_dispatcher(settings, on=store).dispatch_due()
    return next(r for r in list_deliveries(store, limit=100) if r.key == f"holiday|spring|{target}")


def assert_configuration_error(row: Any, errcode: int, *fix: str) -> None:
    assert (row.status, row.attempts, row.errcode) == ("failed", 1, errcode)
    assert f"（{errcode}）" in row.last_error and "处理办法：" in row.last_error
    for words in fix:
        assert words in row.last_error


TENANTS: dict[int, tuple[dict[str, Any], str, dict[str, Any], tuple[str, ...]]] = {
    60020: ({"untrusted_ip": True}, "office", {}, ("企业可信IP", "127.0.0.1")),
    43012: ({"no_callback": True}, "office", {"card": CARD}, ("接收消息", "设置API接收")),
    301002: ({"agent_mismatch": True}, "office", {}, ("wecom.agent_id", "wecom.secret")),
    48002: ({"forbidden": {APP_SEND}}, "office", {}, ("应用管理",)),
    81013: ({"hidden_users": {"zhangwei", "lina"}}, "office", {}, ("可见范围",)),
    40058: ({"too_long": True}, "g3", {}, ("模板",)),
}


@pytest.mark.parametrize("errcode", sorted(TENANTS))
def test_the_tenant_mistake_fails_at_once_with_cause_and_fix(
        errcode: int, store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    switches, target, changes, fix = TENANTS[errcode]
    sim.play_tenant(**switches)
    row = send_one(store, sim, clock, make_dispatcher, target, **changes)
    assert_configuration_error(row, errcode, *fix)


def test_a_removed_robot_fails_at_once_and_the_alert_says_where_to_fix_it(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    sim.remove_robot(robot_key(4))
    row = send_one(store, sim, clock, make_dispatcher, "g4")
    assert_configuration_error(row, 93000, "群机器人", "key")
    alert = sim.user_messages("admin1")[0]["text"]["content"]
    assert "第4群" in alert and "群设置 → 群机器人" in alert


def test_a_wrong_agent_id_fails_at_once(store: Store, sim: Simulator, clock: FakeClock,
                                        make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url, agent_id=1000099)
    row = send_one(store, sim, clock, make_dispatcher, "office", settings)
    assert_configuration_error(row, 40056, "AgentId", "wecom.agent_id")


def test_a_task_id_reused_after_a_database_reset_fails_at_once(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher, tmp_path: Any) -> None:
    first = send_one(store, sim, clock, make_dispatcher, "office", card=CARD, kind="study_prompt")
    assert first.status == "sent"
    # A fresh database at the same instant re-plans the same row (same task_id), with an edited text.
    reset = open_store(f"sqlite:///{tmp_path}/reset.sqlite3")
    try:
        row = send_one(reset, sim, clock, make_dispatcher, "office", card={**CARD, "description": "改过的说明"},
                       kind="study_prompt")
    finally:
        reset.close()
    assert_configuration_error(row, 42014, "task_id")


# ---- alerts that survive the channel that failed ---------------------------------------------


def alerts_of(store: Store) -> list[Any]:
    return [r for r in list_deliveries(store, limit=100, order="asc") if r.kind == "alert"]


def test_an_alert_goes_to_the_next_admin_target_when_the_app_is_blocked(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url, admin=["admin", "g9"])
    sim.play_tenant(untrusted_ip=True)
    enqueue(store, [delivery("office", settings, clock.now(), name=f"m{i}") for i in range(3)], clock.now())
    dispatcher = make_dispatcher(settings)
    run_until_settled(dispatcher, clock)
    assert [(r.target, r.status) for r in alerts_of(store)] == [("admin", "failed"), ("g9", "sent")]
    [message] = sim.group_messages(robot_key(9))
    assert "企业可信IP" in message["text"]["content"] and "127.0.0.1" in message["text"]["content"]
    assert unheard_alerts(store, "alert", clock.now() - timedelta(days=1)) == 0
    # The same cause for the same target later that day: the administrators were told already.
    clock.advance(3600)
    enqueue(store, [delivery("office", settings, clock.now(), name="later")], clock.now())
    run_until_settled(dispatcher, clock)
    assert len(alerts_of(store)) == 2 and len(sim.group_messages(robot_key(9))) == 1


def test_the_overdue_report_goes_to_the_next_admin_target_when_the_app_is_blocked(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url, admin=["admin", "g9"])
    sim.play_tenant(untrusted_ip=True)
    overdue = delivery("admin", settings, clock.now(), name="s1@overdue", rule="studies", kind="study_overdue",
                       item="s1", title="逾期未学通报", text="《警示教育通报》第1期：第二党支部逾期未完成")
    enqueue(store, [overdue], clock.now())
    run_until_settled(make_dispatcher(settings), clock)
    rows = [r for r in list_deliveries(store, limit=100, order="asc") if r.kind == "study_overdue"]
    assert [(r.target, r.status) for r in rows] == [("admin", "failed"), ("g9", "sent")]
    [message] = sim.group_messages(robot_key(9))
    assert "第二党支部逾期未完成" in message["text"]["content"]
    assert rows[1].item == "s1"


def test_when_no_admin_target_works_the_console_and_healthz_are_told(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url, admin=["admin", "g9"])
    sim.play_tenant(untrusted_ip=True)
    sim.remove_robot(robot_key(9))
    enqueue(store, [delivery("office", settings, clock.now())], clock.now())
    run_until_settled(make_dispatcher(settings), clock)
    assert [(r.target, r.status) for r in alerts_of(store)] == [("admin", "failed"), ("g9", "failed")]
    assert unheard_alerts(store, "alert", clock.now() - timedelta(days=1)) == 1


def test_a_transient_failure_at_the_first_admin_target_does_not_hold_the_alert(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url, admin=["admin", "g9"])
    sim.remove_robot(robot_key(2))
    sim.inject(APP_SEND, http_status=502, times=-1)
    enqueue(store, [delivery("g2", settings, clock.now())], clock.now())
    make_dispatcher(settings).dispatch_due()
    assert [(r.target, r.status, r.attempts) for r in alerts_of(store)] == [("admin", "failed", 1), ("g9", "sent", 1)]


# ---- limits per channel, mentions ------------------------------------------------------------


def test_the_sender_refuses_what_the_channel_cannot_carry_before_calling_wecom(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    body = "## 节前提醒\n" + "严" * 1000  # ~3,000 bytes: too long for the app, fine for a robot
    row = send_one(store, sim, clock, make_dispatcher, "office", settings, msgtype="markdown", text=body)
    assert (row.status, row.attempts) == ("failed", 1) and "应用消息 markdown 消息 2048 字节" in row.last_error
    assert not [r for r in sim.requests(APP_SEND) if "## 节前提醒" in r.body.decode()]  # WeCom never saw it
    row = send_one(store, sim, clock, make_dispatcher, "g1", settings, msgtype="markdown", text=body)
    assert row.status == "sent"


def test_a_robot_markdown_mentions_people_inside_its_content(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    data = settings.model_dump()
    data["targets"]["g1"]["mentioned_list"] = ["zhangwei", "lina"]
    data["targets"]["g1"]["key"] = robot_key(1)
    data["wecom"]["secret"] = settings.wecom.secret.get_secret_value()  # type: ignore[union-attr]
    data["wecom"]["callback"] = {"token": "tok", "encoding_aes_key": "a" * 43}
    settings = type(settings).model_validate(data)
    row = send_one(store, sim, clock, make_dispatcher, "g1", settings, msgtype="markdown", text="**节前提醒**")
    assert row.status == "sent"
    [message] = sim.group_messages(robot_key(1))
    assert message["markdown"]["content"] == "**节前提醒**\n<@zhangwei> <@lina>"
    assert "mentioned_list" not in message["markdown"]
