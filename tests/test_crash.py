"""`wecom-reminder run` killed with SIGKILL in the middle of a fan-out, then restarted.

Every group still gets its message; duplicates happen only for sends that were in flight at the
kill (the window no system can close: WeCom accepted the message, the process died before
recording it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from bot.clock import BEIJING
from bot.commands.demo import simulator_settings
from bot.config import load_settings
from bot.simulator import Simulator
from bot.store.db import open_store
from bot.store.queries import list_deliveries

GROUPS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configure(project: Path) -> None:
    """60 group robots, one announcement to all of them due now."""
    lines = [f"  g{i:02d}: {{type: robot, title: 第{i}群, key: 00000000-0000-0000-0000-0000000000{i:02d}}}"
             for i in range(GROUPS)]
    text = project.read_text(encoding="utf-8")
    text = text.replace("targets:\n", "targets:\n" + "\n".join(lines) + "\n", 1)
    text = text.replace("  all_groups: [", f"  many: [{', '.join(f'g{i:02d}' for i in range(GROUPS))}]\n  all_groups: [", 1)
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{free_port()}")
    project.write_text(text, encoding="utf-8")
    now = datetime.now(BEIJING)
    (project.parent / "schedules" / "announcements.yaml").write_text(
        f"announcements:\n  - id: crash-test\n    at: {now:%Y-%m-%d %H:%M}\n    to: [many]\n"
        f"    title: 测试通知\n    body: 请各群查收。\n", encoding="utf-8")


def start_run(project: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bot", "--config", str(project), "run"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_sigkill_mid_fan_out_loses_nothing(project: Path) -> None:
    configure(project)
    settings = load_settings(project)
    sim_settings = simulator_settings(settings)
    sim_settings.latency = 0.15
    sim = Simulator(sim_settings)
    url = sim.start()
    project.write_text(project.read_text(encoding="utf-8").replace("http://127.0.0.1:9000", url), encoding="utf-8")
    sends = lambda: len(sim.requests("/cgi-bin/webhook/send"))  # noqa: E731
    process = start_run(project)
    try:
        wait_for(lambda: sends() >= 10)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        store = open_store(load_settings(project).database_url())
        in_flight = len(list_deliveries(store, status="sending", kind="announcement", limit=1000))
        assert 0 < sends() < GROUPS, "the kill must land in the middle of the fan-out"
        process = start_run(project)
        wait_for(lambda: len(list_deliveries(store, status="sent", kind="announcement", limit=1000)) == GROUPS)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        received = {f"g{i:02d}": len(sim.group_messages(f"00000000-0000-0000-0000-0000000000{i:02d}"))
                    for i in range(GROUPS)}
        assert all(count >= 1 for count in received.values()), received
        duplicates = sum(count - 1 for count in received.values())
        assert duplicates <= in_flight
        resent = [r for r in list_deliveries(store, kind="announcement", limit=1000) if r.resent]
        assert len(resent) == in_flight
        store.close()
    finally:
        if process.poll() is None:
            process.kill()
        sim.stop()


def test_sigterm_stops_cleanly(project: Path) -> None:
    configure(project)
    (project.parent / "schedules" / "announcements.yaml").unlink()
    process = start_run(project)
    port = int(load_settings(project).server.listen.rsplit(":", 1)[1])

    def healthy() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    try:
        wait_for(healthy, timeout=30)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
