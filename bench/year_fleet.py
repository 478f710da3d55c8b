"""The year benchmark's moving parts outside the service: its clock file and its processes.

Each replica is a real `python -m bot run` with WECOM_REMINDER_TEST_CLOCK_FILE pointing at the
clock file this benchmark moves; it is killed with SIGKILL, never asked to stop, until the year
is over.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.client import HTTPConnection
from pathlib import Path

from bench.running import ROOT
from bot.clock import TEST_CLOCK_ENV, FileClock


class MovedTime:
    """The benchmark's side of the clock file: it jumps, time flows from there at the normal rate."""

    def __init__(self, path: Path, start: datetime) -> None:
        self.path = path
        FileClock.write(path, start)
        self.clock = FileClock(path)

    def now(self) -> datetime:
        return self.clock.now()

    def epoch(self) -> float:
        return self.clock.now().timestamp()

    def jump(self, instant: datetime) -> None:
        """Move to ``instant``; never backwards (the service's leases and windows assume that)."""
        FileClock.write(self.path, max(instant, self.now()))


@dataclass
class Replica:
    config: Path
    listen: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started: int = 0
    rss_kb: list[int] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Fleet:
    """One `run` per config (two on PostgreSQL), started, SIGKILLed and restarted by the benchmark."""

    def __init__(self, replicas: list[Replica], clock_file: Path) -> None:
        self.replicas = replicas
        self.env = {**os.environ, TEST_CLOCK_ENV: str(clock_file)}

    def start(self, index: int) -> None:
        replica = self.replicas[index]
        command = [sys.executable, "-m", "bot", "--config", str(replica.config), "run"]
        with replica.log.open("ab") as log:
            replica.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        replica.started += 1

    def wait_up(self, index: int, seconds: float = 120) -> None:
        """Until the replica answers /healthz (its start-up recovery and first plan are done)."""
        replica = self.replicas[index]
        host, _, port = replica.listen.rpartition(":")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not replica.alive:
                raise SystemExit(f"`run` exited before answering; see {replica.log}")
            try:
                connection = HTTPConnection(host, int(port), timeout=2)
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"`run` did not answer within {seconds:.0f} s; see {replica.log}")

    def listening(self, replica: Replica) -> bool:
        host, _, port = replica.listen.rpartition(":")
        with socket.socket() as probe:
            return replica.alive and probe.connect_ex((host, int(port))) == 0

    def kill(self, index: int) -> None:
        process = self.replicas[index].process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def pid_of(self, index: int) -> int:
        process = self.replicas[index].process
        return process.pid if process is not None else -1

    def sample_memory(self) -> None:
        """Resident memory of each replica that has finished starting (one still importing is small)."""
        for replica in self.replicas:
            if replica.process is not None and self.listening(replica):
                replica.rss_kb.append(resident_kb(replica.process.pid))

    def stop(self) -> None:
        for replica in self.replicas:
            if replica.alive and replica.process is not None:
                replica.process.terminate()
                try:
                    replica.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    replica.process.kill()


def resident_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
