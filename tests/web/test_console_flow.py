"""Issue 6's 'done when': a new administrator edits the pre-holiday notice and the next notice uses it."""

from __future__ import annotations

from datetime import datetime

from fakes import ADMIN, csrf_token, login, make_app, post

from bot.clock import BEIJING
from bot.store.queries import list_deliveries


def test_edit_preview_save_and_the_next_notice_uses_it(runtime, clock) -> None:
    clock.set(datetime(2026, 6, 10, 9, 0, tzinfo=BEIJING))   # 端午 2026: 6月19日放假, notice on 6月18日
    client = make_app(runtime).test_client()
    assert client.get("/admin/plan").status_code == 302         # not reachable without logging in
    assert login(client, *ADMIN).status_code == 302

    text = runtime.templates().default_text("holiday_integrity")
    edited = text.replace("严禁公车私用、私车公养。", "严禁公车私用、私车公养，严禁违规使用公务加油卡。")
    token = csrf_token(client, "/admin/templates/holiday_integrity")
    preview = client.post("/admin/templates/holiday_integrity/preview", headers={"X-CSRFToken": token},
                          json={"text": edited, "sample": "holiday:2026-dragon_boat"})
    shown = preview.get_json()
    assert preview.status_code == 200 and shown["ok"] and shown["problems"] == []
    assert "端午节廉洁过节提醒" in shown["text"] and "公务加油卡" in shown["text"] and "2026年6月18日" in shown["text"]

    assert post(client, "/admin/templates/holiday_integrity", {"text": edited, "note": "增加一条"}).status_code == 302
    page = client.get("/admin/plan").get_data(as_text=True)
    assert "端午节廉洁过节提醒" in page and "公务加油卡" in page

    runtime.replan()
    rows = list_deliveries(runtime.store, kind="holiday_notice", status="pending")
    assert rows and all("公务加油卡" in row.text for row in rows)
    assert {row.due_at.astimezone(BEIJING).strftime("%m-%d %H:%M") for row in rows} == {"06-18 10:00"}
