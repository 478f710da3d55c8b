"""Small frictions found in the trial: the root address, the 404 page's link, disabled accounts."""

from __future__ import annotations

from fakes import ADMIN, login

from bot.store.accounts import disable_admin


def test_the_root_address_leads_to_the_console(app) -> None:
    client = app.test_client()
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
    assert client.get("/admin/").headers["Location"].startswith("/admin/login")


def test_the_404_page_links_to_the_console_when_logged_in(app, admin) -> None:
    page = admin.get("/no-such-page").get_data(as_text=True)
    assert 'href="/admin/">返回管理后台' in page
    anonymous = app.test_client().get("/no-such-page").get_data(as_text=True)
    assert 'href="/admin/login">登录管理后台' in anonymous


def test_a_disabled_account_is_logged_out_and_cannot_log_in(app, admin, runtime) -> None:
    disable_admin(runtime.store, ADMIN[0])
    assert admin.get("/admin/").status_code == 302
    client = app.test_client()
    login(client, *ADMIN)
    assert client.get("/admin/").status_code == 302
