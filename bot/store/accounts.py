"""Console accounts: scrypt password hashes (werkzeug), roles, sessions, lock-out after failed logins.

An account is locked for 15 minutes (by the runtime clock) after 50 failed logins in a row from
anywhere: only a guess spread over many addresses gets there, since the console holds back one
client after 5 (``bot.web.throttle``). ``unlock`` lifts both. Each session carries the account's
``session_epoch``; ``end_sessions`` raises it, ending every session of the account on the server.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from bot.errors import BotError
from bot.store.db import Store
from bot.store.models import ADMIN_ROLES, AdminUser

MAX_FAILURES = 50
LOCK_FOR = timedelta(minutes=15)
MIN_PASSWORD = 10
ROLE_LABELS = {"admin": "管理员", "readonly": "只读"}
# A disabled account's hash starts with this (no scrypt hash does): it cannot match any password.
DISABLED = "!disabled:"


@functools.cache
def dummy_hash() -> str:
    """A hash to check unknown names against, so that they cost as much time as a wrong password.
    Made at first use: scrypt costs over half a second of CPU, which every start would otherwise pay."""
    return generate_password_hash("wecom-reminder-dummy", method="scrypt")


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    role: str
    epoch: int = 0  # the session_epoch a session must carry to be current

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
    check_password(password)
    with store.session() as db:
        if db.scalar(select(AdminUser).where(AdminUser.name == name)) is not None:
            raise BotError(f"账号 {name} 已存在。处理办法：换一个名称")
        user = AdminUser(name=name, password_hash=generate_password_hash(password, method="scrypt"), role=role)
        if now is not None:
            user.created_at = now
        db.add(user)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise BotError(f"密码至少 {MIN_PASSWORD} 位。处理办法：重新运行该命令并输入更长的密码")


def list_admins(store: Store) -> list[AdminUser]:
    with store.session(readonly=True) as db:
        users = list(db.scalars(select(AdminUser).order_by(AdminUser.id)))
        db.expunge_all()
        return users


def is_disabled(user: AdminUser) -> bool:
    return user.password_hash.startswith(DISABLED)


def reset_password(store: Store, name: str, password: str) -> None:
    """A new password (which also re-enables a disabled account) and no lock."""
    check_password(password)
    with store.session() as db:
        user = _existing(db, name)
        user.password_hash = generate_password_hash(password, method="scrypt")
        user.failed_logins, user.locked_until = 0, None
    end_sessions(store, name)  # whoever knew the old password is signed out everywhere


def disable_admin(store: Store, name: str) -> None:
    """The account can no longer log in, and its open sessions end at their next request."""
    with store.session() as db:
        user = _existing(db, name)
        if not is_disabled(user):
            user.password_hash = DISABLED + user.password_hash
    end_sessions(store, name)


def _existing(db: Any, name: str) -> AdminUser:
    user = db.scalar(select(AdminUser).where(AdminUser.name == name.strip()))
    if user is None:
        raise BotError(f"账号 {name} 不存在。处理办法：运行 admin list 查看已有账号")
    return user


@dataclass(frozen=True)
class Login:
    account: Account | None   # None: refused (why is not told to the client)
    wrong_password: bool      # a guess; a right password held back by a lock is not one


def authenticate(store: Store, name: str, password: str, at: datetime,
                 held: Callable[[datetime | None], bool] = lambda unlocked_at: False) -> Login:
    """Check a login; counts failures. ``held(unlocked_at)``: the console's hold on this client.

    Exactly one hash check on every path, so a locked, disabled or unknown account answers in the
    same time as a wrong password.
    """
    with store.session() as db:
        user = db.scalar(select(AdminUser).where(AdminUser.name == name.strip()))
        usable = user is not None and not is_disabled(user)
        right = check_password_hash(user.password_hash if usable else dummy_hash(), password) and usable
        locked = usable and user.locked_until is not None and user.locked_until > at
        if not right or locked or held(user.unlocked_at if user else None):
            if usable and not right:
                _count_failure(user, at)
            return Login(None, not right)
        user.failed_logins, user.locked_until, user.last_login_at = 0, None, at
        return Login(Account(user.id, user.name, user.role, user.session_epoch or 0), False)


def _count_failure(user: AdminUser, at: datetime) -> None:
    user.failed_logins = (user.failed_logins or 0) + 1
    if user.failed_logins >= MAX_FAILURES:
        user.failed_logins, user.locked_until = 0, at + LOCK_FOR


def load_account(store: Store, user_id: Any) -> Account | None:
    if not isinstance(user_id, int):
        return None
    with store.session(readonly=True) as db:
        user = db.get(AdminUser, user_id)
        return Account(user.id, user.name, user.role, user.session_epoch or 0) if user and not is_disabled(user) else None


def end_sessions(store: Store, name: str) -> None:
    """End every console session of the account, on the server (logout, password reset, disable)."""
    with store.session() as db:
        user = _existing(db, name)
        user.session_epoch = (user.session_epoch or 0) + 1


def unlock(store: Store, name: str, at: datetime) -> None:
    """Lift every login hold on the account: the lock, and the failures counted before ``at``."""
    with store.session() as db:
        user = _existing(db, name)
        user.failed_logins, user.locked_until, user.unlocked_at = 0, None, at
