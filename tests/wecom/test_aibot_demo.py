"""The demo with its 智能机器人: a newcomer writes "@机器人 已学习" on a group page of the simulator."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests
from fakes import wait_for

from bot.commands.demo import simulator_settings
from bot.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_example_config_runs_the_ai_bot_against_the_simulator() -> None:
    settings = load_settings(ROOT / "config.example.yaml")
    assert settings.aibot is not None and settings.aibot.ws_url == "ws://127.0.0.1:9001"
    simulated = simulator_settings(settings)
    assert simulated.aibot_bots == {settings.aibot.bot_id: settings.aibot.secret.get_secret_value()}
    assert simulated.aibot_port == 9001


def test_demo_answers_a_mention_in_a_group_page(project: Path) -> None:
    sim_port, ws_port, port = free_port(), free_port(), free_port()
    example = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    text = example.replace("127.0.0.1:9000", f"127.0.0.1:{sim_port}").replace("127.0.0.1:9001", f"127.0.0.1:{ws_port}")
    project.write_text(text.replace("127.0.0.1:8080", f"127.0.0.1:{port}"), encoding="utf-8")
    log_path = project.parent / "demo.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(project), "demo", "--no-welcome"],
                                   cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{sim_port}"
        try:
            wait_for(lambda: "智能机器人长连接已订阅" in log_path.read_text(encoding="utf-8"), 60)
            index = requests.get(f"{base}/", timeout=5).text
            assert "服务已连接，可在群页面 @机器人" in index
            ref = re.search(r'href="/group/([0-9a-f]+)">第一党支部群', index)
            assert ref, index
            page = requests.post(f"{base}/group/{ref.group(1)}/mention", data={"userid": "zhangwei", "text": "已学习"},
                                 timeout=10).text
            assert "@机器人 已学习" in page
            wait_for(lambda: "已记录" in requests.get(f"{base}/group/{ref.group(1)}?as=zhangwei", timeout=5).text)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
