"""The year benchmark's figures, from the service's database set against the simulator's record.

A message is due when the service put it in its outbox. What WeCom received is counted in the
simulator, by address and text, independently of what the service believes it sent: a sent row
received twice is a duplicate, a sent row never received (or a row still waiting at the end of the
year) is lost. Days off come from chinese_calendar, not from the service's own holiday files.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import chinese_calendar
from sqlalchemy import func, select

from bench.year_org import OFFICE, chat_id, robot_key, secretary
from bot.clock import BEIJING
from bot.simulator import Simulator
from bot.store.db import Store
from bot.store.models import Confirmation, Delivery, DeliveryAttempt, InboundMessage
from bot.wecom.outcomes import TIMED_OUT

CHANNELS = ("robot", "app", "appchat")
NOT_PLANNED = ("alert", "reply")  # alerts and late callback answers: the service's own words
ALERT_COUNT = re.compile(r"^【wecom-reminder 告警】(\d+) 条消息(错过发送时间|发送失败|发送结果不明)")
# One alert per (cause, target, day) that retrying cannot cure (60020 …): a line per message it stopped.
MORE_LINES = re.compile(r"另有 (\d+) 条")
CONFIGURATION_ALERT = re.compile(r"^【wecom-reminder 告警】推送对象「.+」配置有误")


def channel_of(target: str) -> str:
    """The channel of a target of bench.year_org's organisation (the outbox keeps only its name)."""
    if target.endswith("_group"):
        return "robot"
    return "appchat" if target.endswith("_chat") else "app"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share + 0.999999) - 1)] if ordered else 0.0


@dataclass
class ChannelFigures:
    due: int = 0
    on_time: int = 0
    lateness: list[float] = field(default_factory=list)  # seconds after the due time, sends on time
    late: int = 0
    missed: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0
    duplicates: int = 0
    lost: int = 0
    days_off: int = 0
    in_flight: int = 0        # rows 'sending' at the moment of a SIGKILL
    timeouts: int = 0         # attempts the service gave up waiting for (WeCom may have taken them)
    unexplained: list[str] = field(default_factory=list)  # keys received twice, neither in flight nor timed out


@dataclass
class YearFigures:
    channels: dict[str, ChannelFigures]
    alerted: Counter[str]
    lost_keys: list[str]
    inbox: int
    confirmations: int


def received(simulator: Simulator) -> Counter[tuple[str, str]]:
    """(address, text) → how many times WeCom delivered it."""
    world, found = simulator.world, Counter[tuple[str, str]]()
    with world.lock:
        for key, messages in world.robot_messages.items():
            found.update((key, _content(m)) for m in messages)
        for chatid, messages in world.chat_messages.items():
            found.update((chatid, _content(m)) for m in messages)
        for user, messages in world.user_messages.items():
            found.update((user, _content(m)) for m in messages)
    return found


def _content(message: dict[str, Any]) -> str:
    body = message.get(message.get("msgtype", ""), {})
    return str(body.get("content") or body.get("description") or body.get("main_title", {}).get("title", ""))


def row_content(row: Delivery) -> str:
    """What WeCom shows of the row: an app card shows its title."""
    return str(row.card["title"]) if row.card and channel_of(row.target) == "app" else row.text


def address_of(target: str) -> str:
    """Where WeCom keeps the target's messages: the robot's key, the chat, or the one member."""
    if target == "office":
        return OFFICE
    number = int(target[1:].split("_", 1)[0])
    return {"robot": robot_key, "appchat": chat_id, "app": secretary}[channel_of(target)](number)


def is_day_off(day: date) -> bool:
    return not chinese_calendar.is_workday(day)


def tally(store: Store, simulator: Simulator, in_flight: Counter[str], in_flight_keys: set[str],
          end: datetime) -> YearFigures:
    """The figures of the year up to ``end`` (rows due later may still wait)."""
    timed_out = timed_out_attempts(store)
    timeouts = Counter(channel_of(target) for target, _ in timed_out)
    channels = {name: ChannelFigures(in_flight=in_flight[name], timeouts=timeouts[name]) for name in CHANNELS}
    explained = in_flight_keys | {key for _, key in timed_out}
    got = received(simulator)
    expected: Counter[tuple[str, str]] = Counter()
    rows_by_text: dict[tuple[str, str], list[Delivery]] = defaultdict(list)
    with store.session(readonly=True) as session:
        rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
        alerted = count_alerts([row for row in rows if row.kind == "alert"])
        for row in rows:
            if row.kind == "alert":
                continue
            if row.rule in NOT_PLANNED or row.due_at >= end:
                continue
            figures = channels[channel_of(row.target)]
            _count_row(figures, row)
            fingerprint = (address_of(row.target), row_content(row))
            rows_by_text[fingerprint].append(row)
            expected[fingerprint] += 1 if row.status == "sent" else 0
        inbox = session.scalar(select(func.count()).select_from(InboundMessage)) or 0
        confirmations = session.scalar(select(func.count()).select_from(Confirmation)) or 0
        lost_keys = _compare(channels, got, expected, rows_by_text, explained)
        lost_keys += [row.key for row in rows if row.status in ("pending", "retry", "sending")
                      and row.kind != "alert" and row.rule not in NOT_PLANNED and row.due_at < end]
    return YearFigures(channels, alerted, lost_keys, inbox, confirmations)


