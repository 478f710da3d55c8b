"""Sessions end on the server (logout, end_sessions, idle, absolute lifetime); login throttling
per account and client that one client cannot turn against everyone; unlocking."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from fakes import ADMIN, READER, login, make_app, make_runtime, post
from flask import Flask
from flask.testing import FlaskClient

from bot.cli import main
from bot.clock import FakeClock
from bot.store.accounts import disable_admin, end_sessions, reset_password, unlock
from bot.web.auth import GENERIC_ERROR

COOKIE = "wecom_console"


def client_at(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def copy_of_session(app: Flask, client: FlaskClient) -> FlaskClient:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie.value)
    return thief


def without_tokens(page: str) -> str:
    return re.sub(r'(content|value)="[^"]*"', "", page)


def signed_in(client: FlaskClient) -> bool:
    return client.get("/admin/").status_code == 200


def test_logout_ends_the_session_on_the_server(app: Flask, admin: FlaskClient) -> None:
    kept = copy_of_session(app, admin)       # a copy of the cookie, as a thief would keep it
    assert signed_in(kept)
    post(admin, "/admin/logout")
    assert not signed_in(admin) and not signed_in(kept)


def test_end_sessions_ends_every_session_of_that_account_only(app: Flask, runtime, admin: FlaskClient,
                                                              reader: FlaskClient) -> None:
    other = app.test_client()
    assert login(other, *ADMIN).status_code == 302
    end_sessions(runtime.store, ADMIN[0])     # what a password reset or disabling calls
    assert not signed_in(admin) and not signed_in(other) and signed_in(reader)
    assert login(admin, *ADMIN).status_code == 302 and signed_in(admin)


def test_a_password_reset_or_disabling_ends_that_accounts_sessions(runtime, admin: FlaskClient,
                                                                   reader: FlaskClient) -> None:
    reset_password(runtime.store, ADMIN[0], "a-brand-new-password")
    assert not signed_in(admin) and signed_in(reader)
    disable_admin(runtime.store, READER[0])
    assert not signed_in(reader)
    assert login(admin, ADMIN[0], "a-brand-new-password").status_code == 302 and signed_in(admin)


@pytest.mark.parametrize("step,steps,ends", [
    (timedelta(hours=2), 1, False), (timedelta(hours=2, seconds=1), 1, True),
    (timedelta(hours=1), 11, False), (timedelta(hours=1), 13, True),
], ids=["idle-at-limit", "idle-past-limit", "active-11h", "active-past-12h"])
def test_idle_and_absolute_lifetime(admin: FlaskClient, clock: FakeClock, step: timedelta, steps: int,
                                    ends: bool) -> None:
    results = []
    for _ in range(steps):
        clock.advance(step)
        results.append(signed_in(admin))
    assert results[-1] is not ends and all(results[:-1])


def test_a_failing_client_locks_out_only_itself(app: Flask) -> None:
    guesser, owner = client_at(app, "203.0.113.9"), client_at(app, "198.51.100.7")
    for _ in range(5):
        assert login(guesser, ADMIN[0], "wrong-password").status_code == 401
    refused = login(guesser, *ADMIN)
    assert refused.status_code == 401 and GENERIC_ERROR in refused.get_data(as_text=True)
    assert login(owner, *ADMIN).status_code == 302


@pytest.mark.parametrize("name,password", [
    (ADMIN[0], ADMIN[1]), (ADMIN[0], "wrong-password"), ("nobody", "x" * 12), (READER[0], "wrong-password"),
], ids=["locked-right-password", "locked-wrong-password", "unknown-account", "wrong-password"])
def test_a_locked_account_is_answered_like_any_failure(app: Flask, name: str, password: str) -> None:
    client = client_at(app, "203.0.113.10")
    for _ in range(5):
        login(client, ADMIN[0], "wrong-password")
    answer = login(client, name, password)
    plain = login(client_at(app, "198.51.100.8"), READER[0], "wrong-password")   # nobody locked there
    assert answer.status_code == plain.status_code == 401
    assert without_tokens(answer.get_data(as_text=True)) == without_tokens(plain.get_data(as_text=True))


def test_a_guess_spread_over_many_addresses_locks_the_account_until_unlocked(app: Flask, runtime,
                                                                             clock: FakeClock) -> None:
    for number in range(50):
        login(client_at(app, f"203.0.113.{number}"), ADMIN[0], "wrong-password")
    assert login(client_at(app, "198.51.100.7"), *ADMIN).status_code == 401
    unlock(runtime.store, ADMIN[0], clock.now())
    assert login(client_at(app, "198.51.100.7"), *ADMIN).status_code == 302


def test_admin_unlock_cli_lifts_a_clients_hold(tmp_path: Path, clock: FakeClock,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    runtime = make_runtime(tmp_path, clock)
    try:
        app = make_app(runtime)
        client = client_at(app, "203.0.113.5")
        for _ in range(5):
            login(client, ADMIN[0], "wrong-password")
        assert login(client, *ADMIN).status_code == 401
        clock.advance(timedelta(seconds=1))
        assert main(["--config", str(runtime.config_path), "admin", "unlock", ADMIN[0]]) == 0
        assert "已解除账号 admin 的登录锁定" in capsys.readouterr().out
        assert login(client, *ADMIN).status_code == 302
        assert main(["--config", str(runtime.config_path), "admin", "unlock", "nobody"]) != 0
        assert "账号 nobody 不存在" in capsys.readouterr().err
    finally:
        runtime.close()


def test_a_proxy_header_is_believed_only_when_configured(app: Flask, tmp_path: Path, clock: FakeClock) -> None:
    spoofer = app.test_client()
    for number in range(20):   # inventing a new X-Forwarded-For each time does not make a new client
        spoofer.environ_base["HTTP_X_FORWARDED_FOR"] = f"192.0.2.{number}"
        login(spoofer, f"user{number}", "wrong-password")
    assert login(spoofer, *READER).status_code == 401

    proxied = make_runtime(tmp_path / "proxied", clock, lambda text: text.replace(
        "  # trusted_proxy_header: X-Forwarded-For", "  trusted_proxy_header: X-Forwarded-For"))
    try:
        behind = make_app(proxied)
        first, second = behind.test_client(), behind.test_client()
        first.environ_base["HTTP_X_FORWARDED_FOR"] = "10.9.9.9, 203.0.113.20"   # the proxy's own entry is last
        second.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.21"
        for _ in range(20):
            login(first, "someone", "wrong-password")
        assert login(first, *READER).status_code == 401 and login(second, *READER).status_code == 302
    finally:
        proxied.close()


@pytest.mark.parametrize("target", [
    "/admin/\r\nSet-Cookie: stolen=1", "/admin/%0d%0aLocation:%20http://evil.example", "/admin\n", "/admin/\t",
    "/admin/\x00", "/admin/\u2028",
], ids=["crlf", "encoded-crlf", "lf", "tab", "nul", "line-separator"])
def test_a_control_character_in_next_is_not_a_500(app: Flask, target: str) -> None:
    client = app.test_client()
    token = client.get("/admin/login").get_data(as_text=True).split('name="csrf-token" content="')[1].split('"')[0]
    answer = client.post("/admin/login", query_string=f"next={target}" if "%" in target else {"next": target},
                         data={"name": ADMIN[0], "password": ADMIN[1], "csrf_token": token})
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/"
    assert "stolen" not in str(answer.headers)


def test_healthz_says_the_config_is_wrong_without_quoting_it(app: Flask, runtime) -> None:
    runtime.last_reload_error = "文件 config.yaml 第 12 行（wecom.secret）：key: s3cr3t-value 格式错误"
    answer = app.test_client().get("/healthz").get_json()
    assert answer["config"] == "error" and answer["message"].startswith("配置有误")
    assert "s3cr3t" not in json.dumps(answer, ensure_ascii=False) and "第 12 行" not in answer["message"]
