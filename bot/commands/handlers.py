"""What each `wecom-reminder` command does (the parser lives in bot.cli)."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from bot.clock import TEST_CLOCK_ENV, FileClock, SystemClock, clock_from_environment
from bot.commands.checks import run_checks
from bot.commands.common import EXIT_ERRORS, EXIT_OK, default_window, print_json, today_in_beijing
from bot.commands.server import serve
from bot.config import Settings
from bot.errors import BotError, ConfigError
from bot.formatting import STATUS_LABELS, format_deliveries, format_plan, iso
from bot.inputs import load_all
from bot.plan import PlanState, build_plan
from bot.runtime import Runtime

log = logging.getLogger(__name__)


def cmd_plan(args: argparse.Namespace) -> int:
    start, end = default_window(args.start, args.end)
    if end < start:
        raise BotError("结束日期早于起始日期。处理办法：调整 --from 和 --to")
    runtime = _existing_runtime(args.config)
    if runtime is None:  # no database yet: nothing has happened that the plan depends on
        loaded = load_all(args.config)
        inputs, state = loaded.plan_inputs(), PlanState()
    else:
        loaded, inputs, state = runtime.loaded(), runtime.plan_inputs(), runtime.plan_state()
        runtime.close()
    plan = build_plan(inputs, start, end, SystemClock(loaded.settings.zone).now(), state)
    if args.json:
        for notice in plan.notices:
            print(f"注意：{notice}", file=sys.stderr)
        print_json([m.as_json() for m in plan.messages])
    else:
        print(format_plan(plan.messages, plan.notices, loaded.settings.all_targets()))
    return EXIT_OK


def _existing_runtime(config: str | None) -> Runtime | None:
    """A runtime over the database, if there is one already (plan and check never create it)."""
    from bot.config import load_settings
    settings = load_settings(config)
    url = settings.database_url()
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return None
    return Runtime(config, SystemClock(settings.zone))


def cmd_check(args: argparse.Namespace) -> int:
    result = run_checks(args.config, args.today or today_in_beijing(), online=args.online or args.send_test,
                        send_test=args.send_test)
    print(result.text())
    return result.exit_code


def cmd_run(args: argparse.Namespace) -> int:
    from bot.commands.server import ensure_listen_free
    from bot.config import load_settings
    ensure_listen_free(load_settings(args.config))
    clock = clock_from_environment()
    runtime = Runtime(args.config, clock)
    if isinstance(clock, FileClock):
        refuse_remote_wecom(runtime.settings())
    return serve(runtime)


def refuse_remote_wecom(settings: Settings) -> None:
    """A moved clock may send a year's messages in minutes: only ever to a WeCom on this machine."""
    host = urlparse(settings.wecom.api_base).hostname if settings.wecom else None
    if host not in ("127.0.0.1", "localhost"):
        raise ConfigError(f"设置了测试时钟 {TEST_CLOCK_ENV}，但 wecom.api_base 不是本机的模拟器，拒绝启动",
                          file=settings.source, key="wecom.api_base",
                          fix=f"正式运行时不要设置环境变量 {TEST_CLOCK_ENV}")


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.commands.demo import run_demo
    return run_demo(args.config or "config.example.yaml", welcome=not args.no_welcome)


def cmd_simulator(args: argparse.Namespace) -> int:
    from bot.commands.demo import serve_simulator_for
    from bot.config import load_settings
    serve_simulator_for(load_settings(args.config))
    return EXIT_OK


def cmd_send(args: argparse.Namespace) -> int:
    from bot.commands.manual import enqueue_manual, send_outcome_text
    from bot.delivery.send_now import deliver_now
    runtime = Runtime(args.config, SystemClock())
    try:
        keys = enqueue_manual(runtime, args.template, args.to, args.at)
        if args.at:
            print(f"已加入发件箱，将于 {args.at:%Y-%m-%d %H:%M} 由运行中的服务发送（共 {len(keys)} 条）。")
            return EXIT_OK
        rows = deliver_now(runtime.store, runtime.settings(), runtime.clock, keys)
        print(send_outcome_text(rows, runtime.settings()))
        return EXIT_OK if all(row.status == "sent" for row in rows) else EXIT_ERRORS
    finally:
        runtime.close()


