"""The self-built app's callback URL: WeCom → us (wecom.md §8–§9).

Order of checks on a POST, each refusing with a 4xx and a short Chinese body before anything is
written: body size; the signature; the timestamp's skew; decryption and the ReceiveId; the
plaintext XML (the protocol is in bot.wecom.callback_crypto). All of that runs in the request's
thread, in parallel. Then the inbox writer (bot.inbox.writer) deduplicates (inbox row with a
unique key), answers through the responder and records the reply, for a batch of callbacks in one
transaction with one commit, so that WeCom's retries and replays get the same answer and change
nothing. Slow work (updating the clicked card, re-planning so that nudges to a confirmed branch
are cancelled) runs after the answer. A callback still being recorded when its answer is due (3 s,
WeCom gives up at 5) is answered 200 with nothing; its answer follows as an app message once it is
recorded, or the administrators hear that it was not.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import Protocol

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from bot.calendars.holidays import HolidayCalendar
from bot.clock import BEIJING, Clock
from bot.config import Settings, WeComSettings
from bot.delivery.alerts import raise_alert
from bot.errors import TemplateError
from bot.inbox.responder import Outcome, Responder
from bot.inbox.writer import (
    ANSWER_WITHIN,
    Answer,
    Inbound,
    InboxWriter,
    NotRecorded,
    NotYetAnswered,
    PrepareAnswer,
    Recorded,
)
from bot.occurrence import PlannedMessage, delivery_key
from bot.rules.studies import StudySchedule
from bot.store import Store
from bot.store.confirmations import ConfirmResult
from bot.store.outbox import enqueue, take_response_code
from bot.store.queries import open_cards
from bot.templates.render import TemplateLibrary
from bot.wecom.api import task_id_for, update_template_card
from bot.wecom.callback_crypto import (
    Refused,
    check_signature,
    check_skew,
    crypto_for,
    decrypt,
    decrypt_echo,
    parse_xml,
    passive_reply,
    plaintext_fields,
    signed_query,
    truncate_utf8,
)

log = logging.getLogger(__name__)

PATH = "/wecom/callback"
MAX_BODY = 64 * 1024
CARD_CODE_LIFETIME = timedelta(hours=72)  # a send's response_code (wecom.md §5)
RETRY_HOLD = 5.5  # WeCom waits 5 s for an answer, then re-sends the callback (up to 3 times)
FALLBACK_REPLY = "已收到您的回复。系统暂时无法生成答复，请稍后回复“进度”查看记录情况，或联系党办（纪检）工作人员。"


class CallbackContext(Protocol):
    """What the callback needs from the running service."""

    store: Store
    clock: Clock

    def settings(self) -> Settings: ...
    def templates(self) -> TemplateLibrary: ...
    def studies(self) -> StudySchedule: ...
    def calendar(self) -> HolidayCalendar: ...
    def after_response(self, fn: Callable[[], None]) -> None: ...
    def request_replan(self) -> None: ...


class CallbackBlueprint(Blueprint):
    """The callback's routes and the writer that records what they receive."""

    def __init__(self, ctx: CallbackContext, answer_within: float = ANSWER_WITHIN,
                 retry_hold: float = RETRY_HOLD) -> None:
        super().__init__("wecom_callback", __name__)
        self.writer = InboxWriter(ctx.store, answerer(ctx))
        self.answer_within = answer_within
        self.retry_hold = retry_hold
        self._refused: deque[float] = deque(maxlen=10_000)  # when a callback could not be recorded

    def note_refused(self) -> None:
        self._refused.append(time.monotonic())

    def refused_recently(self, seconds: float = 3600.0) -> int:
        """Callbacks that could not be recorded in the last ``seconds`` (for /healthz)."""
        since = time.monotonic() - seconds
        return sum(1 for at in self._refused if at >= since)

    def close(self) -> None:
        """Answer the callbacks already queued and stop the writer; later ones get 503."""
        self.writer.close()


def callback_blueprint(ctx: CallbackContext, answer_within: float = ANSWER_WITHIN,
                       retry_hold: float = RETRY_HOLD) -> CallbackBlueprint:
    """Call ``close()`` on it at shutdown (before closing the store)."""
    blueprint = CallbackBlueprint(ctx, answer_within, retry_hold)

    @blueprint.get(PATH)
    def verify_url() -> Response:
        return _guarded(lambda: _verify(ctx))

    @blueprint.post(PATH)
    def receive() -> Response:
        return _guarded(lambda: _receive(ctx, blueprint))

    return blueprint


