"""Accounts, login and roles.

Passwords are hashed with scrypt (werkzeug). An account is locked for 15 minutes (by the runtime
clock) after 5 failed logins in a row, and one address may fail at most 20 times in 15 minutes.
Every /admin page needs a login; a read-only account's requests that change something are refused
here, in one place, so no page can forget the check.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import abort, current_app, g, redirect, render_template, request, session, url_for
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from bot.errors import BotError
from bot.store.db import Store
from bot.store.models import ADMIN_ROLES, AdminUser
from bot.web.common import console, now, runtime

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
ADDRESS_FAILURES = 20
MIN_PASSWORD = 10
GENERIC_ERROR = "用户名或密码不正确，或登录尝试次数过多已暂时锁定。请核对后重试，或 15 分钟后再试。"
ROLE_LABELS = {"admin": "管理员", "readonly": "只读"}
# Endpoints open without a login, and POSTs a read-only account may make (they change nothing).
PUBLIC = {"console.login", "console.static"}
READONLY_POSTS = {"console.logout", "console.template_preview"}
# Hashed once so that an unknown name costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash("wecom-reminder-dummy", method="scrypt")


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    role: str

    @property
    def can_change(self) -> bool:
        return self.role == "admin"

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)


def create_admin(store: Store, name: str, password: str, role: str = "admin", *,
                 now: datetime | None = None) -> None:
    """Create an account (the CLI asks the password); BotError in Chinese when it cannot."""
    name = name.strip()
    if not name or len(name) > 100:
        raise BotError("账号名称不能为空，且不超过 100 个字符")
    if role not in ADMIN_ROLES:
        raise BotError(f"未知的角色 {role}。处理办法：使用 admin（管理员）或 readonly（只读）")
    if len(password) < MIN_PASSWORD:
        raise BotError(f"密码至少 {MIN_PASSWORD} 位。处理办法：重新运行该命令并输入更长的密码")
    with store.session() as db:
        if db.scalar(select(AdminUser).where(AdminUser.name == name)) is not None:
            raise BotError(f"账号 {name} 已存在。处理办法：换一个名称")
        user = AdminUser(name=name, password_hash=generate_password_hash(password, method="scrypt"), role=role)
        if now is not None:
            user.created_at = now
        db.add(user)


def authenticate(store: Store, name: str, password: str, at: datetime) -> Account | None:
    """The account if the password is right and the account is not locked; counts failures."""
    with store.session() as db:
        user = db.scalar(select(AdminUser).where(AdminUser.name == name.strip()))
        if user is None:
            check_password_hash(_DUMMY_HASH, password)
            return None
        if user.locked_until is not None and user.locked_until > at:
            return None
        if not check_password_hash(user.password_hash, password):
            _count_failure(user, at)
            return None
        user.failed_logins, user.locked_until, user.last_login_at = 0, None, at
        return Account(user.id, user.name, user.role)


def _count_failure(user: AdminUser, at: datetime) -> None:
    user.failed_logins = (user.failed_logins or 0) + 1
    if user.failed_logins >= MAX_FAILURES:
        user.failed_logins, user.locked_until = 0, at + LOCK_FOR


def load_account(store: Store, user_id: Any) -> Account | None:
    if not isinstance(user_id, int):
        return None
    with store.session(readonly=True) as db:
        user = db.get(AdminUser, user_id)
        return Account(user.id, user.name, user.role) if user else None


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
