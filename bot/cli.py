"""The `wecom-reminder` command. Errors become a Chinese message on stderr and an exit code."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from bot.clock import BEIJING
from bot.commands import handlers
from bot.commands.common import EXIT_ERRORS
from bot.errors import BotError


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期格式应为 YYYY-MM-DD，收到 {value}") from None


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"时间格式应为 YYYY-MM-DD HH:MM，收到 {value}") from None
    return moment.replace(tzinfo=BEIJING) if moment.tzinfo is None else moment


class ChineseFormatter(argparse.HelpFormatter):
    def add_usage(self, usage: str | None, actions, groups, prefix: str | None = None) -> None:  # type: ignore[no-untyped-def]
        super().add_usage(usage, actions, groups, "用法：" if prefix is None else prefix)


class ChineseParser(argparse.ArgumentParser):
    """argparse with its own words in Chinese: usage, section titles, help, errors."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", ChineseFormatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self._positionals.title = "参数"
        self._optionals.title = "选项"
        self.add_argument("-h", "--help", action="help", help="显示本帮助并退出")

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERRORS, f"参数错误：{translate_argparse(message)}\n运行 wecom-reminder --help 查看用法。\n")


_ARGPARSE_MESSAGES = (
    (re.compile(r"argument (\S+): invalid choice: '?([^' ]+)'? \(choose from (.*)\)"), "{0} 不能是 {1}，可选：{2}"),
    (re.compile(r"the following arguments are required: (.*)"), "缺少必需的参数：{0}"),
    (re.compile(r"unrecognized arguments: (.*)"), "无法识别的参数：{0}"),
    (re.compile(r"argument (\S+): expected one argument"), "参数 {0} 后面需要一个值"),
    (re.compile(r"argument (\S+): invalid int value: '(.*)'"), "参数 {0} 应为整数，收到 {1}"),
    (re.compile(r"argument (\S+): (.*)"), "参数 {0}：{1}"),
)


def translate_argparse(message: str) -> str:
    """argparse's English error messages in Chinese (the ones our commands can produce)."""
    for pattern, chinese in _ARGPARSE_MESSAGES:
        if match := pattern.fullmatch(message):
            return chinese.format(*(group.replace("'", "") for group in match.groups()))
    return message


def build_parser() -> argparse.ArgumentParser:
    parser = ChineseParser(prog="wecom-reminder", description="廉洁过节提醒、会议提醒与学习台账：企业微信推送服务")
    parser.add_argument("--config", help="配置文件路径（默认：环境变量 WECOM_REMINDER_CONFIG，或 ./config.yaml）")
    parser.add_argument("-v", "--verbose", action="store_true", help="输出调试日志")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ChineseParser, metavar="命令")

    p = sub.add_parser("plan", help="列出计划发送的消息")
    p.add_argument("--from", dest="start", type=_date, help="起始日期（默认今天）")
    p.add_argument("--to", dest="end", type=_date, help="结束日期（默认起始日期后 90 天）")
    p.add_argument("--json", action="store_true", help="以 JSON 输出，每条消息每个对象一项")

    p = sub.add_parser("check", help="检查配置、日程和模板")
    p.add_argument("--today", type=_date, help="按指定日期检查（用于演练，默认今天）")
    p.add_argument("--online", action="store_true",
                   help="同时连接企业微信做部署检查：应用凭据、企业可信IP、可见范围，逐个推送对象列出状态和处理办法")
    p.add_argument("--send-test", action="store_true",
                   help="（含 --online）再向管理员推送对象和每个群机器人发送一条简短的测试消息")

    sub.add_parser("run", help="运行服务：定时发送、回调和管理后台")
    p = sub.add_parser("demo", help="同时启动内置企业微信模拟器和服务，用于体验")
    p.add_argument("--no-welcome", action="store_true", help="启动时不发送演示消息")
    sub.add_parser("simulator", help="只启动内置企业微信模拟器")

    p = sub.add_parser("send", help="立即（或在指定时间）发送一条消息")
    p.add_argument("--template", required=True, help="模板名称，如 holiday_integrity")
    p.add_argument("--to", required=True, action="append", help="推送对象或分组名称，可重复")
    p.add_argument("--at", type=_moment, help="发送时间，如 2026-12-01 09:00（默认立即发送）")

    p = sub.add_parser("deliveries", help="查看最近的发送记录")
    p.add_argument("--json", action="store_true")
    p.add_argument("--status", help="只看某种状态：pending sent failed missed …")
    p.add_argument("--limit", type=int, default=50)

    p = sub.add_parser("report", help="学习台账：各支部学习完成情况")
    p.add_argument("--item", help="学习事项编号")
    p.add_argument("--year", type=int, help="年度（默认今年）")
    p.add_argument("--json", action="store_true")
    p.add_argument("--csv", type=Path, help="导出 CSV 文件")
    p.add_argument("--xlsx", type=Path, help="导出 Excel 文件")

    p = sub.add_parser("meetings", help="会议计划与三会一课落实情况")
    p.add_argument("--year", type=int, help="年度（默认今年）")

    p = sub.add_parser("holidays", help="国务院节假日安排：导入通知")
    h = p.add_subparsers(dest="holidays_command", required=True, parser_class=ChineseParser, metavar="操作")
    i = h.add_parser("import", help="读取国务院办公厅的节假日安排通知（或调整通知），写入 schedules/holidays/")
    i.add_argument("file", metavar="文件", help="通知全文的文本文件或保存的网页；- 表示从标准输入读取")
    i.add_argument("--print", dest="print_only", action="store_true",
                   help="不写入文件，只在标准输出打印将写入的 YAML（摘要输出到标准错误）")
    i.add_argument("--published", type=_date, metavar="日期", help="通知发布日期（原文没有落款日期时指定）")

    p = sub.add_parser("backup", help="备份 SQLite 数据库（服务运行时也可执行）")
    p.add_argument("file", type=Path, help="备份文件，如 /备份/wecom-reminder-20261127.db")
    p.add_argument("--force", action="store_true", help="备份文件已存在时覆盖")

    p = sub.add_parser("admin", help="管理后台账号")
    admin = p.add_subparsers(dest="admin_command", required=True, parser_class=ChineseParser, metavar="操作")
    a = admin.add_parser("create", help="创建账号（随后输入密码）")
    a.add_argument("name")
    a.add_argument("--role", choices=["admin", "readonly"], default="admin",
                   help="admin：管理员（可修改）；readonly：只读")
    a.add_argument("--password-stdin", action="store_true", help="从标准输入读取密码（一行），用于脚本")
    admin.add_parser("list", help="列出全部账号")
    a = admin.add_parser("reset-password", help="重设账号密码（也会重新启用已停用的账号）")
    a.add_argument("name")
    a.add_argument("--password-stdin", action="store_true", help="从标准输入读取密码（一行），用于脚本")
    a = admin.add_parser("disable", help="停用账号：不能再登录，已登录的会话随即失效")
    a.add_argument("name")
    a = admin.add_parser("unlock", help="解除账号的登录锁定（多次密码错误后）")
    a.add_argument("name")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "apscheduler", "waitress.queue", "websockets"):  # their INFO lines are English
        logging.getLogger(noisy).setLevel(logging.WARNING)
    handler: Callable[[argparse.Namespace], int] = getattr(handlers, f"cmd_{args.command}")
    try:
        return handler(args)
    except BotError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return EXIT_ERRORS
    except KeyboardInterrupt:
        return 130
