"""The Simulator: a Flask app speaking WeCom's API, with inspection, fault injection and callbacks."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import waitress
from flask import Flask, Response, abort, request
from waitress.server import BaseWSGIServer
from waitress.wasyncore import close_all, loop
from werkzeug.serving import WSGIRequestHandler

from bot.simulator import app_api, appchat, robot, tenant
from bot.simulator.aibot_ws import AibotServer
from bot.simulator.callback_sender import CallbackSender, card_event_xml, replace_name, text_message_xml
from bot.simulator.pages import register_pages
from bot.simulator.state import (
    ApiError,
    CallbackResult,
    Fault,
    FaultRates,
    RecordedRequest,
    SimulatorSettings,
    error_answer,
)
from bot.simulator.world import Call, World

log = logging.getLogger(__name__)

Handler = Callable[[World, Call], dict[str, Any]]
API: dict[tuple[str, str], Handler] = {
    ("POST", "/cgi-bin/webhook/send"): robot.webhook_send,
    ("POST", "/cgi-bin/webhook/upload_media"): robot.upload_media,
    ("GET", "/cgi-bin/gettoken"): app_api.gettoken,
    ("POST", "/cgi-bin/message/send"): app_api.message_send,
    ("POST", "/cgi-bin/message/update_template_card"): app_api.update_template_card,
    ("POST", "/cgi-bin/message/recall"): app_api.recall,
    ("POST", "/cgi-bin/appchat/create"): appchat.create,
    ("POST", "/cgi-bin/appchat/update"): appchat.update,
    ("GET", "/cgi-bin/appchat/get"): appchat.get,
    ("POST", "/cgi-bin/appchat/send"): appchat.send,
    ("GET", "/cgi-bin/agent/get"): tenant.agent_get,
    ("GET", "/cgi-bin/user/get"): tenant.user_get,
}
MALFORMED_BODY = b'{"errcode":0,"errm'


class QuietHandler(WSGIRequestHandler):
    """For tests that serve a small app with werkzeug: no line printed per request."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


# Like WeCom, the simulator keeps connections alive and answers many calls at once: each call
# holds a thread for the simulated latency, so there are enough threads for a big fan-out.
SERVING = {"threads": 128, "connection_limit": 1000, "asyncore_use_poll": True, "ident": "wecom-simulator"}


def json_response(answer: dict[str, Any]) -> Response:
    body = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
    response = Response(body, content_type="application/json; charset=UTF-8")
    if answer.get("errcode"):
        response.headers["error-code"] = str(answer["errcode"])
        response.headers["error-msg"] = str(answer["errmsg"]).encode("ascii", "replace").decode("ascii")
    return response


