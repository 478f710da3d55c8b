"""Templates: save makes a version and a re-plan, a bad template is refused with its line, restore."""

from __future__ import annotations

from fakes import csrf_token, make_settings, post

from bot.store.audit import recent
from bot.store.template_versions import current_edits, history
from bot.web.template_uses import template_uses

NAME = "holiday_integrity"


def shipped(runtime) -> str:
    return runtime.templates().default_text(NAME)


def edited(runtime, old: str, new: str) -> str:
    text = shipped(runtime)
    assert old in text
    return text.replace(old, new, 1)


def test_list_shows_default_and_modified(admin, runtime) -> None:
    page = admin.get("/admin/templates").get_data(as_text=True)
    assert "节前廉洁提醒" in page and "默认" in page
    post(admin, f"/admin/templates/{NAME}", {"text": edited(runtime, "}}廉洁过节提醒", "}}廉洁过节温馨提醒")})
    page = admin.get("/admin/templates").get_data(as_text=True)
    assert "已修改" in page


def test_save_makes_a_version_an_audit_entry_and_a_replan(admin, runtime) -> None:
    text = edited(runtime, "}}廉洁过节提醒", "}}廉洁过节温馨提醒")
    response = post(admin, f"/admin/templates/{NAME}", {"text": text.replace("\n", "\r\n"), "note": "调整标题"})
    assert response.status_code == 302
    versions = history(runtime.store, NAME)
    assert len(versions) == 1 and versions[0].author == "admin" and versions[0].note == "调整标题"
    assert current_edits(runtime.store)[NAME] == text
    assert runtime.on_replan_requested.calls == 1
    entry = recent(runtime.store)[0]
    assert entry.actor == "admin" and entry.subject == f"模板 {NAME}" and entry.before == shipped(runtime)
    rendered = runtime.templates().render(NAME, {"holiday": {"name": "春节", "days": 0, "workdays": []},
                                                 "organisation": {"name": "局"}, "send_date": "2026-02-13"})
    assert "廉洁过节温馨提醒" in rendered.text


def test_syntax_error_is_refused_with_its_line(admin, runtime) -> None:
    text = edited(runtime, "各党支部、全体党员干部：", "各党支部、全体党员干部：{% if %}")
    line = text.splitlines().index(next(x for x in text.splitlines() if "{% if %}" in x)) + 1
    response = post(admin, f"/admin/templates/{NAME}", {"text": text})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f"第 {line} 行" in page and "未保存" in page
    assert history(runtime.store, NAME) == []
    assert runtime.on_replan_requested.calls == 0


def test_unknown_filter_is_refused_in_chinese_not_a_server_error(admin, runtime) -> None:
    response = post(admin, f"/admin/templates/{NAME}",
                    {"text": edited(runtime, "{{ holiday.name }}", "{{ holiday.name | cn_dat }}")})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "没有名为 cn_dat 的过滤器" in page and "未保存" in page
    assert history(runtime.store, NAME) == []


def test_unknown_variable_is_refused(admin, runtime) -> None:
    response = post(admin, f"/admin/templates/{NAME}", {"text": edited(runtime, "{{ holiday.name }}", "{{ holliday.name }}")})
    assert response.status_code == 422
    assert "holliday" in response.get_data(as_text=True)
    assert history(runtime.store, NAME) == []


def test_too_long_is_refused_with_the_byte_count(admin, runtime) -> None:
    response = post(admin, f"/admin/templates/{NAME}", {"text": shipped(runtime) + "严" * 1500})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "字节" in page and "4096" in page


def test_preview_json_renders_a_holiday_of_a_chosen_year(admin, runtime) -> None:
    period = runtime.calendar().periods(2025)[-1]
    token = csrf_token(admin, "/admin/")
    response = admin.post(f"/admin/templates/{NAME}/preview", headers={"X-CSRFToken": token},
                          json={"text": shipped(runtime), "sample": f"holiday:{period.key}"})
    data = response.get_json()
    assert data["ok"] and period.name in data["text"]
    size = len(data["text"].encode())
    # robots carry markdown up to 4096 bytes: the size is said against the limit of the channel that sends it
    assert data["sizes"] == [{"label": "群机器人 · markdown 消息", "line": f"{size} 字节（群机器人上限 4096 字节）"}]
    assert "<strong>" in data["html"] or "md-h" in data["html"]  # markdown drawn, not shown as source
    bad = admin.post(f"/admin/templates/{NAME}/preview", headers={"X-CSRFToken": token},
                     json={"text": shipped(runtime) + "{{ nope }}", "sample": "default"}).get_json()
    assert not bad["ok"] and "nope" in bad["problems"][0]["message"]


def test_preview_without_token_is_refused(admin, runtime) -> None:
    response = admin.post(f"/admin/templates/{NAME}/preview", json={"text": "x", "sample": "default"})
    assert response.status_code == 400


def test_history_diff_is_escaped(admin, runtime) -> None:
    post(admin, f"/admin/templates/{NAME}", {"text": edited(runtime, "各党支部", "<b>各党支部</b>")})
    page = admin.get(f"/admin/templates/{NAME}/history").get_data(as_text=True)
    assert "+&lt;b&gt;各党支部&lt;/b&gt;" in page.replace("&#43;", "+")
    assert "<b>各党支部</b>" not in page


