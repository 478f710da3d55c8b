"""Idle cost of `wecom-reminder run`: resident memory and CPU over a minute; prints figures.

Starts ``python -m bot --config X run`` on a copy of the shipped config (its own port, database and
a simulator as WeCom), waits until it listens, then samples /proc/<pid> once a second.

    python -m bench.idle [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare(folder: Path, api_base: str) -> Path:
    """A copy of config.example.yaml, schedules/ and messages/ using its own port and database."""
    for name in ("schedules", "messages"):
        shutil.copytree(ROOT / name, folder / name)
    config: dict[str, Any] = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    config.setdefault("server", {})["listen"] = f"127.0.0.1:{free_port()}"
    config.setdefault("database", {})["url"] = f"sqlite:///{folder}/data/idle.sqlite3"
    config["wecom"]["api_base"] = api_base
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


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


def sample(pid: int) -> tuple[float, int]:
    """(CPU seconds so far, resident bytes) of the process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    return cpu, resident


def measure(seconds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = prepare(folder, "http://127.0.0.1:1")  # replaced below once the simulator has a port
        simulator = _simulator_for(config)
        listen = yaml.safe_load(config.read_text(encoding="utf-8"))["server"]["listen"]
        command = [sys.executable, "-m", "bot", "--config", str(config), "run"]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_listening(listen, process)
            report(process.pid, seconds)
        finally:
            process.terminate()
            process.wait(timeout=30)
            if simulator is not None:
                simulator.stop()


def _simulator_for(config: Path) -> Any:
    """Point the config at a fresh simulator; without one, `run` idles against an unreachable host."""
    try:
        from bot.simulator import Simulator, SimulatorSettings
    except ImportError:
        return None
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    wecom = data["wecom"]
    robots = {t["key"]: name for name, t in data.get("targets", {}).items() if t.get("type") == "robot"}
    simulator = Simulator(SimulatorSettings(
        corp_id=wecom["corp_id"], secret=wecom["secret"], agent_id=int(wecom["agent_id"]),
        callback_token=wecom["callback"]["token"], encoding_aes_key=wecom["callback"]["encoding_aes_key"],
        callback_url=None, robots=robots, users={}))
    data["wecom"]["api_base"] = simulator.start()
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return simulator


def report(pid: int, seconds: int) -> None:
    time.sleep(5)  # let start-up (planning, recovery) finish: we measure idling
    cpu0, rss0 = sample(pid)
    peak = rss0
    start = time.monotonic()
    for _ in range(seconds):
        time.sleep(1)
        cpu, rss = sample(pid)
        peak = max(peak, rss)
    elapsed = time.monotonic() - start
    print(f"`wecom-reminder run` idle for {elapsed:.0f} s (pid {pid})")
    print(f"  resident memory   start {rss0 / 2**20:6.1f} MiB   end {rss / 2**20:6.1f} MiB   peak {peak / 2**20:6.1f} MiB")
    print(f"  CPU               {cpu - cpu0:6.2f} s   ({100 * (cpu - cpu0) / elapsed:.2f} % of one core)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args(argv)
    measure(args.seconds)


if __name__ == "__main__":
    main()
