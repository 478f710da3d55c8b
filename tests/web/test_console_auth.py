"""Logins, roles, CSRF, throttling and the headers every page carries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fakes import ADMIN, READER, csrf_token, login, make_app, post
from flask import Flask
from sqlalchemy import select

from bot.errors import BotError
from bot.store.accounts import create_admin
from bot.store.models import AdminUser
from bot.web import SECURE_COOKIE_ENV, create_console
from bot.web.auth import GENERIC_ERROR

PLACEHOLDERS = {"name": "holiday_integrity", "delivery_id": "1", "fmt": "xlsx"}


def admin_routes(app: Flask, method: str) -> list[str]:
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin") or rule.endpoint in ("console.login", "console.static"):
            continue
        if method in (rule.methods or ()):
            routes.append(rule.rule.replace("<int:", "<").replace("<", "{").replace(">", "}").format(**PLACEHOLDERS))
    return sorted(routes)


def test_every_route_is_listed(app: Flask) -> None:
    assert len(admin_routes(app, "GET")) >= 12
    assert len(admin_routes(app, "POST")) >= 8


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_every_page_needs_a_login(app: Flask, method: str) -> None:
    client = app.test_client()
    token = csrf_token(client)
    for route in admin_routes(app, method):
        response = client.open(route, method=method, data={"csrf_token": token} if method == "POST" else None)
        assert response.status_code == 302, route
        assert "/admin/login" in response.headers["Location"], route


def test_post_without_csrf_token_is_refused(admin) -> None:
    response = admin.post("/admin/templates/holiday_integrity", data={"text": "x"})
    assert response.status_code == 400
    assert "安全校验" in response.get_data(as_text=True)


def test_readonly_is_refused_every_change(app: Flask, reader) -> None:
    allowed = {"/admin/logout", "/admin/templates/holiday_integrity/preview"}
    for route in admin_routes(app, "POST"):
        if route in allowed:
            continue
        response = post(reader, route, {"text": "x", "key": "k", "action": "skip", "version": "default"})
        assert response.status_code == 403, route
        assert "只读账号不能进行修改操作" in response.get_data(as_text=True)


def test_readonly_may_look_and_preview(reader) -> None:
    assert reader.get("/admin/templates/holiday_integrity").status_code == 200
    token = csrf_token(reader, "/admin/")
    response = reader.post("/admin/templates/holiday_integrity/preview", json={"text": "---\ntitle: t\n---\n好",
                                                                              "sample": "default"},
                           headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.get_json()["text"] == "好"


def test_wrong_password_gets_a_generic_error(app: Flask) -> None:
    client = app.test_client()
    for name in ("admin", "nobody"):
        response = login(client, name, "wrong-password")
        assert response.status_code == 401
        assert GENERIC_ERROR in response.get_data(as_text=True)


def test_lockout_after_five_failures_for_fifteen_minutes(app: Flask, clock) -> None:
    client = app.test_client()
    for _ in range(5):
        assert login(client, ADMIN[0], "wrong-password").status_code == 401
    assert login(client, *ADMIN).status_code == 401          # locked, even with the right password
    clock.advance(timedelta(minutes=14, seconds=59))
    assert login(client, *ADMIN).status_code == 401
    clock.advance(timedelta(seconds=2))
    assert login(client, *ADMIN).status_code == 302


def test_four_failures_do_not_lock(app: Flask) -> None:
    client = app.test_client()
    for _ in range(4):
        login(client, ADMIN[0], "wrong-password")
    assert login(client, *ADMIN).status_code == 302


def test_one_address_is_throttled_across_accounts(app: Flask) -> None:
    client = app.test_client()
    for number in range(20):
        login(client, f"user{number}", "wrong-password")
    assert login(client, *READER).status_code == 401


def test_password_is_stored_hashed(runtime) -> None:
    with runtime.store.session(readonly=True) as session:
        stored = session.scalar(select(AdminUser.password_hash).where(AdminUser.name == ADMIN[0]))
    assert ADMIN[1] not in stored
    assert stored.startswith("scrypt:")


@pytest.mark.parametrize(("name", "password", "role"), [
    ("", "long-enough-password", "admin"), ("x", "short", "admin"), ("x", "long-enough-password", "root"),
    (ADMIN[0], "long-enough-password", "admin")], ids=["no-name", "short-password", "bad-role", "duplicate"])
def test_create_admin_refuses(runtime, name: str, password: str, role: str) -> None:
    with pytest.raises(BotError):
        create_admin(runtime.store, name, password, role)


def test_login_redirects_only_inside_the_console(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client)
    response = client.post("/admin/login?next=//evil.example/x", data={"name": ADMIN[0], "password": ADMIN[1],
                                                                        "csrf_token": token})
    assert response.headers["Location"].endswith("/admin/")


def test_logout_ends_the_session(admin) -> None:
    post(admin, "/admin/logout")
    assert admin.get("/admin/").status_code == 302


def test_security_headers_and_cookie(app: Flask) -> None:
    client = app.test_client()
    response = login(client, *ADMIN)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_secure_cookie_when_configured(runtime, monkeypatch) -> None:
    monkeypatch.setenv(SECURE_COOKIE_ENV, "1")
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "test"
    create_console(app, runtime)
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_callback_is_exempt_from_csrf(app: Flask) -> None:
    response = app.test_client().post("/wecom/callback?msg_signature=x&timestamp=1&nonce=n", data=b"<xml/>")
    assert response.status_code != 400 or "安全校验" not in response.get_data(as_text=True)


def test_app_without_callback_still_builds(runtime) -> None:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "test"
    create_console(app, runtime)
    assert "console" in app.blueprints
    assert make_app(runtime).blueprints["console"]


def test_starting_the_console_hashes_nothing_until_an_unknown_name_logs_in(runtime) -> None:
    """The dummy scrypt hash (half a second of CPU) is made at the first unknown login, not at start."""
    from bot.store import accounts

    accounts.dummy_hash.cache_clear()
    create_console(Flask(__name__), runtime)
    assert accounts.dummy_hash.cache_info().currsize == 0
    assert accounts.authenticate(runtime.store, "nobody", "whatever-password", runtime.clock.now()).account is None
    assert accounts.dummy_hash.cache_info().currsize == 1
