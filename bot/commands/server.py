"""`run`: the scheduler, and on one port WeCom's callback, the administrators' console and /healthz."""

from __future__ import annotations

import errno
import gc
import logging
import os
import secrets
import signal
import socket
import threading
from pathlib import Path
from typing import Any

from flask import Flask, jsonify
from waitress import create_server

from bot.config import Settings
from bot.errors import ConfigError
from bot.inbox.callback import callback_blueprint
from bot.inbox.group_bot import GroupBotKeeper
from bot.runtime import Runtime
from bot.scheduler import Service
from bot.web import create_console

log = logging.getLogger(__name__)

# Request threads mostly wait for the callback writer's group commit: 16 keep it fed.
HTTP_THREADS = 16


def session_secret(runtime: Runtime) -> str:
    """From the config (or its environment variable), else generated once and kept in data/."""
    configured = runtime.settings().server.secret_key
    if configured is not None:
        return configured.get_secret_value()
    path = runtime.settings().path("data") / "console-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return Path(path).read_text().strip()


CONFIG_WRONG = "配置有误，服务继续使用上次正确的配置。处理办法：运行 wecom-reminder check 或登录管理后台查看详情"


def create_app(runtime: Runtime, *, testing: bool = False) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=session_secret(runtime), MAX_CONTENT_LENGTH=4 * 1024 * 1024,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", TESTING=testing)
    callback = callback_blueprint(runtime)
    app.register_blueprint(callback)
    app.extensions["wecom_callback"] = callback
    create_console(app, runtime)

    @app.get("/healthz")
    def healthz() -> Any:
        """200 while messages go out; 503 (for monitoring to page someone) when the scheduler stalled."""
        error, stalled, unheard = runtime.last_reload_error, runtime.stalled_minutes(), runtime.undelivered_alerts()
        config = "error" if error else "ok"
        if stalled is not None:
            return jsonify(status="stalled", config=config,
                           message=f"定时发送已停止 {stalled} 分钟，请查看服务日志并重启服务"), 503
        if unheard:
            return jsonify(status="alerts_undelivered", config=config,
                           message=f"近一天有 {unheard} 条告警未能送达管理员，没有一个管理员推送对象（admins.targets）能收到告警，请检查其配置与企业微信应用设置"), 503
        if refused := callback.refused_recently():
            return jsonify(status="callbacks_unrecorded", config=config,
                           message=f"近一小时有 {refused} 次企业微信回调（成员回复、卡片点击）因数据库不可用未能记录，"
                                   "已让企业微信重新推送；请检查数据库，并在学习台账中核对近一小时的确认"), 503
        # unauthenticated: the reload error quotes config lines, so only its existence is told here
        return jsonify(status="ok", config=config, message=CONFIG_WRONG if error else "运行正常"), 200

    return app


def close_app(app: Flask) -> None:
    """At shutdown, after the HTTP server stopped: answer the callbacks already queued."""
    callback = app.extensions.get("wecom_callback")
    if callback is not None:
        callback.close()


def serve(runtime: Runtime, ready: threading.Event | None = None) -> int:
    """Run the scheduler and the HTTP server until SIGTERM or SIGINT, then stop cleanly."""
    settings = runtime.settings()
    runtime.renders.warm()  # the first plan renders hundreds of messages: workers start meanwhile
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, _frame: stop.set())
    app = create_app(runtime)
    server = create_server(app, host=settings.server.host, port=settings.server.port,
                           threads=HTTP_THREADS, ident="wecom-reminder")
    service = Service(runtime)
    group_bot = GroupBotKeeper(runtime)  # the 智能机器人's long connection: confirmations in groups
    try:
        service.start()
        group_bot.follow()
        # The HTTP server runs beside the main thread, which only waits: a signal that arrives
        # during start-up or at any later moment is handled the same way.
        web = threading.Thread(target=server.run, name="http", daemon=True)
        # What start-up built (modules, settings, compiled templates) lives as long as the process:
        # out of the collector's sight, a full collection no longer stalls callbacks for 100+ ms.
        gc.collect()
        gc.freeze()
        web.start()
        log.info("服务已启动：回调 http://%s/wecom/callback ，管理后台 http://%s/admin", settings.server.listen,
                 settings.server.listen)
        if ready:
            ready.set()
        stop.wait()
        log.info("正在停止……")
    finally:
        server.close()
        group_bot.stop()
        close_app(app)
        service.stop()
        runtime.close()
        log.info("服务已停止")
    return 0


def ensure_listen_free(settings: Settings) -> None:
    """Refuse to start, before anything is written, when server.listen is taken (another instance,
    another program): a Chinese error with the fix instead of a traceback after the banner."""
    host, port = settings.server.host, settings.server.port
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress does: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            why = {errno.EADDRINUSE: "该端口已被占用", errno.EADDRNOTAVAIL: "本机没有这个地址",
                   errno.EACCES: "没有权限使用该端口"}.get(exc.errno or 0, "该地址不可用")
            raise ConfigError(f"无法监听 {settings.server.listen}：{why}",
                              file=settings.source, key="server.listen",
                              fix="停止占用该端口的程序（可能是另一个正在运行的 wecom-reminder 或演示），"
                                  "或把配置中的 server.listen 改为其他端口，如 127.0.0.1:8081") from None