def _guarded(handler: Callable[[], Response]) -> Response:
    try:
        return handler()
    except Refused as refused:
        log.info("拒绝回调（%d）：%s", refused.status, refused.message)
        return Response(refused.message, status=refused.status, content_type="text/plain; charset=utf-8")


# ---- checks ---------------------------------------------------------------------------------


def _wecom(ctx: CallbackContext) -> WeComSettings:
    wecom = ctx.settings().wecom
    if wecom is None:
        raise Refused(404, "未配置企业微信回调")
    return wecom


def _read_body() -> bytes:
    if (request.content_length or 0) > MAX_BODY:
        raise Refused(413, "请求体过大")
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise Refused(413, "请求体过大")
    return body


def _inbound(plaintext: str) -> Inbound:
    inbound = Inbound(plaintext_fields(plaintext), plaintext)
    if not inbound.user or not inbound.get("MsgType") or not inbound.get("CreateTime").isdigit():
        raise Refused(400, "消息格式错误")
    return inbound


# ---- GET: URL verification ------------------------------------------------------------------


def _verify(ctx: CallbackContext) -> Response:
    wecom = _wecom(ctx)
    query = signed_query(request.args)
    echostr = request.args.get("echostr", "")
    if not echostr or len(echostr) > 1024:
        raise Refused(400, "缺少 echostr")
    check_signature(wecom, query, echostr)
    plaintext = decrypt_echo(wecom, query, echostr)
    log.info("回调地址验证通过")
    return Response(plaintext.encode("utf-8"), status=200, content_type="text/plain; charset=utf-8")


# ---- POST: messages and card clicks ---------------------------------------------------------


def _receive(ctx: CallbackContext, blueprint: CallbackBlueprint) -> Response:
    started = time.monotonic()
    wecom = _wecom(ctx)
    body = _read_body()
    query = signed_query(request.args)
    encrypted = (parse_xml(body).findtext("Encrypt") or "").strip()
    if not encrypted:
        raise Refused(400, "缺少 Encrypt")
    check_signature(wecom, query, encrypted)
    now = ctx.clock.now().astimezone(BEIJING)
    check_skew(query, now)
    inbound = _inbound(decrypt(crypto_for(wecom), query, encrypted))
    reply, fresh = _record_and_answer(ctx, blueprint, inbound, now, started)
    log.info("收到 %s 的回调（%s）%s，%s", inbound.user, inbound.get("MsgType"),
             "" if fresh else "（重复推送）", "已被动回复" if reply else "无需回复")
    if not reply:
        return Response(b"", status=200)
    return Response(passive_reply(wecom, inbound.user, reply, query, now), status=200,
                    content_type="application/xml; charset=utf-8")


def _record_and_answer(ctx: CallbackContext, blueprint: CallbackBlueprint, inbound: Inbound,
                       now: datetime, started: float) -> tuple[str | None, bool]:
    """Recorded and answered by the writer's next batch; a repeat gets the recorded answer."""
    try:
        recorded = blueprint.writer.record(inbound, now, timeout=blueprint.answer_within)
    except NotYetAnswered as late:
        # WeCom's deadline is near and it may not retry an error: answer 200 now, with nothing, and
        # send the answer as an app message once recorded (or tell the administrators it was not).
        log.warning("%s 的回调未能及时记录，记录后将以应用消息答复", inbound.user)
        late.future.add_done_callback(lambda done: ctx.after_response(lambda: answer_late(ctx, inbound, done)))
        return None, True
    except NotRecorded as exc:
        # WeCom may give up on an error answer, but re-sends a callback it got no answer to within 5 s:
        # so no answer until that has passed, and the re-sent one may find the database back.
        log.error("%s 的回调未能记录（%s），暂不应答，企业微信将重新推送", inbound.user, exc)
        blueprint.note_refused()
        time.sleep(max(0.0, blueprint.retry_hold - (time.monotonic() - started)))
        raise Refused(503, "暂时无法处理，请稍后重试") from exc
    if recorded.outcome is not None:
        after_answer(ctx, inbound, recorded.outcome)
    return recorded.reply, recorded.fresh