class Simulator:
    def __init__(self, settings: SimulatorSettings, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        """`clock` paces rate windows and token lifetimes; `wall_clock` stamps callbacks (tests move both)."""
        self.settings = settings
        self.wall_clock = wall_clock
        self.world = World(settings, clock, wall_clock)
        self.fault_rates: FaultRates | None = None
        self._rng = random.Random()
        self.sender = CallbackSender(settings, wall_clock)
        self.aibot = AibotServer(settings.aibot_bots) if settings.aibot_bots else None
        self.url = ""
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.app = Flask(__name__)
        self.app.add_url_rule("/cgi-bin/<path:rest>", "api", self._handle_api, methods=["GET", "POST"])
        register_pages(self.app, self)

    # serving ------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        server = waitress.create_server(self.app, host=host, port=port, **SERVING)
        assert isinstance(server, BaseWSGIServer)  # one address: never a MultiSocketServer
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, args=(server,), name="wecom-simulator", daemon=True)
        self._thread.start()
        self.url = f"http://{host}:{server.effective_port}"
        if self.aibot is not None:
            self.aibot.start(host, self.settings.aibot_port)
        return self.url

    def stop(self) -> None:
        if self.aibot is not None:
            self.aibot.stop()
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None or thread is None:
            return
        self._stopping.set()
        thread.join(timeout=5)
        server.task_dispatcher.shutdown(timeout=5)

    def _serve(self, server: BaseWSGIServer) -> None:
        """waitress's loop, polling a stop flag every 0.1 s; channels are closed in this thread.

        Stopping by pulling waitress's trigger from another thread failed now and then in tests with
        EBADF (the trigger's pipe already gone), so the loop ends itself instead."""
        while not self._stopping.is_set():
            loop(timeout=0.1, map=server._map, use_poll=True, count=1)
        close_all(server._map, ignore_all=True)

    # the API ------------------------------------------------------------------------------

    def _handle_api(self, rest: str) -> Response:
        path = "/cgi-bin/" + rest
        handler = API.get((request.method, path))
        if handler is None:
            abort(404)
        call = Call(request.args.to_dict(), request.get_data(), request.remote_addr or "127.0.0.1",
                    request.files.to_dict())
        with self.world.lock:  # a request in flight is one that arrived and is not answered yet
            self.world.arrived.append((path, call.query, self.world.clock()))
        if self.settings.latency:
            time.sleep(self.settings.latency)
        fault = self._claim_fault(path)
        if fault is not None and (fault.errcode is not None or fault.http_status or fault.malformed):
            time.sleep(fault.delay)
            return self._faulty_answer(path, call, fault)
        answer = self._answer(path, handler, call)
        if fault is not None:  # a slow answer: the call took effect, the caller may have given up
            time.sleep(fault.delay)
        return json_response(answer)

    def _answer(self, path: str, handler: Handler, call: Call) -> dict[str, Any]:
        with self.world.lock:
            try:
                self.world.tenant.gate(path, call)
                answer = handler(self.world, call)
            except ApiError as error:
                answer = error_answer(error, call.ip)
            except (TypeError, AttributeError, KeyError, ValueError):
                # a field of the wrong shape: WeCom answers with an errcode, never with a 500
                log.warning("模拟器：%s 的参数格式错误", path, exc_info=True)
                answer = error_answer(ApiError(40058), call.ip)
            self._record(path, call, 200, answer)
        return answer

    def _faulty_answer(self, path: str, call: Call, fault: Fault) -> Response:
        if fault.http_status:
            self._record(path, call, fault.http_status, None)
            return Response(f"<html><body>{fault.http_status}</body></html>", status=fault.http_status,
                            content_type="text/html")
        if fault.malformed:
            self._record(path, call, 200, None)
            return Response(MALFORMED_BODY, content_type="application/json; charset=UTF-8")
        code = int(fault.errcode or 0)
        answer = error_answer(ApiError(code), call.ip)
        self._record(path, call, 200, answer)
        return json_response(answer)

    def _record(self, path: str, call: Call, status: int, answer: dict[str, Any] | None) -> None:
        try:
            body_json = json.loads(call.raw) if call.raw else None
        except ValueError:
            body_json = None
        entry = RecordedRequest(request.method, path, call.query, dict(request.headers), call.raw, body_json,
                                status, answer, self.world.clock())
        with self.world.lock:
            self.world.recorded.append(entry)

    def _claim_fault(self, path: str) -> Fault | None:
        with self.world.lock:
            faults = self.world.faults.get(path, [])
            claimed = [fault for fault in faults if fault.claim()]
            faults[:] = [fault for fault in faults if not fault.exhausted()]
            if not claimed and self.fault_rates is not None:
                return self.fault_rates.draw(path, self._rng)
        return claimed[0] if claimed else None

    # inspection ---------------------------------------------------------------------------

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        with self.world.lock:
            return [r for r in self.world.recorded if path is None or r.path == path]

    def arrivals(self, path: str) -> list[tuple[dict[str, str], float]]:
        """(query, when) of each request to ``path`` as it arrived, before the simulated latency."""
        with self.world.lock:
            return [(query, when) for at, query, when in self.world.arrived if at == path]

    def group_messages(self, key_or_group: str) -> list[dict[str, Any]]:
        key = self.robot_key(key_or_group)
        return self.world.snapshot(self.world.robot_messages.get(key, []) if key else [])

    def robot_key(self, key_or_group: str) -> str | None:
        if key_or_group in self.world.robots:
            return key_or_group
        return next((k for k, name in self.world.robots.items() if name == key_or_group), None)

    def user_messages(self, userid: str) -> list[dict[str, Any]]:
        return self.world.snapshot(self.world.user_messages.get(userid, []))

    def chat_messages(self, chatid: str) -> list[dict[str, Any]]:
        return self.world.snapshot(self.world.chat_messages.get(chatid, []))

    def conversation(self, userid: str) -> list[dict[str, Any]]:
        """The replies typed as this user and the bot's passive answers, in order."""
        return self.world.snapshot(self.world.conversations.get(userid, []))

    @property
    def dropped(self) -> list[dict[str, Any]]:
        return self.world.snapshot(self.world.dropped)

    @property
    def token_fetches(self) -> int:
        with self.world.lock:
            return self.world.token_fetches

    # faults -------------------------------------------------------------------------------

    def inject(self, path: str, *, errcode: int | None = None, http_status: int | None = None, delay: float = 0.0,
               malformed: bool = False, times: int = 1, after: int = 0) -> Fault:
        fault = Fault(errcode, http_status, delay, malformed, times, after)
        with self.world.lock:
            self.world.faults[path].append(fault)
        return fault

    def withdraw(self, path: str, fault: Fault) -> None:
        """End a fault injected with ``times=-1`` (say, a day of 60020)."""
        with self.world.lock:
            self.world.faults[path] = [f for f in self.world.faults.get(path, []) if f is not fault]

    def set_fault_rates(self, rates: FaultRates | None, seed: int | None = None) -> None:
        """Faults at random from now on, at these rates (None: none); ``seed`` repeats a run."""
        with self.world.lock:
            self.fault_rates, self._rng = rates, random.Random(seed)

    def clear_faults(self) -> None:
        with self.world.lock:
            self.world.faults.clear()

    def expire_tokens(self) -> None:
        with self.world.lock:
            self.world.expire_tokens()

    def revoke_token(self, token: str) -> None:
        with self.world.lock:
            self.world.revoke_token(token)

    def disable_robot(self, key: str) -> None:
        with self.world.lock:
            self.world.disabled_robots.add(key)

    def remove_robot(self, key: str) -> None:
        with self.world.lock:
            self.world.robots.pop(key, None)

    def play_tenant(self, **switches: Any) -> None:
        """Play an unconfigured tenant: ``untrusted_ip``, ``no_callback``, ``too_long``, ``agent_mismatch``
        (booleans), ``hidden_users`` and ``forbidden`` (sets); see bot.simulator.tenant."""
        with self.world.lock:
            for name, value in switches.items():
                if not hasattr(self.world.tenant, name):
                    raise TypeError(f"unknown tenant switch {name!r}")
                setattr(self.world.tenant, name, set(value) if isinstance(value, (list, set, tuple)) else value)

    # callbacks to the bot -----------------------------------------------------------------

    def verify_url(self) -> bool:
        return self.sender.verify_url()

    def reply_as(self, userid: str, text: str) -> CallbackResult:
        with self.world.lock:
            msg_id = self.world.next_seq() + (int(time.time() * 1000) << 16)
        xml = text_message_xml(self.settings.corp_id, userid, text, msg_id, self.settings.agent_id,
                               int(self.wall_clock()))
        result = self.sender.post(xml)
        self._converse(userid, {"kind": "reply", "text": text, "msg_id": msg_id}, result)
        return result

    def click_card(self, userid: str, task_id: str, key: str) -> CallbackResult:
        with self.world.lock:
            card = self._find_card(userid, task_id)
            code = app_api.issue_response_code(self.world, card["msgid"], [userid])
            card["card"]["clicked_key"] = key
        xml = card_event_xml(self.settings.corp_id, userid, task_id, key, card["template_card"]["card_type"], code,
                             self.settings.agent_id, int(self.wall_clock()))
        result = self.sender.post(xml)
        new_name = replace_name(result.reply_xml)
        with self.world.lock:
            if new_name and self.world.tenant.card_reply_shown:
                app_api.apply_card_update(self.world, userid, card["msgid"], new_name, None)
        self._converse(userid, {"kind": "click", "task_id": task_id, "key": key, "response_code": code}, result)
        return result

    def _find_card(self, userid: str, task_id: str) -> dict[str, Any]:
        for message in reversed(self.world.user_messages.get(userid, [])):
            if message.get("card", {}).get("task_id") == task_id:
                return message
        raise LookupError(f"no template card {task_id!r} was sent to {userid!r}")

    def _converse(self, userid: str, entry: dict[str, Any], result: CallbackResult) -> None:
        entry.update(status=result.status, attempts=result.attempts, reply=result.reply, error=result.error)
        with self.world.lock:
            self.world.conversations[userid].append(self.world.stamp(entry))


def serve_simulator(settings: SimulatorSettings, host: str, port: int) -> None:
    """Serve until interrupted (the CLI's `simulator` command)."""
    import waitress

    simulator = Simulator(settings)
    simulator.url = f"http://{host}:{port}"
    if simulator.aibot is not None:
        log.info("智能机器人长连接：%s", simulator.aibot.start(host, settings.aibot_port))
    log.info("企业微信模拟器：http://%s:%d", host, port)
    waitress.serve(simulator.app, host=host, port=port, threads=8)

