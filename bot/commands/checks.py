"""`wecom-reminder check`: the config, the schedules and every template, and missing holiday data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from bot.calendars.holiday_status import holiday_alert
from bot.clock import BEIJING
from bot.commands.doctor import Doctor, TargetState, doctor_table
from bot.config import Settings
from bot.errors import BotError
from bot.inputs import Loaded, load_all
from bot.plan import build_plan
from bot.templates.limits import template_channels
from bot.templates.pool import shared_pool
from bot.templates.render import TemplateLibrary, validate_template
from bot.templates.samples import sample_context

LOOKAHEAD_DAYS = 90


@dataclass
class CheckResult:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    targets: list[TargetState] = field(default_factory=list)  # check --online: one row per target

    @property
    def exit_code(self) -> int:
        levels = {row.level for row in self.targets}
        return 2 if self.errors or "error" in levels else 1 if self.warnings or "warning" in levels else 0

    def text(self) -> str:
        lines = [f"✓ {line}" for line in self.passed]
        lines += [doctor_table(self.targets)] if self.targets else []
        lines += [f"警告：{line}" for line in self.warnings]
        lines += [f"错误：{line}" for line in self.errors]
        verdict = ("检查未通过：请按上面的说明修改后重新运行 check。" if self.exit_code == 2 else
                   "检查通过，但有需要注意的警告。" if self.exit_code == 1 else "检查通过。")
        return "\n".join([*lines, verdict])


def run_checks(config: str | Path | None, today: date, online: bool = False, send_test: bool = False) -> CheckResult:
    result = CheckResult()
    try:
        loaded = load_all(config)
    except BotError as exc:
        result.errors.append(str(exc))
        return result
    if online:
        check_wecom_online(loaded.settings, result, send_test)
    result.passed.append(f"配置文件 {loaded.settings.source} 有效")
    if not loaded.settings.admin_chain():
        result.warnings.append("未配置 admins.targets：发送失败、错过发送、学习逾期等情况不会通知任何人。"
                               "处理办法：在配置文件中设置 admins: {targets: [党办纪检工作人员的推送对象, 党办群的机器人]}")
    result.passed.append(f"节假日安排：已有 {'、'.join(str(y) for y in sorted(loaded.calendar.years))} 年")
    result.warnings += list(loaded.ics_errors)
    check_templates(loaded, result)
    check_holiday_coverage(loaded, today, result)
    if not result.errors:
        check_plan(loaded, today, result)
    return result


def check_templates(loaded: Loaded, result: CheckResult) -> None:
    library = TemplateLibrary(loaded.settings.path("messages"), pool=shared_pool())  # compiled in the pool
    kinds = {rule.template: rule.kind for rule in loaded.settings.rules}
    names = library.names()
    for rule in loaded.settings.rules:
        if rule.template not in names:
            result.errors.append(f"规则 {rule.id} 使用的模板 {rule.template} 不存在。"
                                 f"处理办法：在 messages/ 中添加 {rule.template}.j2，或改用已有模板")
    bad = 0
    for name in names:
        text = library.source(name).text
        channels = template_channels(loaded.settings, name)
        for problem in validate_template(library, name, text, sample_context(name, kinds.get(name)), channels):
            result.errors.append(f"模板 {name}：{problem.text}")
            bad += 1
    if not bad:
        result.passed.append(f"模板：{len(names)} 个，全部有效")


def check_holiday_coverage(loaded: Loaded, today: date, result: CheckResult) -> None:
    calendar = loaded.calendar
    next_year = today.year + 1
    alert = holiday_alert({*calendar.years, today.year}, today)  # next year's level, whatever this year's
    level = alert.level if alert is not None else None
    if level:
        message = (f"【{level}】缺少 {next_year} 年的国务院节假日安排（schedules/holidays/{next_year}.yaml），"
                   f"{next_year} 年元旦、春节等节前提醒无法排定。处理办法：国务院办公厅发布通知后，"
                   "运行 wecom-reminder holidays import 通知.txt 导入通知（或在管理后台“日历与会议”页导入）")
        (result.errors if level == "严重" else result.warnings).append(message)
    horizon = today + timedelta(days=LOOKAHEAD_DAYS)
    for year in calendar.missing_years(today, horizon):
        if year != next_year or not level:
            result.warnings.append(f"未来 {LOOKAHEAD_DAYS} 天涉及 {year} 年，但缺少该年的国务院节假日安排。"
                                   f"处理办法：添加 schedules/holidays/{year}.yaml")


def check_plan(loaded: Loaded, today: date, result: CheckResult) -> None:
    """Render the real plan for the coming days: catches what samples cannot (real sizes, targets)."""
    inputs = loaded.plan_inputs()
    now = datetime.combine(today, time(0, 0), tzinfo=BEIJING)
    try:
        plan = build_plan(inputs, today, today + timedelta(days=LOOKAHEAD_DAYS), now)
    except BotError as exc:
        result.errors.append(f"生成发送计划时出错：{exc}")
        return
    for message in plan.messages:
        for problem in message.problems:
            result.errors.append(f"{message.due_at:%Y-%m-%d %H:%M} 发往 {message.target} 的消息：{problem}")
    result.passed.append(f"未来 {LOOKAHEAD_DAYS} 天计划发送 {len(plan.messages)} 条消息")


def check_wecom_online(settings: Settings, result: CheckResult, send_test: bool = False) -> None:
    """`check --online`: the deployment doctor (bot.commands.doctor), one row per target."""
    if settings.wecom is None:
        result.passed.append("未配置企业微信（wecom），消息只打印到控制台")
        return
    result.targets = Doctor(settings, send_test).diagnose()