def test_restore_default_after_confirmation(admin, runtime) -> None:
    post(admin, f"/admin/templates/{NAME}", {"text": edited(runtime, "}}廉洁过节提醒", "}}改过的提醒")})
    confirm = admin.get(f"/admin/templates/{NAME}/restore?version=default")
    assert confirm.status_code == 200 and "确认恢复" in confirm.get_data(as_text=True)
    assert NAME in current_edits(runtime.store)          # nothing changed by looking
    response = post(admin, f"/admin/templates/{NAME}/restore", {"version": "default"})
    assert response.status_code == 302
    assert NAME not in current_edits(runtime.store)
    assert history(runtime.store, NAME)[0].body is None
    assert recent(runtime.store)[0].action == "恢复默认模板"


def test_restore_an_earlier_version(admin, runtime) -> None:
    first = edited(runtime, "}}廉洁过节提醒", "}}第一版提醒")
    post(admin, f"/admin/templates/{NAME}", {"text": first})
    post(admin, f"/admin/templates/{NAME}", {"text": edited(runtime, "}}廉洁过节提醒", "}}第二版提醒")})
    oldest = history(runtime.store, NAME)[-1]
    post(admin, f"/admin/templates/{NAME}/restore", {"version": str(oldest.id)})
    assert current_edits(runtime.store)[NAME] == first
    assert recent(runtime.store)[0].action == "恢复到第 1 版"
    assert [v.number for v in history(runtime.store, NAME)] == [3, 2, 1]


def test_versions_count_per_template(admin, runtime) -> None:
    post(admin, "/admin/templates/holiday_return",
         {"text": runtime.templates().default_text("holiday_return").replace("收心", "收心归位", 1)})
    response = post(admin, f"/admin/templates/{NAME}", {"text": edited(runtime, "}}廉洁过节提醒", "}}改")},
                    follow_redirects=True)
    assert "已保存为第 1 版" in response.get_data(as_text=True)  # not the database's row number 2
    assert recent(runtime.store)[0].action == "保存模板（第 1 版）"
    page = admin.get(f"/admin/templates/{NAME}/history").get_data(as_text=True)
    assert "第 1 版" in page and "第 2 版" not in page


def test_version_of_another_template_is_not_found(admin, runtime) -> None:
    post(admin, f"/admin/templates/{NAME}", {"text": edited(runtime, "}}廉洁过节提醒", "}}改")})
    version = history(runtime.store, NAME)[0].id
    assert admin.get(f"/admin/templates/holiday_return/restore?version={version}").status_code == 404
    assert admin.get("/admin/templates/no_such_template").status_code == 404


def test_a_template_for_the_app_is_judged_by_the_app_limit(admin, runtime) -> None:
    # study_overdue goes to the administrators (an app target): app markdown stops at 2,048 bytes.
    text = runtime.templates().default_text("study_overdue") + "严" * 1000
    response = post(admin, "/admin/templates/study_overdue", {"text": text})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "应用消息 markdown 消息 2048 字节" in page
    # The same 3,000 bytes are fine in a group robot's markdown (4,096).
    response = post(admin, f"/admin/templates/{NAME}", {"text": shipped(runtime) + "严" * 1000})
    assert response.status_code == 302
def test_preview_draws_the_study_prompt_card_and_says_what_goes_where(admin) -> None:
    page = admin.get("/admin/templates/study_prompt").get_data(as_text=True)
    assert 'class="wx-card"' in page and "已完成学习" in page and "卡片各部分从哪里来" in page
    assert "卡片正文" in page and "个字（上限 160 个字）" in page
    assert "学习提醒：学习内容发布时发给各支部书记" in page and "第一党支部书记" in page


def test_a_broken_markdown_template_never_says_text_0_bytes(admin, runtime) -> None:
    token = csrf_token(admin, "/admin/")
    bad = admin.post(f"/admin/templates/{NAME}/preview", headers={"X-CSRFToken": token},
                     json={"text": shipped(runtime) + "{% if %}", "sample": "default"}).get_json()
    assert not bad["ok"] and bad["msgtype"] == "markdown" and "0 字节" not in bad["html"]
    problem = bad["problems"][0]
    assert problem["text"].count(f"第 {problem['line']} 行") == 1


def test_the_sandbox_refusal_is_said_in_chinese(admin, runtime) -> None:
    token = csrf_token(admin, "/admin/")
    text = shipped(runtime) + "{{ organisation.name.__class__ }}"
    bad = admin.post(f"/admin/templates/{NAME}/preview", headers={"X-CSRFToken": token},
                     json={"text": text, "sample": "default"}).get_json()
    message = bad["problems"][0]["text"]
    assert "安全沙箱" in message and "unsafe" not in message and "attribute" not in message


def test_templates_to_the_administrators_list_every_admin_target_in_order() -> None:
    settings = make_settings(None, robots=10, admin=["admin", "g9"])
    for name in ("alert", settings.studies.overdue_template):
        [use] = template_uses(settings, name)
        assert use.targets == ("admin", "g9") and "按顺序" in use.rule