def cmd_backup(args: argparse.Namespace) -> int:
    from bot.commands.backup import backup
    from bot.config import load_settings
    print(backup(load_settings(args.config).database_url(), args.file, overwrite=args.force).text())
    return EXIT_OK


def cmd_deliveries(args: argparse.Namespace) -> int:
    from bot.store.queries import list_deliveries
    runtime = Runtime(args.config, SystemClock())
    try:
        rows = list_deliveries(runtime.store, status=args.status, limit=args.limit)
        zone = runtime.settings().zone
        if args.json:
            print_json([{"key": r.key, "due_at": iso(r.due_at, zone), "kind": r.kind, "rule": r.rule,
                         "target": r.target, "status": r.status, "status_label": STATUS_LABELS.get(r.status),
                         "attempts": r.attempts, "late": r.late, "resent": r.resent, "error": r.last_error,
                         "errcode": r.errcode, "msgid": r.msgid, "sent_at": iso(r.sent_at, zone),
                         "item": r.item} for r in rows])
        else:
            print(format_deliveries(rows, zone) if rows else "暂无发送记录。")
        return EXIT_OK
    finally:
        runtime.close()


def cmd_report(args: argparse.Namespace) -> int:
    from bot.inbox.ledger import report_rows
    from bot.reports import format_report, report_json, summarize, write_csv, write_xlsx
    runtime = Runtime(args.config, SystemClock())
    try:
        settings, now = runtime.settings(), runtime.clock.now()
        if runtime.studies() is None:
            raise BotError("没有学习计划：schedules/studies.yaml 不存在。处理办法：参照 README 添加学习事项")
        year = None if args.item else (args.year or now.year)
        rows = report_rows(runtime.store, settings, runtime.studies(), now, year=year, item=args.item)
        summary = summarize(rows)
        if args.csv:
            write_csv(args.csv, rows, summary)
            print(f"已导出：{args.csv}")
        if args.xlsx:
            title = f"{settings.organisation.name}学习台账（{args.item or f'{year}年'}）"
            write_xlsx(args.xlsx, rows, summary, title=title, generated_at=now)
            print(f"已导出：{args.xlsx}")
        if args.json:
            print_json(report_json(rows))
        elif not (args.csv or args.xlsx):
            print(format_report(rows, summary))
        return EXIT_OK
    finally:
        runtime.close()


def cmd_meetings(args: argparse.Namespace) -> int:
    from bot.calendars.meetings import expand_meetings
    from bot.rules.meetings import format_compliance, meeting_compliance
    loaded = load_all(args.config)
    if loaded.meetings is None:
        raise BotError("没有会议计划：schedules/meetings.yaml 不存在。处理办法：参照 README 添加会议")
    year = args.year or today_in_beijing().year
    start, end = datetime(year, 1, 1).date(), datetime(year, 12, 31).date()
    occurrences = expand_meetings(loaded.meetings, loaded.calendar, start, end, loaded.ics_texts)
    branches = {b.id: b.name for b in loaded.settings.organisation.branches}
    print(format_compliance(meeting_compliance(occurrences, year, branches)))
    return EXIT_OK


def cmd_admin(args: argparse.Namespace) -> int:
    from bot.commands.accounts import run_admin
    return run_admin(args)


def cmd_holidays(args: argparse.Namespace) -> int:
    """holidays import FILE: show what the notice says, then write the year file (unless --print)."""
    from bot.config import load_settings
    from bot.inputs import holidays_folder, read_notice_text, write_notice_file
    folder = holidays_folder(load_settings(args.config))
    result = read_notice_text(_read_input(args.file), folder, args.published)
    print("\n".join(result.summary()), file=sys.stderr)
    if args.print_only:
        sys.stdout.write(result.yaml)
        return EXIT_OK
    path = write_notice_file(folder, result.notice.year, result.yaml)
    print(f"已{result.verb} {path}；运行中的服务将自动按新安排重新排期。", file=sys.stderr)
    return EXIT_OK


def _read_input(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    path = Path(name)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise BotError(f"找不到文件 {path}。处理办法：检查文件路径") from None
    except UnicodeDecodeError:
        raise BotError(f"文件 {path} 不是 UTF-8 编码的文本。处理办法：另存为 UTF-8 文本或网页后再导入") from None
