"""Login, sessions and roles (the accounts themselves are ``bot.store.accounts``).

Failed logins are held back as ``bot.web.throttle`` says; every refusal (wrong name or password,
held back, locked) costs one hash check and gets the same page. A session carries the account's
``session_epoch`` (``end_sessions`` ends them all, on the server) and ends after
``server.session_idle`` unused and ``server.session_lifetime`` in all. Every /admin page needs a login; a read-only account's requests that change something are refused
here, in one place, so no page can forget the check.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import abort, current_app, g, redirect, render_template, request, session, url_for

from bot.store.accounts import Account, authenticate, end_sessions, load_account
from bot.store.db import Store
from bot.web.common import console, now, runtime
from bot.web.throttle import LoginThrottle, client_address

GENERIC_ERROR = "用户名或密码不正确，或登录尝试次数过多已暂时锁定。请核对后重试，或 15 分钟后再试。"
# Endpoints open without a login, and POSTs a read-only account may make (they change nothing).
PUBLIC = {"console.login", "console.static"}
READONLY_POSTS = {"console.logout", "console.template_preview"}
SESSION_KEYS = ("uid", "epoch", "issued", "seen")


def session_account(store: Store, at: datetime, idle: timedelta, lifetime: timedelta) -> Account | None:
    """The signed-in account, if its session is still current; refreshes the idle clock."""
    account = load_account(store, session.get("uid"))
    issued, seen = session.get("issued"), session.get("seen")
    if account is None or session.get("epoch") != account.epoch:
        return None
    if not isinstance(issued, float) or not isinstance(seen, float):
        return None
    stamp = at.timestamp()
    if stamp - seen > idle.total_seconds() or stamp - issued > lifetime.total_seconds():
        return None
    session["seen"] = stamp
    return account


def _throttle() -> LoginThrottle:
    return current_app.extensions.setdefault("wecom_login_throttle", LoginThrottle())


@console.before_request
def require_login() -> Any:
    server = runtime().settings().server
    g.user = session_account(runtime().store, now(), server.session_idle, server.session_lifetime)
    if request.endpoint in PUBLIC:
        return None
    if g.user is None:
        for key in SESSION_KEYS:
            session.pop(key, None)
        return redirect(url_for("console.login", next=request.full_path if request.method == "GET" else None))
    if request.method == "POST" and not g.user.can_change and request.endpoint not in READONLY_POSTS:
        abort(403, "只读账号不能进行修改操作。如需修改，请使用管理员账号登录。")
    return None


@console.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("login.html", error=None)
    name, password = request.form.get("name", ""), request.form.get("password", "")
    address = client_address(request, runtime().settings().server.trusted_proxy_header)
    at, throttle = now(), _throttle()
    result = authenticate(runtime().store, name, password, at,
                          lambda unlocked_at: throttle.blocked(name, address, at, unlocked_at))
    if result.account is None:
        if result.wrong_password:  # a right password held back is not a guess: it does not prolong the hold
            throttle.failed(name, address, at)
        return render_template("login.html", error=GENERIC_ERROR, name=name), 401
    session.clear()
    session.permanent = True
    session.update(uid=result.account.id, epoch=result.account.epoch, issued=at.timestamp(), seen=at.timestamp())
    return redirect(_safe_next(request.args.get("next")))


def _safe_next(target: str | None) -> str:
    """Only a path inside the console, never another site."""
    # printable only: a CR/LF would split the Location header (werkzeug refuses it with a 500)
    if target and target.startswith("/admin") and "\\" not in target and target.isprintable():
        return target
    return url_for("console.overview")


@console.post("/logout")
def logout() -> Any:
    if g.user is not None:
        end_sessions(runtime().store, g.user.name)
    session.clear()
    return redirect(url_for("console.login"))
