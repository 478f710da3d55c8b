"""Message templates: list, editor with live preview, versions with diffs, restore."""

from __future__ import annotations

import difflib
from typing import Any

from flask import abort, jsonify, redirect, render_template, request, url_for

from bot.errors import BotError
from bot.store.template_versions import Version, get_version, history, save_version
from bot.templates.limits import template_channels
from bot.templates.render import TemplateLibrary
from bot.templates.samples import sample_context
from bot.web.common import actor, console, notice, now, runtime
from bot.web.previews import DEFAULT, build_sample, preview, sample_choices, save_problems


@console.get("/templates")
def templates_list() -> Any:
    library = runtime().templates()
    rows = []
    for name in library.names():
        try:
            source = library.source(name)
            rows.append({"name": name, "title": source.title, "description": source.description,
                         "edited": name in library.edits, "error": None})
        except BotError as exc:
            rows.append({"name": name, "title": name, "description": "", "edited": name in library.edits,
                         "error": str(exc)})
    return render_template("templates_list.html", rows=rows)


def _library_for(name: str) -> TemplateLibrary:
    library = runtime().templates()
    if name not in library.names():
        abort(404, f"模板 {name} 不存在。")
    return library.using(runtime().preview_renders)  # a hostile preview never holds up a real send


def _current_text(library: TemplateLibrary, name: str) -> str:
    return library.edits.get(name) or library.default_text(name) or ""


def _sample(name: str, choice: str) -> dict[str, Any]:
    rt = runtime()
    return build_sample(name, choice, rt.calendar(), rt.studies())


def _channels(name: str) -> frozenset[str]:
    """Judged by the channels of the targets that use it: app markdown is 2,048 bytes, robot 4,096."""
    return template_channels(runtime().settings(), name)


def _editor(name: str, text: str, choice: str, problems: list[Any] | None = None, status: int = 200) -> Any:
    rt = runtime()
    library = _library_for(name)
    shown = preview(library, name, text, _sample(name, choice), rt.settings(), _channels(name))
    return render_template(
        "template_edit.html", name=name, title=library.source(name).title, text=text, choice=choice, preview=shown,
        problems=problems if problems is not None else shown.problems, edited=name in library.edits,
        choices=sample_choices(name, rt.calendar(), rt.studies()),
        variables=sorted(sample_context(name))), status


@console.get("/templates/<name>")
def template_edit(name: str) -> Any:
    library = _library_for(name)
    return _editor(name, _current_text(library, name), request.args.get("sample", DEFAULT))


def _submitted_text() -> str:
    return request.form.get("text", "").replace("\r\n", "\n")


@console.post("/templates/<name>/preview")
def template_preview(name: str) -> Any:
    library = _library_for(name)
    if request.is_json:
        data = request.get_json(silent=True) or {}
        text = str(data.get("text", "")).replace("\r\n", "\n")
        shown = preview(library, name, text, _sample(name, str(data.get("sample", DEFAULT))), runtime().settings(),
                        _channels(name))
        return jsonify({**shown.as_json(), "html": render_template("_preview.html", preview=shown)})
    return _editor(name, _submitted_text(), request.form.get("sample", DEFAULT))


@console.post("/templates/<name>")
def template_save(name: str) -> Any:
    library = _library_for(name)
    text, choice = _submitted_text(), request.form.get("sample", DEFAULT)
    problems = save_problems(library, name, text, [sample_context(name), _sample(name, choice)], _channels(name))
    if problems:
        notice("模板有错误，未保存。请按提示修改后再保存。", "danger")
        return _editor(name, text, choice, problems, status=422)
    current = _current_text(library, name)
    if text == current:
        notice("内容没有变化，未生成新版本。", "info")
        return redirect(url_for("console.template_edit", name=name, sample=choice))
    note = request.form.get("note", "").strip()[:200] or None
    version = save_version(runtime().store, name, text, actor(), now(), before=current, note=note)
    runtime().request_replan()
    notice(f"已保存为第 {version} 版。此后发送的消息将使用新模板，无需重启服务。", "success")
    return redirect(url_for("console.template_edit", name=name, sample=choice))


def _version_text(library: TemplateLibrary, name: str, version: Version | None) -> str:
    if version is None or version.body is None:
        return library.default_text(name) or ""
    return version.body


def diff_lines(before: str, after: str) -> list[tuple[str, str]]:
    """A unified diff as (css class, line) pairs; the template escapes the lines."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), "修改前", "修改后", lineterm="", n=2)
    css = {"+": "add", "-": "del", "@": "hunk"}
    return [(css.get(line[:1], "ctx"), line) for line in lines]


@console.get("/templates/<name>/history")
def template_history(name: str) -> Any:
    library = _library_for(name)
    versions = history(runtime().store, name)
    entries = []
    for index, version in enumerate(versions):
        previous = versions[index + 1] if index + 1 < len(versions) else None
        diff = diff_lines(_version_text(library, name, previous), _version_text(library, name, version))
        entries.append({"version": version, "diff": diff, "current": index == 0})
    return render_template("template_history.html", name=name, entries=entries,
                           edited=name in library.edits)


def _restore_target(name: str, raw: str) -> tuple[Version | None, str]:
    """(version or None for the default, label); 404 for a version of another template."""
    if raw == "default":
        return None, "系统默认模板"
    version = get_version(runtime().store, int(raw)) if raw.isdigit() else None
    if version is None or version.name != name:
        abort(404, "该版本不存在。")
    return version, f"第 {version.number} 版（{version.author}）"


@console.get("/templates/<name>/restore")
def template_restore_confirm(name: str) -> Any:
    library = _library_for(name)
    version, label = _restore_target(name, request.args.get("version", "default"))
    diff = diff_lines(_current_text(library, name), _version_text(library, name, version))
    return render_template("template_restore.html", name=name, label=label, diff=diff,
                           version=request.args.get("version", "default"))


@console.post("/templates/<name>/restore")
def template_restore(name: str) -> Any:
    library = _library_for(name)
    version, label = _restore_target(name, request.form.get("version", "default"))
    body = version.body if version is not None else None
    if body is not None:
        problems = save_problems(library, name, body, [sample_context(name)], _channels(name))
        if problems:
            notice(f"{label}已不能通过校验，未恢复：{problems[0].text}", "danger")
            return redirect(url_for("console.template_history", name=name))
    if body is None and name not in library.edits:
        notice("当前使用的已是系统默认模板，无需恢复。", "info")
        return redirect(url_for("console.template_edit", name=name))
    action = "恢复默认模板" if version is None else f"恢复到第 {version.number} 版"
    save_version(runtime().store, name, body, actor(), now(), before=_current_text(library, name),
                 note=f"恢复为{label}", action=action)
    runtime().request_replan()
    notice(f"已恢复为{label}。", "success")
    return redirect(url_for("console.template_edit", name=name))
