"""The delivery log: filters, pagination, WeCom's answer in words, retry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from flask import Response, abort, redirect, render_template, request, url_for

from bot.csv_files import csv_stream
from bot.delivery.channels import request_for
from bot.formatting import STATUS_LABELS, target_title
from bot.occurrence import KIND_LABELS
from bot.store.attempts import attempts_of
from bot.store.models import STATUSES
from bot.store.outbox import RETRYABLE, retry_now
from bot.store.queries import count_deliveries, get_delivery, iter_delivery_log, list_deliveries
from bot.web.common import (
    console,
    day_start,
    notice,
    now,
    page_of,
    parse_day,
    record,
    runtime,
    secret_masker,
    settings,
)
from bot.wecom.api import request_text
from bot.wecom.outcomes import configuration_fix

EXPORT_HEADERS = ("计划发送时间", "实际发送时间", "类别", "发送对象", "标题", "状态", "尝试次数", "迟发", "重发",
                  "说明", "企业微信错误码", "企业微信消息编号")


@dataclass(frozen=True)
class Filters:
    since: str
    until: str
    kind: str
    target: str
    status: str

    def query(self) -> dict[str, Any]:
        """Keyword arguments for the outbox; a bad value is ignored rather than an error."""
        since, until = parse_day(self.since), parse_day(self.until)
        return {
            "since": day_start(since) if since else None,
            "until": day_start(until) + timedelta(days=1) if until else None,
            "kind": self.kind if self.kind in KIND_LABELS else None,
            "target": self.target or None,
            "status": self.status if self.status in STATUSES else None,
        }

    def args(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}

    def problem(self) -> str | None:
        """A date the filter cannot use, or a range that ends before it starts, in words."""
        for label, raw in (("起始日期", self.since), ("截止日期", self.until)):
            if raw and parse_day(raw) is None:
                return f"{label}“{raw}”不是有效的日期，请按 2026-05-01 的格式填写。已忽略日期条件。"
        since, until = parse_day(self.since), parse_day(self.until)
        if since and until and since > until:
            return f"起始日期 {since} 晚于截止日期 {until}，请交换两个日期。已忽略日期条件。"
        return None

    def without_dates(self) -> Filters:
        return Filters("", "", self.kind, self.target, self.status)


def filters_from(source: Any) -> Filters:
    return Filters(*(str(source.get(k, "")).strip()[:200] for k in ("since", "until", "kind", "target", "status")))


@console.get("/deliveries")
def deliveries() -> Any:
    rt, filters = runtime(), filters_from(request.args)
    problem = filters.problem()
    query = (filters.without_dates() if problem else filters).query()
    page = page_of(request.args.get("page"), count_deliveries(rt.store, **query))
    rows = list_deliveries(rt.store, **query, limit=page.size, offset=page.offset)
    targets = settings().all_targets()
    return render_template("deliveries.html", rows=rows, page=page, filters=filters, filter_error=problem,
                           kinds=KIND_LABELS, statuses=STATUS_LABELS, retryable=RETRYABLE,
                           targets=sorted((name, target_title(name, targets)) for name in targets)), \
        422 if problem else 200


@console.get("/deliveries/<int:delivery_id>")
def delivery_detail(delivery_id: int) -> Any:
    """One delivery: what it is about, the payload as sent (secrets masked), WeCom's answer and the fix."""
    rt = runtime()
    row = get_delivery(rt.store, delivery_id)
    if row is None:
        abort(404, "该发送记录不存在。")
    current = settings()
    target = current.all_targets().get(row.target)
    request_body = request_for(row, target, current)
    payload = None
    if request_body is not None:
        path, body = request_body
        payload = secret_masker(current)(request_text(path, body))
    attempts = attempts_of(rt.store, delivery_id)
    said = attempts[-1].errmsg if attempts else row.last_error  # WeCom's errmsg names the IP to allow (60020)
    return render_template("delivery.html", row=row, payload=payload, fix=configuration_fix(row.errcode, said),
                           retryable=RETRYABLE, target_kind=type(target).__name__ if target else None,
                           attempts=attempts)


@console.get("/deliveries/export.csv")
def deliveries_export() -> Any:
    """The rows the filters select, oldest first, as the page shows them (secrets masked), streamed."""
    current = settings()
    targets, zone, mask = current.all_targets(), current.zone, secret_masker(current)

    def when(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else ""

    lines = ((when(r.due_at), when(r.sent_at), KIND_LABELS.get(r.kind, r.kind), target_title(r.target, targets),
              r.title, STATUS_LABELS.get(r.status, r.status), r.attempts, "是" if r.late else "",
              "是" if r.resent else "", mask(r.last_error), r.errcode or "", r.msgid or "")
             for r in iter_delivery_log(runtime().store, **filters_from(request.args).query()))
    name = quote(f"发送记录-{now():%Y%m%d-%H%M}.csv")
    return Response(csv_stream(EXPORT_HEADERS, lines), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=deliveries.csv; filename*=UTF-8''{name}"})


@console.post("/deliveries/<int:delivery_id>/retry")
def delivery_retry(delivery_id: int) -> Any:
    rt = runtime()
    row = get_delivery(rt.store, delivery_id)
    if row is None:
        abort(404, "该发送记录不存在。")
    back = url_for("console.deliveries", **filters_from(request.form).args(), page=request.form.get("page", 1))
    if not retry_now(rt.store, delivery_id, now()):
        notice(f"该消息当前状态为“{STATUS_LABELS.get(row.status, row.status)}”，不能重试。", "danger")
        return redirect(back)
    rt.request_replan()
    subject = f"发送记录 #{row.id} {KIND_LABELS.get(row.kind, row.kind)}“{row.title}” → " \
              f"{target_title(row.target, settings().all_targets())}"
    record("重试发送", subject, before=STATUS_LABELS.get(row.status, row.status), after="等待重试（立即）")
    notice("已安排重新发送，结果稍后在本页显示。", "success")
    return redirect(back)
