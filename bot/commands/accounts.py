"""`wecom-reminder admin …`: the console's accounts (create, list, reset-password, disable, unlock).

A password is asked twice at a terminal (its length checked before the second question), or read
as one line from standard input with ``--password-stdin`` for scripts; an end of input is a
Chinese error, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from bot.clock import SystemClock
from bot.errors import BotError
from bot.runtime import Runtime
from bot.store.accounts import (
    ROLE_LABELS,
    check_password,
    create_admin,
    disable_admin,
    is_disabled,
    list_admins,
    reset_password,
    unlock,
)

EXIT_OK = 0
NO_PASSWORD = "没有读到密码（输入已结束）。处理办法：在终端中运行并输入密码，或用 --password-stdin 从标准输入提供一行密码"


def read_password(from_stdin: bool) -> str:
    """The new password: one line of stdin, or asked twice at the terminal."""
    try:
        if from_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise EOFError
            check_password(password)
            return password
        password = getpass.getpass("请输入密码（至少 10 位）：")
        check_password(password)  # before asking again: no point confirming a password that cannot be used
        if password != getpass.getpass("请再次输入密码："):
            raise BotError("两次输入的密码不一致。处理办法：重新运行该命令")
        return password
    except EOFError:
        raise BotError(NO_PASSWORD) from None


def run_admin(args: argparse.Namespace) -> int:
    runtime = Runtime(args.config, SystemClock())
    try:
        match args.admin_command:
            case "create":
                password = read_password(args.password_stdin)
                create_admin(runtime.store, args.name, password, args.role, now=runtime.clock.now())
                print(f"已创建{ROLE_LABELS[args.role]}账号 {args.name}。"
                      f"登录地址：http://{runtime.settings().server.listen}/admin/login")
            case "list":
                print_accounts(runtime)
            case "reset-password":
                reset_password(runtime.store, args.name, read_password(args.password_stdin))
                print(f"已重设账号 {args.name} 的密码。")
            case "unlock":
                unlock(runtime.store, args.name, runtime.clock.now())
                print(f"已解除账号 {args.name} 的登录锁定，可立即重新登录。")
            case "disable":
                disable_admin(runtime.store, args.name)
                print(f"已停用账号 {args.name}：不能再登录，已登录的会话随即失效。用 reset-password 可重新启用。")
        return EXIT_OK
    finally:
        runtime.close()


def print_accounts(runtime: Runtime) -> None:
    users = list_admins(runtime.store)
    if not users:
        print("还没有任何账号。处理办法：运行 admin create 名称 创建管理员")
        return
    zone = runtime.settings().zone
    for user in users:
        state = "已停用" if is_disabled(user) else "正常"
        last = user.last_login_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if user.last_login_at else "从未登录"
        print(f"{user.name}\t{ROLE_LABELS.get(user.role, user.role)}\t{state}\t最近登录：{last}")
