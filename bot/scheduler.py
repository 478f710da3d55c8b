"""`wecom-reminder run`: APScheduler wakes; the outbox table remembers.

APScheduler 3 keeps only in-memory jobs with fixed ids, re-added at every start: watch files,
re-plan, and wake at the next due time. Dispatch passes run one at a time on a thread of their own;
the tick and the wake-ups only ask it for one. What is due lives in the outbox, so a restart finds overdue
rows by itself (sent late within the grace window, else marked missed and reported).
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from bot.calendars.holiday_status import holiday_alert
from bot.calendars.notice_import import ImportResult
from bot.clock import BEIJING
from bot.delivery.alerts import raise_alert
from bot.delivery.dispatcher import DISPATCH_LOCK, Dispatcher
from bot.holiday_watch import Fetch, alert_lines, confirm_advice, fetch_page, look_once
from bot.inbox.ledger import cancel_confirmed_nudges
from bot.inputs import holidays_folder, notices_on_file
from bot.runtime import Runtime
from bot.store.claims import end_sending_leases
from bot.store.db import Store, try_leader_lock
from bot.store.outbox import recover_overdue
from bot.wecom.outcomes import TIMED_OUT

log = logging.getLogger(__name__)

JOB_DEFAULTS = {
    "coalesce": True,            # a backlog of wake-ups is one wake-up
    "max_instances": 1,          # a job still running is not started again (passes have their own thread)
    "misfire_grace_time": 3600,  # the default of 1 s would drop a late wake-up silently
}
TICK_SECONDS = 20
WATCH_SECONDS = 5
BUSY_RETRY_SECONDS = 2
REPLAN_MINUTES = 10
HOLIDAY_WATCH_AT = {"hour": 9, "minute": 10}  # Beijing time: the alert arrives in office hours


class Service:
    """The scheduler and dispatcher around one Runtime. Tests drive `cycle()` with a fake clock."""

    def __init__(self, runtime: Runtime, **dispatcher_options: Any) -> None:
        self.runtime = runtime
        self._dispatcher_options = dispatcher_options
        self.dispatcher = self._new_dispatcher()
        self._replan_wanted = threading.Event()
        self._work_lock = threading.Lock()
        self._pass_wanted = threading.Event()
        self._stopping = False
        self._wake_lock = threading.Lock()
        self.scheduler: BackgroundScheduler | None = None
        self._planned_day: date | None = None
        runtime.on_replan_requested = self._on_replan_requested

    def _new_dispatcher(self) -> Dispatcher:
        runtime = self.runtime
        options = dict(self._dispatcher_options)
        # Pacing waits on the clock's own seconds where it has them (a clock moved from outside):
        # a robot blocked "for 60 s" is free once the clock has moved 60 s, as WeCom sees it.
        if (seconds := getattr(runtime.clock, "monotonic", None)) is not None:
            options.setdefault("monotonic", seconds)
        return Dispatcher(runtime.store, runtime.settings(), runtime.clock, session=runtime.http, **options)

    # ---- the work, callable directly in tests ------------------------------------------------
    def start_up(self) -> None:
        """At start: plan, then settle what a crash or a stop left behind."""
        self._replan()
        release_orphaned_sends(self.runtime.store, self.runtime.clock.now())
        self.recover()
        self.alert_input_problems()
        self.alert_holiday_coverage()

    def _replan(self) -> None:
        self._planned_day = self.runtime.clock.now().astimezone(BEIJING).date()
        self.runtime.replan()

    def alert_input_problems(self) -> None:
        """Tell the administrators, once a day per problem, of a refused file or an unreachable calendar."""
        runtime, now = self.runtime, self.runtime.clock.now()
        day = f"{now.month}月{now.day}日"
        if runtime.last_reload_error:
            raise_alert(runtime.store, runtime.settings(), now, f"配置或日程文件有误，未生效（{day}）",
                        [runtime.last_reload_error], "按提示修改该文件；修改正确前，服务继续使用上一次正确的版本", [])
        if runtime.loaded().ics_errors:
            raise_alert(runtime.store, runtime.settings(), now, f"会议日历获取失败（{day}）",
                        list(runtime.loaded().ics_errors), "已继续使用上一次成功获取的日历；请检查日历地址能否访问", [])

    def alert_holiday_coverage(self) -> None:
        """Tell the administrators that next year's arrangement is missing: once at 提示 (1 Oct), once
        at 警告 (1 Dec), then daily at 严重 (15 Dec), as `check` and the console say it."""
        runtime, now = self.runtime, self.runtime.clock.now()
        today = now.astimezone(runtime.settings().zone).date()
        alert = holiday_alert(runtime.calendar().years, today)
        if alert is None:
            return
        day = f"（{today.month}月{today.day}日）" if alert.level == "严重" else ""
        raise_alert(runtime.store, runtime.settings(), now, f"{alert.year}年节假日安排尚未录入【{alert.level}】{day}",
                    [alert.message], "国务院办公厅通知发布后，在管理后台“日历与会议”页导入通知全文，确认后即生效", [])

    def watch_holidays(self, fetch: Fetch) -> ImportResult | None:
        """Once a day, if holiday_watch.url is set: look for next year's notice; alert, never apply."""
        runtime = self.runtime
        settings, now = runtime.settings(), runtime.clock.now()
        if not settings.holiday_watch.url:
            return None
        on_file = notices_on_file(holidays_folder(settings))
        result = look_once(settings.holiday_watch.url, fetch, on_file, now.astimezone(settings.zone).date(),
                           settings.path("data"))
        if result is not None:
            raise_alert(runtime.store, settings, now, f"国务院办公厅已发布{result.notice.year}年节假日安排，待确认",
                        alert_lines(result), confirm_advice(settings.holiday_watch.console_url), [])
        return result

    def look_for_notice(self) -> ImportResult | None:
        """The daily job: the configured page, fetched safely (inside hosts only if allowed by name)."""
        hosts = self.runtime.settings().calendars.allowed_hosts
        return self.watch_holidays(lambda url: fetch_page(url, hosts))

    def recover(self) -> None:
        """Rows overdue because no service ran: late within the grace window, else missed.

        Only with the dispatch lock in hand: while another replica is sending, nothing is overdue
        for want of a running service (a replica restarting beside it marked the rows of that
        replica's pass 'late').
        """
        settings = self.runtime.settings()
        with try_leader_lock(self.runtime.store, DISPATCH_LOCK) as alone:
            if not alone:
                return
            result = recover_overdue(self.runtime.store, self.runtime.clock.now(), settings.delivery.grace,
                                     unanswered=(TIMED_OUT,))
        if result.late:
            log.info("服务恢复：%d 条消息在补发时限内，将迟发", result.late)
        if result.missed:
            log.warning("服务恢复：%d 条消息已超过补发时限，记为错过", len(result.missed))
            self.dispatcher.alert_missed(result.missed)

    def cycle(self) -> None:
        """Reload if files changed, re-plan if asked, send what is due."""
        self.runtime.beat()
        with self._work_lock:
            if self._stopping:
                return  # stop() closed the dispatcher while this pass waited for the lock
            self._apply_file_changes()
            if self._replan_wanted.is_set():
                self._replan_wanted.clear()
                self._replan()
            cancel_confirmed_nudges(self.runtime.store, self.runtime.clock.now())
            report = self.dispatcher.dispatch_due()
        self.runtime.beat()
        if report.busy_elsewhere:  # the other process sends what is due; look again shortly
            self._wake_at(self.runtime.clock.now() + timedelta(seconds=BUSY_RETRY_SECONDS))
        else:
            self._schedule_wake()

    def want_pass(self) -> None:
        """The tick's and the wake-up's job: ask the pass thread for a pass. APScheduler skips a job
        that fires while the same job still runs; a job this short is skipped only while another
        is asking too, so no wake-up is lost (one that ran a pass itself was skipped while its pass
        ran, and what it came for waited for the next tick)."""
        self._pass_wanted.set()

    def _run_passes(self) -> None:
        """The pass thread: one pass at a time, and one more for whatever asked while it ran."""
        while True:
            self._pass_wanted.wait()
            if self._stopping:
                return
            self._pass_wanted.clear()
            try:
                self.cycle()
            except Exception:  # noqa: BLE001 - the next wake-up or tick tries again
                log.exception("发送轮次出错，稍后重试")

    def replan(self) -> None:
        """Every few minutes: fetch remote calendars again (cheap with ETags), then re-plan."""
        with self._work_lock:
            if self.runtime.has_remote_calendars():
                self.runtime.reload()
                self.alert_input_problems()
            self.alert_holiday_coverage()
            self._replan()

    # ---- APScheduler ------------------------------------------------------------------------

    def start(self) -> None:
        self.start_up()
        scheduler = BackgroundScheduler(timezone=BEIJING, job_defaults=JOB_DEFAULTS)
        self.add_jobs(scheduler)
        self.scheduler = scheduler
        threading.Thread(target=self._run_passes, name="passes", daemon=True).start()
        scheduler.start()
        watch = getattr(self.runtime.clock, "watch", None)
        if watch is not None:  # a clock moved from outside (benchmarks): follow its jumps at once
            watch(self._on_clock_moved)
        self._wake_now()

    def add_jobs(self, scheduler: BackgroundScheduler) -> None:
        """The fixed jobs. The holiday watch is always there: it fetches only while holiday_watch.url
        is set and a year is missing (next year's from 1 October), so a config edit needs no restart."""
        scheduler.add_job(self.want_pass, "interval", seconds=TICK_SECONDS, id="tick")
        scheduler.add_job(self._watch, "interval", seconds=WATCH_SECONDS, id="watch")
        scheduler.add_job(self.replan, "interval", minutes=REPLAN_MINUTES, id="replan")
        scheduler.add_job(self.look_for_notice, "cron", id="holiday_watch", **HOLIDAY_WATCH_AT)

    def stop(self) -> None:
        scheduler, self.scheduler = self.scheduler, None  # from here on, no job schedules a wake-up
        if scheduler is not None:
            # Not wait=True: a job adding its next wake-up needs the lock a waiting shutdown holds.
            scheduler.shutdown(wait=False)
        self._stopping = True
        self._pass_wanted.set()
        with self._work_lock:  # a dispatch pass in flight records its outcomes first
            self.dispatcher.close()

    def _watch(self) -> None:
        with self._work_lock:
            if self._apply_file_changes():
                self._wake_now()

    def _apply_file_changes(self) -> bool:
        """A changed config, schedule or template: new dispatcher settings and a re-plan."""
        if not self.runtime.reload_if_changed():
            if self.runtime.last_reload_error:
                self.alert_input_problems()
            return False
        self.dispatcher.close()
        self.dispatcher = self._new_dispatcher()
        self._replan_wanted.set()
        return True

    def _on_replan_requested(self) -> None:
        self._replan_wanted.set()
        self._wake_now()

    def _on_clock_moved(self) -> None:
        """The clock jumped: a new day needs the plan's horizon moved, and what is due now is sent."""
        with self._work_lock:
            day = self.runtime.clock.now().astimezone(BEIJING).date()
            if day != self._planned_day:
                self._replan_wanted.set()
        self._wake_now()

    # Wake-ups are in the runtime's clock; APScheduler fires on the wall clock, so _wake_at turns
    # one into the other (the same for the SystemClock; a clock moved from outside is ahead or behind).
    def _wake_now(self) -> None:
        self._wake_at(self.runtime.clock.now())

    def _schedule_wake(self) -> None:
        due = self.dispatcher.next_due_at()
        if due is not None:
            self._wake_at(max(due, self.runtime.clock.now()) + timedelta(milliseconds=50))

    def _wake_at(self, when: datetime) -> None:
        with self._wake_lock:
            if self.scheduler is None:
                return
            run_date = datetime.now(BEIJING) + (when - self.runtime.clock.now())
            pending = self.scheduler.get_job("wake")
            if pending is not None and pending.next_run_time <= run_date:
                return  # an earlier wake-up (立即发送 as a pass ends) is not postponed: its pass plans the next
            self.scheduler.add_job(self.want_pass, "date", run_date=run_date, id="wake", replace_existing=True)


def release_orphaned_sends(store: Store, now: datetime) -> int:
    """At start: a row left 'sending' while no process is dispatching belongs to a dead process.

    Every send happens in a pass that holds the dispatch lock, so with the lock in hand such a row
    is nobody's: its lease is ended so the row is re-claimed (and marked re-sent) at once instead
    of after the lease. While another process (a replica) is dispatching, the leases decide.
    """
    with try_leader_lock(store, DISPATCH_LOCK) as alone:
        return end_sending_leases(store, now) if alone else 0
