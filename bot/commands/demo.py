"""`wecom-reminder demo`: the built-in WeCom simulator and the service together, no credentials needed."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from bot.clock import BEIJING, SystemClock
from bot.commands.demo_today import demo_item, holiday_notice_context, open_items
from bot.config import AppTarget, RobotTarget, Settings, load_settings
from bot.errors import BotError, ConfigError
from bot.rules.studies import StudyItem
from bot.runtime import Runtime
from bot.simulator import Simulator, SimulatorSettings
from bot.simulator.app import serve_simulator
from bot.store.confirmations import confirm, count_confirmations

log = logging.getLogger(__name__)
START_DELAY = timedelta(seconds=3)  # the demo's first messages are due a moment after start: on time, not late


def simulator_settings(settings: Settings) -> SimulatorSettings:
    """The simulator's world from the config: its robots, its users, the bot's callback URL."""
    if settings.wecom is None:
        raise ConfigError("配置文件中没有 wecom 部分，无法启动模拟器", file=settings.source,
                          fix="参照 config.example.yaml 补上 wecom 部分")
    targets = settings.all_targets()
    robots = {t.key.get_secret_value(): t.title or name for name, t in targets.items() if isinstance(t, RobotTarget)}
    users = {b.secretary.userid: b.secretary.name for b in settings.organisation.branches}
    for target in targets.values():
        if isinstance(target, AppTarget):
            # A one-person target's title names that person's role ("党办纪检工作人员"); else the userid.
            alone = target.title if len(target.users) == 1 and target.title else None
            users.update({u: users.get(u) or alone or u for u in target.users})
    wecom = settings.wecom
    return SimulatorSettings(
        corp_id=wecom.corp_id, secret=wecom.secret.get_secret_value(), agent_id=wecom.agent_id,
        callback_token=wecom.callback.token.get_secret_value(),
        encoding_aes_key=wecom.callback.encoding_aes_key.get_secret_value(),
        callback_url=f"http://{settings.server.listen}/wecom/callback", robots=robots, users=users,
        **_simulated_aibot(settings))


def _simulated_aibot(settings: Settings) -> dict[str, Any]:
    """The 智能机器人, when the config points it at this machine (the demo's ws://127.0.0.1:9001)."""
    aibot = settings.aibot
    parsed = urlparse(aibot.ws_url) if aibot else None
    if aibot is None or parsed is None or parsed.hostname not in ("127.0.0.1", "localhost"):
        return {}
    return {"aibot_bots": {aibot.bot_id: aibot.secret.get_secret_value()}, "aibot_port": parsed.port or 0}


def simulator_address(settings: Settings) -> tuple[str, int]:
    parsed = urlparse(settings.wecom.api_base if settings.wecom else "")
    if parsed.hostname not in ("127.0.0.1", "localhost") or not parsed.port:
        raise ConfigError("模拟器只能在本机运行，而 wecom.api_base 不是本机地址", file=settings.source,
                          key="wecom.api_base", fix="把 api_base 设为 http://127.0.0.1:9000 这样的本机地址")
    return parsed.hostname, parsed.port


def serve_simulator_for(settings: Settings) -> None:
    host, port = simulator_address(settings)
    print(f"企业微信模拟器：http://{host}:{port}/")
    serve_simulator(simulator_settings(settings), host, port)


def run_demo(config: str, welcome: bool) -> int:
    from bot.commands.server import ensure_listen_free, serve

    settings = load_settings(config)
    ensure_listen_free(settings)
    host, port = simulator_address(settings)
    simulator = Simulator(simulator_settings(settings))
    try:
        simulator.start(host, port)
    except (OSError, SystemExit):
        raise BotError(f"无法在 {host}:{port} 启动模拟器：端口已被占用。处理办法：停止占用该端口的程序"
                       "（可能是另一个正在运行的演示），或修改配置中的 wecom.api_base 端口") from None
    runtime = Runtime(config, SystemClock())
    demo = ensure_open_item(runtime)  # with or without the welcome: a first 已学习 confirms an open item
    if welcome:
        welcome_today(runtime, demo)
    seed_past_confirmations(runtime)
    command = sys.argv[0] if sys.argv[0].endswith("wecom-reminder") else "wecom-reminder"
    print(DEMO_BANNER.format(sim=f"http://{host}:{port}/", listen=settings.server.listen, config=config,
                             command=command))
    try:
        return serve(runtime)
    finally:
        simulator.stop()


def ensure_open_item(runtime: Runtime) -> StudyItem | None:
    """When no study item is open, one made for the demo, published now (so a reply at once finds it
    open; the service's first plan sends its prompt, within the grace window); None when one is open."""
    schedule, now = runtime.studies(), runtime.clock.now()
    if schedule is None or open_items(schedule, now):
        return None
    item = demo_item(schedule, runtime.calendar(), now)
    runtime.add_study_items((item,))
    return item


def welcome_today(runtime: Runtime, demo: StudyItem | None) -> None:
    """Today's messages, due a moment after start (so on time, not "late"): the next holiday's notice
    to the groups, and the prompt of the study item open today (``demo``, if one was made for it)."""
    from bot.commands.manual import enqueue_manual
    settings, now = runtime.settings(), runtime.clock.now()
    soon = now + START_DELAY
    groups = [name for name, t in settings.targets.items() if isinstance(t, RobotTarget)]
    context = holiday_notice_context(runtime.calendar(), now.astimezone(BEIJING).date(), settings.organisation.name)
    enqueue_manual(runtime, "holiday_integrity", groups, soon, context=context)
    secretaries = [b.secretary_target for b in settings.organisation.branches]
    if runtime.studies() is None:
        return
    if demo is None:  # a real item is open: its prompt again
        enqueue_manual(runtime, "study_prompt", secretaries, soon, latest=True)
    elif not runtime.calendar().is_workday(now.astimezone(BEIJING).date()):
        # The demo item's planned prompt waits for the next working day on a day off; show it now as well.
        enqueue_manual(runtime, "study_prompt", secretaries, soon)


def seed_past_confirmations(runtime: Runtime) -> None:
    """Demo data: branches confirmed every item whose deadline has passed, two days before it.

    Only into an empty ledger, and marked as demo data, so a newcomer's 已学习 confirms the open item
    (on time) and the ledger has a history to look at.
    """
    schedule, settings, now = runtime.studies(), runtime.settings(), runtime.clock.now()
    if schedule is None or count_confirmations(runtime.store):
        return
    past = sorted((i for i in schedule.items if i.deadline <= now), key=lambda i: i.publish_at)
    ledger_log = logging.getLogger("bot.store.confirmations")
    level, count = ledger_log.level, 0
    ledger_log.setLevel(logging.WARNING)  # one line for the lot, not one per confirmation
    try:
        for item in past:
            for branch in item.branches(settings):
                confirm(runtime.store, item.id, branch.id, branch.secretary.userid, item.deadline - timedelta(days=2),
                        "manual", note="演示数据", recorded_by="demo", deadline=item.deadline)
                count += 1
    finally:
        ledger_log.setLevel(level)
    if count:
        log.info("已写入演示数据：往期学习确认 %d 条（标注为“演示数据”）", count)


DEMO_BANNER = """
==============================================================
 wecom-reminder 演示已启动（配置：{config}）
 企业微信模拟器：{sim}
   打开后可看到各支部群收到的消息；进入支部书记（如 张伟）的会话，
   回复“已学习”即可确认学习，并看到应用的自动回复；也可进入支部群页面，
   以书记身份 @机器人 发送“已学习”（需配置 aibot，示例配置已配好）。
 管理后台：http://{listen}/admin
   先另开终端运行：{command} --config {config} admin create 管理员
 按 Ctrl+C 停止。
==============================================================
"""
