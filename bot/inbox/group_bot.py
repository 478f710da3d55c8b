"""Confirmation in the group: the AI bot's callbacks answered like app replies, and study cards.

A secretary's "@机器人 已学习" in a group arrives over the long connection (bot.wecom.aibot). It
goes through the same inbox writer and responder as a reply to the app (bot.inbox.callback): the same
phrases, the same ledger, the same polite refusal to someone who is no secretary. The inbox's
unique key (``aibot:<msgid>``) makes a repeated callback, or one after a restart, confirm nothing;
it is answered only when it was new, so a msgid is answered at most once. The first message heard
in a conversation records its chatid (the only way to learn it); an administrator binds a learnt
group to a branch in the console, and from then on the branch's open study items are pushed there
as button cards. A click confirms for the clicker's branch, and the card is updated for the
clicker with ``aibot_respond_update_msg`` at once (WeCom allows 5 s). Every conversation gets at
most 30 of our messages a minute and 1,000 an hour (WeCom's limits); beyond them a reply is
dropped (logged) and a card waits for the next heartbeat.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from bot.delivery.alerts import raise_alert
from bot.delivery.ratelimit import MemberQuota
from bot.inbox.callback import CallbackContext, after_answer, answerer, done_label
from bot.inbox.responder import roster
from bot.inbox.writer import Answer, Inbound, InboxWriter, NotRecorded, Recorded
from bot.rules.studies import StudyItem, confirm_key, prompt_context
from bot.store.aibot import bound_chats, card_items, claim_card, learn_chat, record_card_errcode, release_card
from bot.store.confirmations import confirmed_pairs
from bot.templates.card import RenderedCard
from bot.wecom.aibot import AibotClient, Link, LinkDead, Refused, Timing
from bot.wecom.aibot_frames import Frame, callback_fields, card_push, card_update, req_id_of, text_reply

if TYPE_CHECKING:
    from bot.config import AibotSettings
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

CLICK_ANSWER_WITHIN = 4.0        # WeCom waits 5 s for a card click's update
TEXT_ANSWER_WITHIN = 30.0        # a text callback's req_id stays valid for minutes
LATE_CARDS_FOR = timedelta(days=30)  # past its deadline an item is still worth confirming (late) this long


def inbound_of(message: Frame) -> Inbound | None:
    """A callback frame as the reply path's Inbound; None for what we do not answer (enter_chat …)."""
    read = callback_fields(message)
    return None if read is None else Inbound(read[0], read[2], key=read[1])


def group_card(ctx: CallbackContext, item: StudyItem, branch_id: str) -> dict[str, Any] | None:
    """The study prompt's card for a branch's group: rendered from the same template and context as the
    app's card to its secretary (what an administrator edits), with the button that confirms the item."""
    settings = ctx.settings()
    branch = next((b for b in settings.organisation.branches if b.id == branch_id), None)
    if branch is None:
        return None
    message = ctx.templates().render(settings.studies.prompt_template, prompt_context(item, branch, settings,
                                                                                       ctx.calendar()))
    card = message.card or RenderedCard(message.title, message.text, (), "已完成")
    return card.as_dict(confirm_key(item.id))


