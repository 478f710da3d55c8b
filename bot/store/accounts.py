"""Console accounts: scrypt password hashes (werkzeug), roles, lock-out after failed logins.

An account is locked for 15 minutes (by the runtime clock) after 5 failed logins in a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from bot.errors import BotError
from bot.store.db import Store
from bot.store.models import ADMIN_ROLES, AdminUser

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
MIN_PASSWORD = 10
ROLE_LABELS = {"admin": "管理员", "readonly": "只读"}
# A disabled account's hash starts with this (no scrypt hash does): it cannot match any password.
DISABLED = "!disabled:"
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
    # TODO(issue 16): end the account's open sessions here (end_sessions) once it is on main.


def disable_admin(store: Store, name: str) -> None:
    """The account can no longer log in, and its open sessions end at their next request."""
    with store.session() as db:
        user = _existing(db, name)
        if not is_disabled(user):
            user.password_hash = DISABLED + user.password_hash


def _existing(db: Any, name: str) -> AdminUser:
    user = db.scalar(select(AdminUser).where(AdminUser.name == name.strip()))
    if user is None:
        raise BotError(f"账号 {name} 不存在。处理办法：运行 admin list 查看已有账号")
    return user


def authenticate(store: Store, name: str, password: str, at: datetime) -> Account | None:
    """The account if the password is right and the account is not locked; counts failures."""
    with store.session() as db:
        user = db.scalar(select(AdminUser).where(AdminUser.name == name.strip()))
        if user is None or is_disabled(user):
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
        return Account(user.id, user.name, user.role) if user and not is_disabled(user) else None