def count_alerts(rows: list[Delivery]) -> Counter[str]:
    """Messages named in alerts, by cause: an alert goes down the administrators' chain (a row per
    target tried, one occurrence) and counts once, as delivered if any of its rows was sent; a long
    one comes in parts, each naming its own messages."""
    by_occurrence: dict[str, list[Delivery]] = defaultdict(list)
    for row in rows:
        by_occurrence[row.occurrence].append(row)
    alerted: Counter[str] = Counter()
    for tried in by_occurrence.values():
        text = tried[0].text
        heard = "" if any(r.status == "sent" for r in tried) else "（未送达管理员）"
        named = sum(_named(line) for line in text.splitlines())
        if match := ALERT_COUNT.match(text):
            alerted[match.group(2) + heard] += named
        elif CONFIGURATION_ALERT.match(text):
            alerted["配置有误，无法发送" + heard] += named
    return alerted


def _named(line: str) -> int:
    """Messages an alert's line names: one per "- " line, or the N of "……另有 N 条" past its last line."""
    if not line.startswith("- "):
        return 0
    more = MORE_LINES.search(line)
    return int(more.group(1)) if more else 1


def timed_out_attempts(store: Store) -> list[tuple[str, str]]:
    """(target, key) of each attempt that ended without an answer in time, as the service recorded it:
    the simulator's drawn timeouts, and answers slowed past the wait by a busy machine too."""
    statement = (select(Delivery.target, Delivery.key).join(DeliveryAttempt, DeliveryAttempt.delivery_id == Delivery.id)
                 .where(DeliveryAttempt.explanation == TIMED_OUT, Delivery.kind != "alert"))
    with store.session(readonly=True) as session:
        return [(target, key) for target, key in session.execute(statement).all()]


def _count_row(figures: ChannelFigures, row: Delivery) -> None:
    figures.due += 1
    if row.status == "sent":
        assert row.sent_at is not None
        if row.late:
            figures.late += 1
        else:
            figures.on_time += 1
            figures.lateness.append((row.sent_at - row.due_at).total_seconds())
        if is_day_off(row.sent_at.astimezone(BEIJING).date()):
            figures.days_off += 1
    elif row.status in ("missed", "failed", "unknown", "cancelled"):
        setattr(figures, row.status, getattr(figures, row.status) + 1)
    if is_day_off(row.due_at.astimezone(BEIJING).date()) and row.status != "cancelled":
        figures.days_off += 1


def _compare(channels: dict[str, ChannelFigures], got: Counter[tuple[str, str]],
             expected: Counter[tuple[str, str]], rows: dict[tuple[str, str], list[Delivery]],
             explained: set[str]) -> list[str]:
    """Deliveries against rows, by (address, text). Every row with that text counts as a possible
    explanation of a second delivery: a meeting's reminder the day before and on the day read the
    same, and the first may have reached WeCom in a send that timed out, then been marked missed
    after a downtime past the grace window."""
    lost: list[str] = []
    for fingerprint, same_text in rows.items():
        sent_rows = [row for row in same_text if row.status in ("sent", "unknown")]
        if not sent_rows:
            continue
        channel = channels[channel_of(sent_rows[0].target)]
        arrived, wanted = got[fingerprint], expected[fingerprint]
        unknown = len(sent_rows) - wanted  # 'unknown' rows: WeCom may or may not have them
        if arrived > wanted + unknown:
            channel.duplicates += arrived - wanted - unknown
            if not any(row.key in explained for row in same_text):
                channel.unexplained += [row.key for row in same_text]
        elif arrived < wanted:
            channel.lost += wanted - arrived
            lost += [r.key for r in sent_rows[: wanted - arrived]]
    return lost


def report(figures: YearFigures, now: datetime) -> list[str]:
    lines = []
    for name, f in figures.channels.items():
        lines.append(
            f"  {name:8} due {f.due:6}  on time {f.on_time:6} (lateness p50 {percentile(f.lateness, 0.5):.1f} s,"
            f" p99 {percentile(f.lateness, 0.99):.1f} s)  late within grace {f.late:4}  missed {f.missed:4}"
            f"  failed {f.failed:4}  unknown {f.unknown:3}  cancelled {f.cancelled:4}")
        lines.append(
            f"  {'':8} duplicates {f.duplicates:3} (bound: {f.in_flight} in flight at kills + {f.timeouts} answers"
            f" past the timeout)  lost {f.lost} (must be 0)  on days off {f.days_off} (must be 0)")
        if f.unexplained:
            lines.append(f"  {'':8} received twice, neither in flight at a kill nor timed out: {f.unexplained[:10]}")
    lines.append(f"  alerts to the administrators: {dict(figures.alerted)}")
    return lines
