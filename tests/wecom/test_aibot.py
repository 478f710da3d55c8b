"""The 智能机器人 over its long connection, end to end over loopback against the simulator's WebSocket
endpoint: subscribe, confirm in a group, duplicates, card clicks, reconnects, kicks and takeover."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import pytest
from fakes import AIBOT_ID, AIBOT_SECRET, FAST_AIBOT, ROOT, configure_aibot, wait_for
from sqlalchemy import select

from bot.cli import main
from bot.clock import BEIJING, FakeClock
from bot.inbox.group_bot import GroupBotKeeper, RunningGroupBot
from bot.runtime import Runtime
from bot.simulator.aibot_ws import AibotServer
from bot.store.aibot import bind_chat, card_items, learn_chat, learnt_chats
from bot.store.models import Confirmation, Delivery
from bot.store.template_versions import save_version
from bot.wecom.aibot_frames import strip_mentions

GROUP = "wrcgroupb1"
# Another replica of the service: a process that holds the AI bot's connection until killed.
REPLICA = """
import json, sys, threading
from bot.clock import SystemClock
from bot.inbox.group_bot import RunningGroupBot
from bot.runtime import Runtime
from bot.wecom.aibot import Timing
RunningGroupBot(Runtime(sys.argv[1], SystemClock()), Timing(**json.loads(sys.argv[2]))).start()
threading.Event().wait()
"""
ITEM = "jsjy-2026-05"


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if getattr(request, "param", "sqlite") == "sqlite":
        return f"sqlite:///{tmp_path}/data/bot.sqlite3"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def sim() -> Iterator[AibotServer]:
    server = AibotServer({AIBOT_ID: AIBOT_SECRET})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def runtime(project: Path, sim: AibotServer, db_url: str) -> Iterator[Runtime]:
    configure_aibot(project, sim.url, db_url)
    opened = Runtime(project, FakeClock(datetime(2026, 5, 11, 9, 30, tzinfo=BEIJING)))
    yield opened
    opened.close()


@pytest.fixture
def running(runtime: Runtime) -> Iterator[RunningGroupBot]:
    bot = RunningGroupBot(runtime, FAST_AIBOT).start()
    wait_for(lambda: bot.client.state == "subscribed")
    yield bot
    bot.stop()


def reply_text(sim: AibotServer, req_id: str | None) -> str:
    assert req_id is not None
    wait_for(lambda: sim.replies(req_id))
    (reply,) = sim.replies(req_id)
    return reply["stream"]["content"]


def pushed_keys(sim: AibotServer) -> list[str]:
    return [e["card"]["button_list"][0]["key"] for e in sim.transcript(GROUP) if e["kind"] == "push"]


def confirmations(runtime: Runtime) -> list[tuple[str, str, str]]:
    """(branch, confirmed_by, source) of each confirmation of ITEM."""
    query = select(Confirmation.branch, Confirmation.confirmed_by, Confirmation.source).where(Confirmation.item == ITEM)
    with runtime.store.session(readonly=True) as session:
        return [tuple(row) for row in session.execute(query).all()]


def test_mentions_are_stripped_before_matching() -> None:
    assert strip_mentions("@机器人 已学习") == "已学习"
    assert strip_mentions("@学习助手\u2005第5期已学习 @张伟") == "第5期已学习"
    assert strip_mentions("已学习") == "已学习"


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_secretary_confirms_in_the_group_and_the_report_shows_it(
        running: RunningGroupBot, sim: AibotServer, runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    assert sim.subscriptions == running.client.subscriptions >= 1
    req_id = sim.mention(GROUP, "zhangwei", "第5期已学习")
    answer = reply_text(sim, req_id)
    assert "已记录" in answer and "2026年第5期" in answer
    assert confirmations(runtime) == [("b1", "zhangwei", "reply")]
    assert [(c.chatid, c.chat_type, c.first_user, c.branch) for c in learnt_chats(runtime.store)] == [
        (GROUP, "group", "zhangwei", None)]

    assert main(["--config", str(runtime.config_path), "report", "--item", ITEM, "--json"]) == 0
    rows = {r["branch"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["b1"]["status"] == "confirmed" and rows["b1"]["confirmed_by"] == "张伟"


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_repeated_msgid_confirms_nothing_and_is_answered_at_most_once(
        running: RunningGroupBot, sim: AibotServer, runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.inbox.group_bot")
    first = sim.mention(GROUP, "zhangwei", "第5期已学习")
    assert "已记录" in reply_text(sim, first)
    assert first is not None
    again = sim.repeat(first)
    wait_for(lambda: "重复推送" in caplog.text)
    # After a restart (a new process: nothing in memory) the same msgid is still known.
    running.stop()
    restarted = RunningGroupBot(runtime, FAST_AIBOT).start()
    try:
        wait_for(lambda: restarted.client.state == "subscribed")
        caplog.clear()
        third = sim.repeat(first)
        wait_for(lambda: "重复推送" in caplog.text)
    finally:
        restarted.stop()
    assert again is not None and third is not None
    assert sim.replies(again) == [] and sim.replies(third) == [] and len(sim.replies(first)) == 1
    assert len(confirmations(runtime)) == 1


def test_someone_who_is_no_secretary_gets_the_polite_refusal(running: RunningGroupBot, sim: AibotServer,
                                                              runtime: Runtime) -> None:
    answer = reply_text(sim, sim.mention(GROUP, "liming", "已学习"))
    assert "不在支部书记名单中" in answer and "未作记录" in answer
    assert confirmations(runtime) == []


def test_a_bound_group_gets_a_card_and_a_click_confirms_and_updates_it(running: RunningGroupBot,
                                                                       sim: AibotServer, runtime: Runtime) -> None:
    reply_text(sim, sim.mention(GROUP, "lina", "进度"))  # the group is learnt from its first message
    bind_chat(runtime.store, GROUP, "b2", "管理员", runtime.clock.now())
    # Pushed at a heartbeat: the open item, and last month's, overdue but still worth confirming (late)
    wait_for(lambda: len(pushed_keys(sim)) == 2)
    assert pushed_keys(sim) == ["confirm:jsjy-2026-04", f"confirm:{ITEM}"]
    task_id = [e for e in sim.transcript(GROUP) if e["kind"] == "push"][1]["task_id"]

    req_id = sim.click(GROUP, "lina", task_id, f"confirm:{ITEM}")
    assert req_id is not None
    # The simulator accepts a card update only within 5 s of the click (errcode 846608 after).
    wait_for(lambda: sim.replies(req_id))
    (update,) = sim.replies(req_id)
    assert update["response_type"] == "update_template_card" and update["userids"] == ["lina"]
    seen = sim.cards[task_id]["seen_by"]["lina"]
    assert seen["task_id"] == task_id and seen["button_list"][0]["text"] == "已完成 05-11 09:30"
    assert "已记录" in seen["sub_title_text"]
    assert confirmations(runtime) == [("b2", "lina", "button")]
    # Confirmed: the next heartbeats push nothing more to this group.
    pings = sim.pings
    wait_for(lambda: sim.pings >= pings + 2)
    assert len(pushed_keys(sim)) == 2


def test_it_subscribes_again_after_the_server_closes_with_1000(running: RunningGroupBot, sim: AibotServer) -> None:
    before = running.client.subscriptions
    sim.close(1000)
    wait_for(lambda: running.client.subscriptions > before and sim.connected())
    before = running.client.subscriptions
    sim.close(1011, "internal error")
    wait_for(lambda: running.client.subscriptions > before and sim.connected())
    assert reply_text(sim, sim.mention(GROUP, "wangfang", "已学习"))  # and works on the new connection


def test_it_reconnects_when_heartbeats_go_unanswered(running: RunningGroupBot, sim: AibotServer) -> None:
    sim.answer_heartbeats(False)
    wait_for(lambda: running.client.subscriptions >= 2)
    sim.answer_heartbeats(True)
    wait_for(lambda: running.client.state == "subscribed" and sim.connected())


def test_after_a_kick_it_stops_and_tells_the_administrators(running: RunningGroupBot, sim: AibotServer,
                                                            runtime: Runtime) -> None:
    before = sim.subscriptions
    sim.kick()
    wait_for(lambda: running.client.state == "kicked")
    # Nor does another replica of ours take the bot back: the kicked one keeps the lock.
    standby = RunningGroupBot(runtime, FAST_AIBOT).start()
    try:
        wait_for(lambda: standby.client.lock_attempts >= 3)
        assert standby.client.state == "standby" and standby.client.subscriptions == 0
    finally:
        standby.stop()
    assert running.client.state == "kicked" and sim.subscriptions == before and not sim.connected()
    with runtime.store.session(readonly=True) as session:
        alerts = list(session.scalars(select(Delivery.text).where(Delivery.kind == "alert")))
    assert len(alerts) == 1 and "智能机器人长连接已被取代" in alerts[0]


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_a_second_replica_takes_over_when_the_holder_dies(runtime: Runtime, sim: AibotServer) -> None:
    holder = subprocess.Popen([sys.executable, "-c", REPLICA, str(runtime.config_path), json.dumps(asdict(FAST_AIBOT))],
                              cwd=ROOT)
    try:
        wait_for(lambda: sim.subscriptions >= 1, 30)
        standby = RunningGroupBot(runtime, FAST_AIBOT).start()
        try:
            wait_for(lambda: standby.client.state == "standby")
            assert standby.client.subscriptions == 0  # the lock keeps the second replica off the connection
            holder.kill()
            holder.wait(10)
            wait_for(lambda: standby.client.state == "subscribed" and standby.client.subscriptions >= 1)
            assert "已记录" in reply_text(sim, sim.mention(GROUP, "zhangwei", "第5期已学习"))
        finally:
            standby.stop()
    finally:
        holder.kill()
        holder.wait(10)


def test_a_refused_push_is_retried_once_someone_speaks_in_the_group(running: RunningGroupBot, sim: AibotServer,
                                                                    runtime: Runtime) -> None:
    """The service remembers a group the simulator (restarted, say) does not: 93006 until someone
    @-mentions the bot there again; the card is not recorded as pushed meanwhile."""
    with runtime.store.session() as session:
        learn_chat(session, GROUP, "group", "zhangwei", runtime.clock.now())
    bind_chat(runtime.store, GROUP, "b3", "管理员", runtime.clock.now())
    pings = sim.pings
    wait_for(lambda: sim.pings >= pings + 3)
    assert card_items(runtime.store) == set() and sim.transcript(GROUP) == []
    reply_text(sim, sim.mention(GROUP, "wangfang", "进度"))
    wait_for(lambda: len(pushed_keys(sim)) == 2)
    assert card_items(runtime.store) == {(GROUP, ITEM), (GROUP, "jsjy-2026-04")}


def test_the_group_card_is_the_study_prompt_template_as_an_administrator_saved_it(
        running: RunningGroupBot, sim: AibotServer, runtime: Runtime) -> None:
    """A line added to study_prompt in the console reaches the group's card, with the card's title, fields and
    button from the template's front matter (as the app's card to the secretary)."""
    shipped = (runtime.settings().path("messages") / "study_prompt.j2").read_text(encoding="utf-8")
    edited = shipped.replace("学习完成后，", "请各位党员带上笔记本。\n学习完成后，")
    save_version(runtime.store, "study_prompt", edited, "管理员", runtime.clock.now(), before=shipped)
    reply_text(sim, sim.mention(GROUP, "lina", "进度"))
    bind_chat(runtime.store, GROUP, "b2", "管理员", runtime.clock.now())
    wait_for(lambda: len(pushed_keys(sim)) == 2)
    card = [e["card"] for e in sim.transcript(GROUP) if e["kind"] == "push"][1]
    assert "请各位党员带上笔记本。" in card["sub_title_text"] and card["sub_title_text"].startswith("李娜同志：")
    assert card["main_title"]["title"].startswith("学习提醒：") and card["button_list"][0]["text"] == "已完成学习"
    assert [row["keyname"] for row in card["horizontal_content_list"]][:1] == ["截止时间"]
    assert card["sub_title_text"].endswith("尚未完成的学习事项。")  # whole, within the card's 160 characters


def test_a_corrected_aibot_secret_takes_effect_without_a_restart(project: Path, sim: AibotServer, db_url: str) -> None:
    """The administrator pasted the wrong secret; WeCom refuses the subscription. Correcting it in
    config.yaml reconnects within the file watch, as every other setting takes effect."""
    configure_aibot(project, sim.url, db_url)
    project.write_text(project.read_text(encoding="utf-8").replace(AIBOT_SECRET, "secret-pasted-wrong"),
                       encoding="utf-8")
    runtime = Runtime(project, FakeClock(datetime(2026, 5, 11, 9, 30, tzinfo=BEIJING)))
    keeper = GroupBotKeeper(runtime, FAST_AIBOT)
    try:
        keeper.follow()
        wait_for(lambda: _alerted(runtime, "智能机器人订阅被拒绝"))  # the administrators hear of it
        assert sim.subscriptions == 0 and sim.mention(GROUP, "zhangwei", "第5期已学习") is None
        project.write_text(project.read_text(encoding="utf-8").replace("secret-pasted-wrong", AIBOT_SECRET),
                           encoding="utf-8")
        assert runtime.reload_if_changed()  # what the service's file watch does every 5 s
        assert keeper.running is not None
        wait_for(lambda: keeper.running is not None and keeper.running.client.state == "subscribed")
        assert "已记录" in reply_text(sim, sim.mention(GROUP, "zhangwei", "第5期已学习"))
        assert confirmations(runtime) == [("b1", "zhangwei", "reply")]
        # Removed from the config: the connection is closed, nothing answers in the group.
        project.write_text(project.read_text(encoding="utf-8").split("\naibot:")[0] + "\n", encoding="utf-8")
        assert runtime.reload_if_changed() and keeper.running is None
        wait_for(lambda: not sim.connected())
    finally:
        keeper.stop()
        runtime.close()


def _alerted(runtime: Runtime, title: str) -> bool:
    with runtime.store.session(readonly=True) as session:
        return bool(session.scalar(select(Delivery.id).where(Delivery.kind == "alert", Delivery.text.contains(title))))
