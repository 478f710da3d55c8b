"""The console's 智能机器人 page: learnt groups, binding one to a branch (CSRF, audited, admins only)."""

from __future__ import annotations

from fakes import post
from flask.testing import FlaskClient

from bot.runtime import Runtime
from bot.store.aibot import bound_chats, learn_chat
from bot.store.audit import recent
from bot.web.common import secret_values

CHAT = "wrcLearntGroup01"


def learn(runtime: Runtime, chatid: str = CHAT, userid: str = "zhangwei") -> None:
    with runtime.store.session() as session:
        learn_chat(session, chatid, "group", userid, runtime.clock.now())


def test_the_page_lists_learnt_groups_and_who_spoke_first(admin: FlaskClient, runtime: Runtime) -> None:
    assert "尚未识别任何群聊" in admin.get("/admin/aibot").get_data(as_text=True)
    learn(runtime)
    learn(runtime, userid="lina")  # a later message changes nothing
    page = admin.get("/admin/aibot").get_data(as_text=True)
    assert CHAT in page and "张伟（第一党支部书记）" in page and "李娜" not in page and "未绑定" in page


def test_the_ai_bot_secret_is_one_the_console_masks(runtime: Runtime) -> None:
    aibot = runtime.settings().aibot
    assert aibot is not None and aibot.secret.get_secret_value() in secret_values(runtime.settings())
    assert aibot.secret.get_secret_value() not in repr(runtime.settings())


def test_an_administrator_binds_a_learnt_group_and_it_is_audited(admin: FlaskClient, runtime: Runtime) -> None:
    learn(runtime)
    response = post(admin, "/admin/aibot/bind", {"chatid": CHAT, "branch": "b1"})
    assert response.status_code == 302
    assert bound_chats(runtime.store) == {CHAT: "b1"}
    entry = recent(runtime.store, limit=1)[0]
    assert (entry.action, entry.subject, entry.before, entry.after) == ("绑定智能机器人群聊", CHAT, None, "第一党支部")
    page = admin.get("/admin/aibot").get_data(as_text=True)
    assert "已将群聊" in page and "admin ·" in page
    assert post(admin, "/admin/aibot/bind", {"chatid": CHAT, "branch": ""}).status_code == 302
    assert bound_chats(runtime.store) == {}
    assert recent(runtime.store, limit=1)[0].before == "第一党支部"


def test_binding_is_refused_without_csrf_for_readers_and_for_unknown_input(
        admin: FlaskClient, reader: FlaskClient, runtime: Runtime) -> None:
    learn(runtime)
    assert admin.post("/admin/aibot/bind", data={"chatid": CHAT, "branch": "b1"}).status_code == 400
    assert post(reader, "/admin/aibot/bind", {"chatid": CHAT, "branch": "b1"}).status_code == 403
    assert post(admin, "/admin/aibot/bind", {"chatid": CHAT, "branch": "nope"}).status_code == 422
    assert post(admin, "/admin/aibot/bind", {"chatid": "never-heard", "branch": "b1"}).status_code == 404
    assert bound_chats(runtime.store) == {}


def test_the_study_prompt_editor_says_the_ai_bot_pushes_its_card_to_groups(admin: FlaskClient) -> None:
    page = admin.get("/admin/templates/study_prompt").get_data(as_text=True)
    assert "智能机器人向已绑定的支部群推送同一张卡片" in page
