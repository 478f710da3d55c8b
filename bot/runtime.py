"""The runtime's shared state: the last good configuration and schedules, the store, the clock.

Everything the scheduler, the callback and the console need goes through one `Runtime`. A reload
that finds a broken file reports it and keeps the last good state in force.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bot.calendars.holidays import HolidayCalendar
from bot.clock import Clock
from bot.config import Settings
from bot.errors import BotError
from bot.inputs import Loaded, fingerprint, load_all
from bot.plan import Plan, PlanInputs, PlanState, build_plan
from bot.store.confirmations import confirmed_item_branches
from bot.store.db import Store, open_store
from bot.store.outbox import SyncResult, sync_plan
from bot.store.queries import sent_meta, unheard_alerts
from bot.store.template_versions import current_edits, latest_version_id
from bot.templates.pool import RenderPool
from bot.templates.render import TemplateLibrary

log = logging.getLogger(__name__)

# The scheduler cycles at least every 20 s; this long without one means it is stuck or dead.
STALLED_AFTER = 120


class Runtime:
    """Shared by the scheduler, the dispatcher, the callback and the console."""

    def __init__(self, config_path: str | Path | None, clock: Clock, store: Store | None = None,
                 session: requests.Session | None = None) -> None:
        self.config_path = config_path
        self.clock = clock
        self.http = session or requests.Session()
        self._loaded = load_all(config_path)
        self._fingerprint = fingerprint(self._loaded.settings)
        self.store = store or open_store(self._loaded.settings.database_url())
        # edited templates are untrusted: rendered in worker processes; the console's previews apart
        self.renders, self.preview_renders = RenderPool(size=2), RenderPool(size=1)
        self.last_reload_error: str | None = None
        self.heartbeat: float | None = None  # time.monotonic() of the scheduler's latest cycle start or end
        self._replan_requested = threading.Event()
        self._lock = threading.Lock()
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="after-response")
        self.on_replan_requested: Callable[[], None] | None = None
        self.on_reloaded: list[Callable[[], None]] = []  # after a good reload: parts that follow the config
        self._templates: tuple[tuple[int, int], TemplateLibrary] | None = None
        self._extra_items: tuple[Any, ...] = ()  # the demo's item open today (bot.commands.demo_today)

    # ---- what others read -----------------------------------------------------------------
    def settings(self) -> Settings:
        return self._loaded.settings

    def calendar(self) -> HolidayCalendar:
        return self._loaded.calendar

    def studies(self) -> Any:
        return self._loaded.studies

    def meetings(self) -> Any:
        return self._loaded.meetings

    def loaded(self) -> Loaded:
        return self._loaded

    def has_remote_calendars(self) -> bool:
        return any(source.url for source in getattr(self._loaded.meetings, "calendars", ()) or ())

    def templates(self) -> TemplateLibrary:
        """The shipped templates with the console's edits ahead of them.

        Kept while neither the files nor the saved versions change, so each template is compiled
        once rather than on every callback.
        """
        stamp = (id(self._loaded), latest_version_id(self.store))
        cached = self._templates
        if cached is None or cached[0] != stamp:
            library = TemplateLibrary(self.settings().path("messages"), current_edits(self.store), self.renders)
            self._templates = cached = (stamp, library)
        return cached[1]

    # ---- liveness -------------------------------------------------------------------------
    def beat(self) -> None:
        """The scheduler is working: called as each cycle begins and ends."""
        self.heartbeat = time.monotonic()

    def stalled_minutes(self) -> int | None:
        """Whole minutes since the scheduler last showed life, when that is over STALLED_AFTER seconds."""
        if self.heartbeat is None:
            return None  # not started yet (or this process does not schedule)
        quiet = time.monotonic() - self.heartbeat
        return max(1, int(quiet // 60)) if quiet > STALLED_AFTER else None

    def undelivered_alerts(self) -> int:
        """Alerts raised in the last day that could not reach the administrators: then nobody hears of
        failures but the console and monitoring, which must say so."""
        from bot.delivery.alerts import ALERT_KIND
        since = self.clock.now() - timedelta(days=1)
        return unheard_alerts(self.store, ALERT_KIND, since)

    # ---- reloading ------------------------------------------------------------------------
    def reload_if_changed(self) -> bool:
        """Reload when a file changed; True when a new good state is now in force."""
        current = fingerprint(self._loaded.settings)
        if current == self._fingerprint:
            return False
        self._fingerprint = current
        return self.reload()

    def reload(self) -> bool:
        """Re-read everything. A broken file is reported and the last good state stays in force."""
        try:
            loaded = load_all(self.config_path)
        except BotError as exc:
            self.last_reload_error = str(exc)
            log.error("配置或日程有误，继续使用上一次正确的版本：%s", exc)
            return False
        with self._lock:
            self._loaded = self._with_extra_items(loaded)
        self.last_reload_error = None
        log.info("已重新加载配置和日程")
        for follow in self.on_reloaded:
            follow()
        return True

    def add_study_items(self, items: tuple[Any, ...]) -> None:
        """Study items kept next to schedules/studies.yaml's, across reloads (the demo's open item)."""
        self._extra_items = tuple(items)
        with self._lock:
            self._loaded = self._with_extra_items(self._loaded)

    def _with_extra_items(self, loaded: Loaded) -> Loaded:
        if not self._extra_items or loaded.studies is None:
            return loaded
        known = {i.id for i in loaded.studies.items}
        items = loaded.studies.items + tuple(i for i in self._extra_items if i.id not in known)
        return replace(loaded, studies=replace(loaded.studies, items=items))

    # ---- planning -------------------------------------------------------------------------
    def plan_inputs(self) -> PlanInputs:
        return self._loaded.plan_inputs(self.templates())

    def plan_state(self) -> PlanState:
        now = self.clock.now()
        return PlanState(confirmed=frozenset(confirmed_item_branches(self.store)), announced=announced_meetings(self.store, now),
                         told_holidays=told_holidays(self.store, now))

    def build_plan(self, start: date, end: date) -> Plan:
        return build_plan(self.plan_inputs(), start, end, self.clock.now(), self.plan_state())

    def replan(self) -> SyncResult:
        """Fill the outbox from the plan over the horizon; idempotent."""
        settings = self.settings()
        now = self.clock.now().astimezone(settings.zone)
        horizon_end = now + settings.delivery.horizon
        plan = build_plan(self.plan_inputs(), (now - settings.delivery.grace).date(), horizon_end.date(),
                          now, self.plan_state())
        earliest = now - settings.delivery.grace
        wanted = [m for m in plan.messages if earliest <= m.due_at < horizon_end]
        result = sync_plan(self.store, wanted, now, horizon_end, now)
        log.debug("re-planned: %s", result)
        return result

    def request_replan(self) -> None:
        if self.on_replan_requested:
            self.on_replan_requested()

    def after_response(self, fn: Callable[[], None]) -> None:
        """Run slow work after a callback has been answered."""
        def guarded() -> None:
            try:
                fn()
            except Exception:
                log.exception("回调的后续处理失败")
        self._background.submit(guarded)

    def close(self) -> None:
        self._background.shutdown(wait=True)
        self.renders.close()
        self.preview_renders.close()
        self.store.close()


ANNOUNCED_LOOKBACK = timedelta(days=62)


def announced_meetings(store: Store, now: datetime) -> dict[str, Any]:
    """What sent meeting reminders told people: meeting uid → AnnouncedMeeting.

    Only reminders due in the last two months count: a change to a meeting older than that is no
    longer news, and reading only the columns needed keeps re-planning cheap on a long history.
    """
    from bot.rules.meetings import AnnouncedMeeting
    announced: dict[str, Any] = {}
    for target, _rule, meta in sent_meta(store, ("meeting_reminder",), now - ANNOUNCED_LOOKBACK):
        uid = meta.get("meeting_uid")
        if not uid:
            continue
        previous = announced.get(uid)
        targets = tuple(sorted({*(previous.targets if previous else ()), target}))
        announced[uid] = AnnouncedMeeting(
            uid=uid, start=datetime.fromisoformat(meta["meeting_start"]),
            end=datetime.fromisoformat(meta["meeting_end"]), title=meta.get("title", ""),
            location=meta.get("location", ""), targets=targets, series_id=meta.get("series_id", ""))
    return announced


def told_holidays(store: Store, now: datetime) -> dict[str, dict[str, Any]]:
    """What sent pre-holiday notices and corrections stated: block key → target → ToldHoliday (the
    latest sent wins). Two months back, as for meetings."""
    from bot.rules.holidays import ToldHoliday
    told: dict[str, dict[str, Any]] = {}
    for target, rule, meta in sent_meta(store, ("holiday_notice", "holiday_correction"), now - ANNOUNCED_LOOKBACK):
        if meta.get("holiday_period"):
            told.setdefault(meta["holiday_period"], {})[target] = ToldHoliday.of_meta(rule, meta)
    return told
