"""The administrators' console: a Flask blueprint under /admin.

``create_console(app, runtime)`` registers the pages, CSRF protection (the WeCom callback is
exempt: its requests are signed), hardened session cookies and security headers. Every page
needs a login; a read-only account may look but every change is refused (see ``auth``).
"""

from __future__ import annotations

import os
from datetime import timedelta

from flask import Blueprint, Flask, Response, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from bot.runtime import Runtime
from bot.store.accounts import load_account
from bot.web import (
    auth,
    views_aibot,
    views_audit,
    views_calendars,
    views_deliveries,
    views_ledger,
    views_notice,
    views_overview,
    views_plan,
    views_templates,
)
from bot.web.common import RUNTIME_KEY, console, install_filters, runtime

SECURE_COOKIE_ENV = "WECOM_REMINDER_SECURE_COOKIE"
# The WeCom callback's blueprint: its requests are signed by WeCom instead of carrying a CSRF token.
CALLBACK_BLUEPRINT = "wecom_callback"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
ERROR_TITLES = {400: "请求有误", 403: "没有权限", 404: "未找到", 405: "请求方式不正确", 409: "暂时无法操作",
                413: "文件过大", 422: "内容有误"}
ERROR_MESSAGES = {400: "请求内容不完整或格式不正确。", 403: "没有权限进行此操作。", 404: "所请求的页面或记录不存在。",
                  405: "该地址不支持这种请求方式。", 409: "当前状态下无法完成该操作。",
                  413: "上传的文件超过 4 MB 的上限。", 422: "提交的内容有误。"}
_VIEWS = (auth, views_overview, views_templates, views_plan, views_deliveries, views_ledger,
          views_calendars, views_aibot, views_notice, views_audit)  # imported for their routes on `console`


def secure_cookies() -> bool:
    """Secure cookies when served over https (set the variable to 1/true behind TLS)."""
    return os.environ.get(SECURE_COOKIE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def create_console(app: Flask, runtime: Runtime) -> None:
    app.extensions[RUNTIME_KEY] = runtime
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=secure_cookies(),
        SESSION_COOKIE_NAME="wecom_console", PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )
    csrf = CSRFProtect(app)
    # Only the blueprint's name matters to the exemption, so it holds even if the callback registers later.
    csrf.exempt(app.blueprints.get(CALLBACK_BLUEPRINT) or Blueprint(CALLBACK_BLUEPRINT, __name__))
    install_filters(app)
    app.register_blueprint(console)
    # The service's address alone leads to the console (its login page when not logged in).
    app.add_url_rule("/", "root", lambda: redirect(url_for("console.overview")))
    app.register_error_handler(CSRFError, _csrf_refused)
    for code in ERROR_TITLES:
        app.register_error_handler(code, _error_page)
    app.after_request(_security_headers)


def _csrf_refused(error: CSRFError) -> tuple[str, int]:
    return render_template("error.html", title="请求已失效",
                           message="表单已过期或缺少安全校验信息，请返回上一页刷新后重新提交。"), 400


def _error_page(error: HTTPException) -> tuple[str, int]:
    code = error.code or 500
    if "user" not in g:  # outside /admin the console's login check has not run: its link needs to know
        g.user = load_account(runtime().store, session.get("uid"))
    described = error.description if error.description and error.description != type(error).description else ""
    message = described or ERROR_MESSAGES.get(code, "请求无法处理。")
    return render_template("error.html", title=ERROR_TITLES.get(code, "出错了"), message=message), code


def _security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/admin") and not request.path.startswith("/admin/static"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
