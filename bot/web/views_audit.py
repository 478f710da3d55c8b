"""The audit log: who changed what, when, before and after."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from bot.store.audit import count, recent
from bot.web.common import console, page_of, runtime


@console.get("/audit")
def audit_log() -> Any:
    store = runtime().store
    page = page_of(request.args.get("page"), count(store))
    return render_template("audit.html", entries=recent(store, limit=page.size, offset=page.offset), page=page)
