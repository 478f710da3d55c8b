"""`admin create | list | reset-password | disable` as an IT person runs them, passwords on stdin."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.cli import main
from bot.clock import SystemClock
from bot.runtime import Runtime
from bot.store.accounts import authenticate


def run(project: Path, monkeypatch: pytest.MonkeyPatch, stdin: str, *args: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["--config", str(project), "admin", *args])


def can_log_in(project: Path, name: str, password: str) -> bool:
    runtime = Runtime(project, SystemClock())
    try:
        return authenticate(runtime.store, name, password, runtime.clock.now()).account is not None
    finally:
        runtime.close()


def test_create_list_reset_and_disable(project: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert run(project, monkeypatch, "first-password-1\n", "create", "王主任", "--password-stdin") == 0
    assert run(project, monkeypatch, "", "list") == 0
    assert "王主任\t管理员\t正常\t最近登录：从未登录" in capsys.readouterr().out
    assert run(project, monkeypatch, "second-password-2\n", "reset-password", "王主任", "--password-stdin") == 0
    assert can_log_in(project, "王主任", "second-password-2") and not can_log_in(project, "王主任", "first-password-1")
    assert run(project, monkeypatch, "", "disable", "王主任") == 0
    assert not can_log_in(project, "王主任", "second-password-2")
    run(project, monkeypatch, "", "list")
    assert "王主任\t管理员\t已停用" in capsys.readouterr().out


def test_short_password_and_end_of_input_are_chinese_errors(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert run(project, monkeypatch, "short\n", "create", "a", "--password-stdin") == 2
    assert "密码至少 10 位" in capsys.readouterr().err
    assert run(project, monkeypatch, "", "create", "a", "--password-stdin") == 2
    err = capsys.readouterr().err
    assert "没有读到密码" in err and "Traceback" not in err


def test_the_terminal_checks_the_length_before_asking_twice(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    asked: list[str] = []

    def answer(prompt: str) -> str:
        asked.append(prompt)
        return "short"
    monkeypatch.setattr("getpass.getpass", answer)
    assert run(project, monkeypatch, "", "create", "a") == 2
    assert len(asked) == 1 and "密码至少 10 位" in capsys.readouterr().err

    def end(prompt: str) -> str:
        raise EOFError
    monkeypatch.setattr("getpass.getpass", end)
    assert run(project, monkeypatch, "", "create", "a") == 2
    assert "没有读到密码" in capsys.readouterr().err


def test_an_unknown_account_is_named(project: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert run(project, monkeypatch, "", "disable", "nobody") == 2
    assert "账号 nobody 不存在" in capsys.readouterr().err