def answer_late(ctx: CallbackContext, inbound: Inbound, done: Future[Recorded]) -> None:
    """The rest of a callback whose recording outlasted its HTTP answer."""
    settings, now = ctx.settings(), ctx.clock.now()
    if done.exception() is not None:
        said = inbound.get("Content") or inbound.get("EventKey") or inbound.get("MsgType")
        raise_alert(ctx.store, settings, now, "1 条企业微信回调未能记录", [f"{inbound.user}：{said}"],
                    "请与该成员核实其回复，必要时在学习台账中补录确认", [])
        return
    recorded = done.result()
    if recorded.outcome is not None:
        after_answer(ctx, inbound, recorded.outcome)
    # The responder knew the sender's branch; a sender who is no secretary has no target to reply to.
    outcome = recorded.outcome
    branch = settings.branch(outcome.branch) if outcome is not None and outcome.branch else None
    if recorded.fresh and recorded.reply and branch is not None:
        target = branch.secretary_target
        occurrence = f"reply:{inbound.dedupe_key}"
        answer = PlannedMessage(key=delivery_key("reply", occurrence, target), rule="reply", kind="reply",
                                occurrence=occurrence, target=target, msgtype="text", title="回复",
                                text=truncate_utf8(recorded.reply), due_at=now,
                                reason="回调记录较慢，未能被动回复，改以应用消息答复")
        enqueue(ctx.store, [answer], now)
        ctx.request_replan()  # wakes the dispatcher


def answerer(ctx: CallbackContext) -> PrepareAnswer:
    """Per batch (also the AI bot's, bot.inbox.group_bot): the settings, schedule and templates in force,
    and one responder for them all."""
    def prepare(session: Session, batch: Sequence[Inbound]) -> Answer:
        responder = Responder(session, ctx.settings(), ctx.studies(), ctx.templates())
        responder.preload(i.user for i in batch if i.get("MsgType") == "text" or i.is_card_click)
        return lambda inbound, now: _answer(responder, inbound, now)
    return prepare


def _answer(responder: Responder, inbound: Inbound, now: datetime) -> Outcome | None:
    try:
        if inbound.get("MsgType") == "text":
            return responder.reply(now, inbound.user, inbound.get("Content"))
        if inbound.is_card_click:
            return responder.click(now, inbound.user, inbound.get("EventKey"))
    except TemplateError as exc:
        # Whatever was confirmed stays recorded; a broken edited template must not lose it.
        log.error("回复模板出错，改用默认回复：%s", exc)
        return Outcome(FALLBACK_REPLY)
    return None  # other messages and events are recorded, not answered


def after_answer(ctx: CallbackContext, inbound: Inbound, outcome: Outcome) -> None:
    if outcome.created or outcome.reply == FALLBACK_REPLY:
        ctx.after_response(ctx.request_replan)
    if not outcome.confirmed:
        return
    settings, user, code = ctx.settings(), inbound.user, inbound.get("ResponseCode")
    if inbound.is_card_click and code:  # the clicked card, with the fresh code its click brought
        label = done_label(outcome.confirmed[0].confirmed_at)
        ctx.after_response(lambda: _update_card(settings, code, user, label))
    made = [result for result in outcome.confirmed if result.created]
    if not made:
        return  # a repeat: the cards were greyed out when the confirmation was made
    clicked = inbound.get("TaskId") if inbound.is_card_click else None
    now = ctx.clock.now()
    ctx.after_response(lambda: close_cards(ctx.store, settings, user, made, clicked, now))


def done_label(confirmed_at: datetime) -> str:
    return f"已完成 {confirmed_at.astimezone(BEIJING):%m-%d %H:%M}"


def close_cards(store: Store, settings: Settings, userid: str, confirmed: Sequence[ConfirmResult],
                clicked_task: str | None, now: datetime) -> None:
    """The other cards of the confirmed items that this secretary still sees with a live button (a
    reply in words, a second card, a confirmation an administrator recorded): greyed out with their
    send's response_code (single use, 72 h)."""
    for result in confirmed:
        branch = settings.branch(result.branch)
        if branch is None:
            continue
        for row in open_cards(store, result.item, branch.secretary_target, now - CARD_CODE_LIFETIME):
            if clicked_task == task_id_for(row.key, row.created_at.isoformat()) or row.response_code is None:
                continue
            if take_response_code(store, row.id, row.response_code):
                _update_card(settings, row.response_code, userid, done_label(result.confirmed_at))


def _update_card(settings: Settings, response_code: str, userid: str, label: str) -> None:
    try:
        update_template_card(settings, response_code, [userid], label)
    except Exception:  # noqa: BLE001 - the confirmation stands; a stale button is cosmetic
        log.warning("未能更新 %s 的模板卡片", userid, exc_info=True)
