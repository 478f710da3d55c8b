"""Login and roles (the accounts themselves are ``bot.store.accounts``).

One address may fail at most 20 times in 15 minutes.
Every /admin page needs a login; a read-only account's requests that change something are refused
here, in one place, so no page can forget the check.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from flask import abort, current_app, g, redirect, render_template, request, session, url_for

from bot.store.accounts import LOCK_FOR, authenticate, load_account
from bot.web.common import console, now, runtime

ADDRESS_FAILURES = 20
GENERIC_ERROR = "用户名或密码不正确，或登录尝试次数过多已暂时锁定。请核对后重试，或 15 分钟后再试。"
# Endpoints open without a login, and POSTs a read-only account may make (they change nothing).
PUBLIC = {"console.login", "console.static"}
READONLY_POSTS = {"console.logout", "console.template_preview"}


class AddressThrottle:
    """Failed logins per client address within a sliding window (in memory, per process)."""

    def __init__(self, limit: int = ADDRESS_FAILURES, window: timedelta = LOCK_FOR) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def blocked(self, address: str, at: datetime) -> bool:
        with self._lock:
            recent = self._recent(address, at)
            return len(recent) >= self.limit

    def failed(self, address: str, at: datetime) -> None:
        with self._lock:
            self._recent(address, at).append(at)

    def _recent(self, address: str, at: datetime) -> deque[datetime]:
        recent = self._failures.setdefault(address, deque())
        while recent and recent[0] <= at - self.window:
            recent.popleft()
        return recent


def _throttle() -> AddressThrottle:
    return current_app.extensions.setdefault("wecom_login_throttle", AddressThrottle())


@console.before_request
def require_login() -> Any:
    g.user = load_account(runtime().store, session.get("uid"))
    if request.endpoint in PUBLIC:
        return None
    if g.user is None:
        session.pop("uid", None)
        return redirect(url_for("console.login", next=request.full_path if request.method == "GET" else None))
    if request.method == "POST" and not g.user.can_change and request.endpoint not in READONLY_POSTS:
        abort(403, "只读账号不能进行修改操作。如需修改，请使用管理员账号登录。")
    return None


@console.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("login.html", error=None)
    name, password = request.form.get("name", ""), request.form.get("password", "")
    address, at = request.remote_addr or "-", now()
    account = None if _throttle().blocked(address, at) else authenticate(runtime().store, name, password, at)
    if account is None:
        _throttle().failed(address, at)
        return render_template("login.html", error=GENERIC_ERROR, name=name), 401
    session.clear()
    session.permanent = True
    session["uid"] = account.id
    return redirect(_safe_next(request.args.get("next")))


def _safe_next(target: str | None) -> str:
    """Only a path inside the console, never another site."""
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.overview")


@console.post("/logout")
def logout() -> Any:
    session.clear()
    return redirect(url_for("console.login"))