class GroupBot:
    """The AI bot's side of the service: the handler the connection (bot.wecom.aibot) calls."""

    def __init__(self, ctx: CallbackContext, quota: MemberQuota | None = None) -> None:
        self.ctx = ctx
        self.writer = InboxWriter(ctx.store, self._prepare)
        self.quota = quota or MemberQuota()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="aibot-answer")
        self._refused: set[int] = set()
        self._unreachable: set[str] = set()  # chats WeCom refused a push to, until someone speaks there
        self._pushing = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.writer.close()

    # ---- the connection's events ----------------------------------------------------------------

    def on_subscribed(self, link: Link) -> None:
        self._pool.submit(self._guarded, self.push_cards, link)

    def on_heartbeat(self, link: Link) -> None:
        self._pool.submit(self._guarded, self.push_cards, link)

    def on_callback(self, link: Link, message: Frame) -> None:
        # Never on the connection's thread: recording waits for a commit, the loop must keep reading.
        self._pool.submit(self._guarded, self.answer, link, message)

    def on_kicked(self) -> None:
        now = self.ctx.clock.now()
        raise_alert(self.ctx.store, self.ctx.settings(), now, f"智能机器人长连接已被取代（{now:%m-%d %H:%M}）",
                    ["另一程序使用同一智能机器人（bot_id）建立了长连接，企业微信断开了本服务的连接"],
                    "确认只有本服务使用该智能机器人后，重启服务以恢复群内确认；本服务不会自动重连，以免双方互相挤占", [])
        self.ctx.request_replan()  # wakes the dispatcher to send the alert

    def on_refused(self, error: Refused) -> None:
        if error.errcode in self._refused:
            return  # once per kind of refusal; the watchdog keeps trying with backoff
        self._refused.add(error.errcode)
        raise_alert(self.ctx.store, self.ctx.settings(), self.ctx.clock.now(), "智能机器人订阅被拒绝",
                    [f"企业微信返回错误码 {error.errcode}"],
                    "检查配置中 aibot.bot_id 与 aibot.secret 是否与管理后台「智能机器人 → API 模式」一致", [])
        self.ctx.request_replan()

    # ---- answering ----------------------------------------------------------------------------

    def answer(self, link: Link, message: Frame) -> None:
        inbound = inbound_of(message)
        if inbound is None:
            return
        self._unreachable.discard(inbound.get("ChatId"))
        within = CLICK_ANSWER_WITHIN if inbound.is_card_click else TEXT_ANSWER_WITHIN
        try:
            recorded = self.writer.record(inbound, self.ctx.clock.now(), timeout=within)
        except NotRecorded:
            log.exception("智能机器人回调 %s 未能记录，未答复", inbound.dedupe_key)
            return
        if not recorded.fresh:
            log.info("智能机器人回调 %s 重复推送，已记录过，不再答复", inbound.dedupe_key)
            return
        if recorded.outcome is not None:
            after_answer(self.ctx, inbound, recorded.outcome)
        if recorded.reply and self._within_quota(inbound):
            link.send(self._reply_frame(inbound, recorded, req_id_of(message)))
        log.info("已在%s答复 %s 的智能机器人消息", "群聊" if inbound.get("ChatId") else "单聊", inbound.user)

    def _within_quota(self, inbound: Inbound) -> bool:
        conversation = inbound.get("ChatId") or inbound.user
        if self.quota.reserve([conversation], 0.0) == 0.0:
            return True
        log.warning("会话 %s 已达企业微信每分钟 30 条或每小时 1000 条的上限，未答复", conversation)
        return False

    def _reply_frame(self, inbound: Inbound, recorded: Recorded, req_id: str) -> Frame:
        reply = recorded.reply or ""
        if not inbound.is_card_click:
            return text_reply(req_id, reply)
        schedule = self.ctx.studies()
        item = schedule.get(inbound.get("EventKey").removeprefix("confirm:")) if schedule is not None else None
        confirmed = recorded.outcome.confirmed if recorded.outcome else ()
        label = done_label(confirmed[0].confirmed_at) if confirmed else None
        branch = bound_chats(self.ctx.store).get(inbound.get("ChatId"))
        card = group_card(self.ctx, item, branch) if item and branch else None
        return card_update(req_id, inbound.user, card, inbound.get("TaskId"), reply, label)

    def _prepare(self, session: Session, batch: Sequence[Inbound]) -> Answer:
        """The app callback's answerer, and each new conversation remembered in the same transaction."""
        answer = answerer(self.ctx)(session, batch)

        def learn_and_answer(inbound: Inbound, now: datetime):  # noqa: ANN202 - Answer's result
            if inbound.get("ChatId"):
                learn_chat(session, inbound.get("ChatId"), inbound.get("ChatType"), inbound.user, now)
            return answer(inbound, now)
        return learn_and_answer

    # ---- study cards in branch groups ---------------------------------------------------------

    def push_cards(self, link: Link) -> int:
        """Push each bound group's open study items it has not had a card for (published, unconfirmed, due
        at most LATE_CARDS_FOR ago); the number pushed."""
        if not self._pushing.acquire(blocking=False):
            return 0  # a pass is under way (a heartbeat came while it pushed)
        try:
            return self._push_open_items(link)
        finally:
            self._pushing.release()

    def _push_open_items(self, link: Link) -> int:
        schedule, settings, store = self.ctx.studies(), self.ctx.settings(), self.ctx.store
        if schedule is None:
            return 0
        now = self.ctx.clock.now()
        with store.session(readonly=True) as session:
            done = confirmed_pairs(session)
        pushed, items = card_items(store), roster(settings, schedule).items
        count = 0
        for chatid, branch in bound_chats(store).items():
            if chatid in self._unreachable:
                continue
            for item in items.get(branch, ()):
                if item.publish_at <= now <= item.deadline + LATE_CARDS_FOR and (item.id, branch) not in done \
                        and (chatid, item.id) not in pushed:
                    if not self._push_card(link, chatid, branch, item, now):
                        break  # this group's quota is used up: the next heartbeat tries again
                    count += 1
        return count

    def _push_card(self, link: Link, chatid: str, branch: str, item: StudyItem, now: datetime) -> bool:
        card = group_card(self.ctx, item, branch)
        if card is None or self.quota.reserve([chatid], 0.0) > 0:
            return False
        task_id = f"aibot-{secrets.token_hex(12)}"
        if not claim_card(self.ctx.store, chatid, item.id, task_id, now):
            return True
        try:
            link.request(card_push(chatid, card, task_id))
            errcode: int | None = 0
        except Refused as error:
            release_card(self.ctx.store, task_id)  # a definite no: push it again later
            log.warning("学习卡片未能推送到群 %s：%s", chatid, error)
            if error.errcode != 45009:  # e.g. nobody has spoken to the bot there (as WeCom sees it)
                self._unreachable.add(chatid)
            return False
        except LinkDead:
            errcode = None  # no answer: it may have arrived; recorded as pushed, never doubled
        record_card_errcode(self.ctx.store, task_id, errcode)
        log.info("已向群 %s 推送学习卡片 %s", chatid, item.id)
        return True

    def _guarded(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - one callback's failure must not end the pool's thread
            log.exception("智能机器人消息处理失败")


class RunningGroupBot:
    """The AI bot inside ``run``: the handler and the connection's watchdog, stopped together."""

    def __init__(self, ctx: CallbackContext, timing: Timing | None = None) -> None:
        aibot = ctx.settings().aibot
        assert aibot is not None
        heartbeat = aibot.heartbeat.total_seconds()
        self.bot = GroupBot(ctx)
        self.client = AibotClient(ctx.store, aibot.bot_id, aibot.secret.get_secret_value(), aibot.ws_url, self.bot,
                                  timing or Timing(heartbeat=heartbeat, backoff_max=min(30.0, heartbeat)))

    def start(self) -> RunningGroupBot:
        self.client.start()
        return self

    def stop(self) -> None:
        self.client.stop()
        self.bot.close()


class GroupBotKeeper:
    """The AI bot's connection follows the configuration: started where ``aibot`` is set, and on a
    reload that changes it, stopped and started again with the new settings (a corrected secret
    takes effect without restarting the service), or stopped where it was removed."""

    def __init__(self, runtime: Runtime, timing: Timing | None = None) -> None:
        self.runtime = runtime
        self.timing = timing
        self.running: RunningGroupBot | None = None
        self._settings: AibotSettings | None = None
        self._lock = threading.Lock()
        runtime.on_reloaded.append(self.follow)

    def follow(self) -> None:
        wanted = self.runtime.settings().aibot
        with self._lock:
            if wanted == self._settings:
                return
            if self.running is not None:
                self.running.stop()
                log.info("智能机器人配置已修改，按新配置重新连接" if wanted else "配置中已删除智能机器人，已断开长连接")
            self.running = RunningGroupBot(self.runtime, self.timing).start() if wanted is not None else None
            self._settings = wanted

    def stop(self) -> None:
        with self._lock:
            if self.running is not None:
                self.running.stop()
            self.running, self._settings = None, None
