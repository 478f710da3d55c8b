"""WeCom's end of the 智能机器人 long connection (wecom.md §11), for the demo and the tests.

A ``websockets`` server on its own port inside the simulator process, speaking the same frames as
``wss://openws.work.weixin.qq.com``: subscribe (a second subscribe of one bot kicks the first with
``disconnected_event``), ping, callbacks, replies (which must reuse a callback's req_id), card
updates (within 5 s of the click), pushes (only to a chat someone has spoken in; 30 a minute and
1,000 an hour per chat, 45009 beyond). Test controls: ``close`` (any code), ``answer_heartbeats``,
``kick``, ``repeat``. Errcodes marked unconfirmed are the simulator's choice (third-party reports).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from bot.simulator.state import SlidingWindows

CARD_ANSWER_WITHIN = 5.0
ERR_SECRET, ERR_BOT, ERR_REQ_ID, ERR_EXPIRED, ERR_NO_CHAT = 853000, 93019, 846605, 846608, 93006  # 93006 unconfirmed


def _frame(cmd: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"cmd": cmd, "headers": {"req_id": f"{cmd}_{secrets.token_hex(8)}"}, "body": body}


def _ack(req_id: str, errcode: int = 0, errmsg: str = "ok") -> dict[str, Any]:
    return {"headers": {"req_id": req_id}, "errcode": errcode, "errmsg": errmsg}


class AibotServer:
    def __init__(self, bots: dict[str, str], clock: Callable[[], float] = time.monotonic,
                 per_minute: int = 30, per_hour: int = 1000, minute_seconds: float = 60.0) -> None:
        self.bots = dict(bots)
        self.clock = clock
        self.limits = (per_minute, per_hour, minute_seconds)
        self.lock = threading.RLock()
        self.url = ""
        self.answering_heartbeats = True
        self.subscriptions = 0
        self.pings = 0
        self.live: dict[str, ServerConnection] = {}           # bot_id → its connection
        self.callbacks: dict[str, dict[str, Any]] = {}        # req_id → the callback we sent
        self.transcripts: dict[str, list[dict[str, Any]]] = defaultdict(list)  # chatid → entries
        self.known_chats: set[str] = set()
        self.cards: dict[str, dict[str, Any]] = {}            # task_id → pushed card entry
        self._minute, self._hour = SlidingWindows(), SlidingWindows()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # ---- serving ------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = serve(self._serve, host, port, ping_interval=None, compression=None)
        self._thread = threading.Thread(target=self._server.serve_forever, name="aibot-sim", daemon=True)
        self._thread.start()
        self.url = f"ws://{host}:{self._server.socket.getsockname()[1]}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            for ws in list(self.live.values()):
                ws.close()
        if self._thread is not None:
            self._thread.join(5)

    def _serve(self, ws: ServerConnection) -> None:
        bot_id: str | None = None
        try:
            for raw in ws:
                message = json.loads(raw)
                bot_id = self._on_frame(ws, bot_id, message if isinstance(message, dict) else {})
        except (ConnectionClosed, ValueError):
            pass
        finally:
            with self.lock:
                if bot_id and self.live.get(bot_id) is ws:
                    del self.live[bot_id]

    def _on_frame(self, ws: ServerConnection, bot_id: str | None, message: dict[str, Any]) -> str | None:
        cmd, req_id = message.get("cmd"), str((message.get("headers") or {}).get("req_id", ""))
        body = message.get("body") if isinstance(message.get("body"), dict) else {}
        if cmd == "aibot_subscribe":
            return self._subscribe(ws, req_id, body)
        if bot_id is None:
            ws.send(json.dumps(_ack(req_id, ERR_BOT, "not subscribed")))
            return None
        if cmd == "ping":
            with self.lock:
                self.pings += 1
            if self.answering_heartbeats:
                ws.send(json.dumps(_ack(req_id)))
            return bot_id
        handlers = {"aibot_respond_msg": self._respond, "aibot_respond_update_msg": self._update,
                    "aibot_send_msg": self._push}
        handler = handlers.get(str(cmd))
        with self.lock:
            errcode = handler(req_id, body) if handler else 40008
        ws.send(json.dumps(_ack(req_id, errcode, "ok" if errcode == 0 else "error")))
        return bot_id

    def _subscribe(self, ws: ServerConnection, req_id: str, body: dict[str, Any]) -> str | None:
        bot_id, secret = str(body.get("bot_id", "")), str(body.get("secret", ""))
        if bot_id not in self.bots:
            ws.send(json.dumps(_ack(req_id, ERR_BOT, "invalid bot_id")))
            return None
        if not secrets.compare_digest(secret.encode(), self.bots[bot_id].encode()):
            ws.send(json.dumps(_ack(req_id, ERR_SECRET, "invalid secret")))
            return None
        with self.lock:
            old, self.live[bot_id] = self.live.get(bot_id), ws
            self.subscriptions += 1
        if old is not None and old is not ws:
            self._kick(old)
        ws.send(json.dumps(_ack(req_id)))
        return bot_id

    def _kick(self, ws: ServerConnection) -> None:
        try:
            ws.send(json.dumps(_frame("aibot_event_callback", {
                "msgid": secrets.token_hex(8), "create_time": int(time.time()), "msgtype": "event",
                "event": {"eventtype": "disconnected_event"}})))
            ws.close(1000, "kicked")
        except ConnectionClosed:
            pass

    # ---- what the bot sends -------------------------------------------------------------------

    def _respond(self, req_id: str, body: dict[str, Any]) -> int:
        callback = self.callbacks.get(req_id)
        if callback is None or callback["kind"] != "text":
            return ERR_REQ_ID  # a click's req_id takes only a card update (third-party report)
        content = (body.get("stream") or {}).get("content") or (body.get("markdown") or {}).get("content", "")
        callback.setdefault("replies", []).append(body)
        self._say(callback["chatid"], {"kind": "bot", "text": str(content), "req_id": req_id})
        return 0

    def _update(self, req_id: str, body: dict[str, Any]) -> int:
        callback = self.callbacks.get(req_id)
        if callback is None or callback["kind"] != "click":
            return ERR_REQ_ID
        if self.clock() - callback["at"] > CARD_ANSWER_WITHIN:
            return ERR_EXPIRED
        card = self.cards.get(callback["task_id"])
        if card is not None:
            for userid in body.get("userids") or [callback["userid"]]:
                card["seen_by"][userid] = body.get("template_card")
        callback.setdefault("replies", []).append(body)
        return 0

    def _push(self, req_id: str, body: dict[str, Any]) -> int:
        chatid, now = str(body.get("chatid", "")), self.clock()
        if chatid not in self.known_chats:
            return ERR_NO_CHAT  # a chat is reachable only after someone spoke to the bot there
        per_minute, per_hour, minute = self.limits
        if not (self._minute.allows(chatid, now, per_minute, minute)
                and self._hour.allows(chatid, now, per_hour, minute * 60)):
            return 45009
        self._minute.add(chatid, now)
        self._hour.add(chatid, now)
        entry: dict[str, Any] = {"kind": "push", "msgtype": body.get("msgtype"), "body": body}
        card = body.get("template_card")
        if isinstance(card, dict) and card.get("task_id"):
            entry.update(task_id=card["task_id"], card=card, seen_by={})
            self.cards[str(card["task_id"])] = entry
        self._say(chatid, entry)
        return 0

    def _say(self, chatid: str, entry: dict[str, Any]) -> None:
        entry["time"] = time.time()
        self.transcripts[chatid].append(entry)

    # ---- people in WeCom, and the test controls ----------------------------------------------

    def mention(self, chatid: str, userid: str, text: str, bot_name: str = "机器人") -> str | None:
        """``userid`` writes "@机器人 <text>" in group ``chatid``; the callback's req_id, None when no
        bot is connected (WeCom delivers nothing later)."""
        msgid = secrets.token_hex(12)
        body = {"msgid": msgid, "aibotid": self._bot_id(), "chatid": chatid, "chattype": "group",
                "from": {"userid": userid}, "msgtype": "text", "text": {"content": f"@{bot_name} {text}"}}
        with self.lock:
            self.known_chats.add(chatid)
            self._say(chatid, {"kind": "user", "userid": userid, "text": f"@{bot_name} {text}"})
        return self._callback(_frame("aibot_msg_callback", body), "text", chatid, userid)

    def click(self, chatid: str, userid: str, task_id: str, key: str) -> str | None:
        """``userid`` clicks the button ``key`` of the pushed card ``task_id``; the callback's req_id."""
        body = {"msgid": secrets.token_hex(12), "create_time": int(time.time()), "aibotid": self._bot_id(),
                "chatid": chatid, "chattype": "group", "from": {"userid": userid}, "msgtype": "event",
                "event": {"eventtype": "template_card_event", "template_card_event": {
                    "card_type": "button_interaction", "event_key": key, "task_id": task_id}}}
        return self._callback(_frame("aibot_event_callback", body), "click", chatid, userid, task_id=task_id)

    def repeat(self, req_id: str) -> str | None:
        """WeCom calls back again with the same message (same msgid, a fresh req_id)."""
        with self.lock:
            first = self.callbacks[req_id]
        again = {**first["frame"], "headers": {"req_id": f"{first['frame']['cmd']}_{secrets.token_hex(8)}"}}
        return self._callback(again, first["kind"], first["chatid"], first["userid"], task_id=first.get("task_id"))

    def _callback(self, message: dict[str, Any], kind: str, chatid: str, userid: str,
                  task_id: str | None = None) -> str | None:
        req_id = message["headers"]["req_id"]
        with self.lock:
            ws = self.live.get(self._bot_id())
            self.callbacks[req_id] = {"kind": kind, "chatid": chatid, "userid": userid, "task_id": task_id,
                                      "at": self.clock(), "frame": message, "delivered": ws is not None}
        if ws is None:
            return None
        try:
            ws.send(json.dumps(message, ensure_ascii=False))
        except ConnectionClosed:
            return None
        return req_id

    def replies(self, req_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.callbacks.get(req_id, {}).get("replies", []))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the bot's connection from WeCom's side."""
        with self.lock:
            ws = self.live.get(self._bot_id())
        if ws is not None:
            ws.close(code, reason)

    def kick(self) -> None:
        """As if another process subscribed the bot: disconnected_event, then close."""
        with self.lock:
            ws = self.live.pop(self._bot_id(), None)
        if ws is not None:
            self._kick(ws)

    def answer_heartbeats(self, answering: bool) -> None:
        self.answering_heartbeats = answering

    def connected(self) -> bool:
        with self.lock:
            return self._bot_id() in self.live

    def transcript(self, chatid: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.transcripts.get(chatid, [])]

    def _bot_id(self) -> str:
        return next(iter(self.bots), "")
