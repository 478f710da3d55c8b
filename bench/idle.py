"""Idle cost of `wecom-reminder run`: resident memory and CPU over a minute; prints figures.

Starts ``python -m bot --config X run`` on a copy of the shipped project (its own port, database and
a simulator as WeCom; see bench.running), waits until it listens, then samples /proc/<pid> once a
second.

    python -m bench.idle [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.running import prepare, running

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def sample(pid: int) -> tuple[float, int]:
    """(CPU seconds so far, resident bytes) of the process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    return cpu, resident


# What `run` imports from its dependencies, in a bare interpreter that then does nothing: a floor
# for any service built on this stack.
STACK = ("requests", "wechatpy.enterprise.crypto", "sqlalchemy.orm", "pydantic", "flask", "flask_wtf",
         "jinja2.sandbox", "apscheduler.schedulers.background", "waitress", "yaml", "defusedxml.ElementTree")


def stack_floor() -> int:
    """Resident bytes of a bare interpreter that has imported STACK."""
    code = f"import {', '.join(STACK)}; print(open('/proc/self/statm').read().split()[1])"
    return int(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout) * PAGE


def measure(seconds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepare(folder)
        with running(folder) as run:
            report(run.process.pid, seconds)
    print(f"  the dependencies alone (a bare interpreter importing {len(STACK)} of them): "
          f"{stack_floor() / 2**20:.1f} MiB resident")


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
    print(f"  resident memory   start {rss0 / 2**20:6.1f} MiB   end {rss / 2**20:6.1f} MiB   peak {peak / 2**20:6.1f} MiB"
          "   (goal < 80 MB)")
    print(f"  CPU               {cpu - cpu0:6.2f} s   ({100 * (cpu - cpu0) / elapsed:.2f} % of one core)   (goal < 1 %)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args(argv)
    measure(args.seconds)


if __name__ == "__main__":
    main()
