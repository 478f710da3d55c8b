"""Untrusted renders in worker processes: hostile templates end in a Chinese error, nothing else waits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import csrf_token
from flask.testing import FlaskClient

from bot.errors import TemplateError
from bot.templates.pool import RenderPool
from bot.templates.render import TemplateLibrary, validate_template
from bot.templates.samples import sample_context

ROOT = Path(__file__).resolve().parents[2]
HEAD = "---\ntitle: 测试\nmsgtype: text\n---\n"
DOUBLING = "{% set a = 'x' * 2000 %}" + "{% set a = a ~ a %}" * 40 + "{{ a | length }}"
HOSTILE = {
    "integer-growth": "{{ (((9 ** 64) ** 64) ** 64) ** 64 }}",
    "string-doubling": DOUBLING,
    "padding-format": "{{ '%999999999s' | format(1) }}",
    "padding-center": "{{ 'x' | center(999999999) }}",
    "padding-method": "{{ 'x'.ljust(999999999) }}",
    "self-include": "{% include 'hostile' %}",
    "self-import": "{% import 'hostile' as me %}{{ me }}",
    "macro-recursion": "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
    "outside-folder": "{% include '../config.example' %}",
    "absolute-path": "{% include '/etc/passwd' %}",
}


@pytest.fixture(scope="module")
def pool() -> Iterator[RenderPool]:
    running = RenderPool(size=1, timeout=2)
    yield running
    running.close()


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_template_ends_in_a_chinese_error_and_the_pool_lives_on(pool: RenderPool, body: str) -> None:
    library = TemplateLibrary(ROOT / "messages", pool=pool).with_edit("hostile", HEAD + body)
    with pytest.raises(TemplateError) as caught:
        library.render("hostile", {})
    assert "处理办法" in str(caught.value) and "Traceback" not in str(caught.value)
    fine = TemplateLibrary(ROOT / "messages", pool=pool).with_edit("fine", HEAD + "{{ name }}好")
    assert fine.render("fine", {"name": "张伟"}).text == "张伟好"


def test_a_shipped_template_renders_the_same_in_a_worker(pool: RenderPool) -> None:
    here = TemplateLibrary(ROOT / "messages")
    name = here.names()[0]
    sample = sample_context(name)
    assert TemplateLibrary(ROOT / "messages", pool=pool).render(name, sample) == here.render(name, sample)


def test_healthz_answers_while_a_reader_previews_hostile_templates(reader: FlaskClient, app) -> None:
    token = csrf_token(reader, "/admin/")
    answers: list[int] = []

    def preview_all() -> None:
        for body in (HOSTILE["integer-growth"], HOSTILE["string-doubling"], HOSTILE["self-include"]):
            answer = reader.post("/admin/templates/holiday_integrity/preview", json={"text": HEAD + body},
                                 headers={"X-CSRFToken": token})
            answers.append(answer.status_code)

    previewer = threading.Thread(target=preview_all)
    previewer.start()
    health = app.test_client()
    during = []
    while previewer.is_alive():
        during.append(health.get("/healthz").status_code)   # the bench times these; here: they answer
    previewer.join()
    assert during and set(during) == {200}
    assert answers == [200, 200, 200]   # each preview shows the problem, none is a 500


@pytest.mark.parametrize("key", ["padding-format", "padding-center", "integer-growth", "self-include"])
def test_checking_a_hostile_template_also_runs_in_the_worker(pool: RenderPool, key: str) -> None:
    # compiling folds constant filters ('%999999999s'|format(1)): the check itself must not run here
    library = TemplateLibrary(ROOT / "messages", pool=pool)
    [problem] = validate_template(library, "hostile", HEAD + HOSTILE[key], {})
    assert "处理办法" in problem.message


ENTRY_SCRIPT = """
import os, sys
with open(sys.argv[1], "a") as runs:  # each interpreter that runs this script says so
    runs.write(f"{os.getpid()}\\n")
from pathlib import Path
from bot.templates.pool import RenderPool
from bot.templates.render import TemplateLibrary
if __name__ == "__main__":
    pool = RenderPool(size=2)
    pool.warm()
    library = TemplateLibrary(Path(sys.argv[2]), {}, pool)
    print(library.render("reply_help", {"organisation": {"name": "某局机关党委"}}).text.splitlines()[0])
    pool.close()
"""


def test_workers_do_not_run_the_entry_script_again(tmp_path: Path) -> None:
    """`wecom-reminder` is a script that imports the whole service: a worker that ran it again would
    cost ~90 MB and a second (multiprocessing's spawn does so); ours import only the renderer."""
    import os
    import subprocess
    import sys
    script, runs = tmp_path / "entry.py", tmp_path / "runs.txt"
    script.write_text(ENTRY_SCRIPT, encoding="utf-8")
    shown = subprocess.run([sys.executable, str(script), str(runs), str(ROOT / "messages")], capture_output=True,
                           text=True, check=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert shown.startswith("您可以回复")
    assert len(runs.read_text().split()) == 1  # the parent alone
