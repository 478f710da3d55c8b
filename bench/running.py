"""A real `wecom-reminder run` for the benchmarks: a copy of the shipped project, a simulator as WeCom.

The copy has its own port and SQLite database; the simulator runs in the benchmark's own process.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.commands.demo import simulator_settings
from bot.config import Settings, load_settings
from bot.simulator import Simulator

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Running:
    process: subprocess.Popen[bytes]
    settings: Settings
    folder: Path

    @property
    def database(self) -> Path:
        return self.folder / "data" / "bench.sqlite3"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare(folder: Path) -> Path:
    """A copy of config.example.yaml, schedules/ and messages/ using its own port and database."""
    for name in ("schedules", "messages"):
        shutil.copytree(ROOT / name, folder / name)
    config: dict[str, Any] = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    config["server"]["listen"] = f"127.0.0.1:{free_port()}"
    config["database"]["url"] = f"sqlite:///{folder}/data/bench.sqlite3"
    config["wecom"]["api_base"] = f"http://127.0.0.1:{free_port()}"
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@contextmanager
def running(folder: Path) -> Iterator[Running]:
    """`python -m bot run` on the project copy in ``folder`` (see prepare), stopped by SIGTERM."""
    settings = load_settings(folder / "config.yaml")
    simulator = Simulator(simulator_settings(settings))
    simulator.start("127.0.0.1", int(settings.wecom.api_base.rsplit(":", 1)[1]))  # type: ignore[union-attr]
    command = [sys.executable, "-m", "bot", "--config", str(folder / "config.yaml"), "run"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(settings.server.listen, process)
        yield Running(process, settings, folder)
    finally:
        process.terminate()
        process.wait(timeout=30)
        simulator.stop()


def wait_listening(listen: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    host, _, port = listen.rpartition(":")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"`run` exited with {process.returncode} before listening")
        with socket.socket() as probe:
            if probe.connect_ex((host, int(port))) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"`run` did not listen on {listen} within {seconds:.0f} s")
