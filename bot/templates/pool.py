"""Untrusted renders run in worker processes with limits, off the threads that answer and send.

Python cannot interrupt a running expression from inside (an integer raised to a huge power, a
string doubled again and again), and the sandbox cannot see every way to grow one. So a render
that a template edit controls goes to a worker process: its address space is capped (RLIMIT_AS),
its CPU seconds too (RLIMIT_CPU), and it is killed when one render takes longer than ``timeout``.
The caller gets a Chinese TemplateError and a fresh worker takes the dead one's place; the
threads that answer callbacks, serve /healthz and run the scheduler only wait on a pipe.
"""

from __future__ import annotations

import atexit
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bot.errors import TemplateError

MAX_MEMORY = 768 * 1024 * 1024   # bytes of address space per worker (an interpreter needs ~100 MB)
MAX_CPU_SECONDS = 600            # over a worker's life; it is replaced when it runs out
RENDER_TIMEOUT = 3.0             # seconds for one render, start to end
# A worker is a new interpreter (never a fork of a process that runs threads) that imports only the
# renderer: multiprocessing's spawn would also run the parent's main script again, and the
# `wecom-reminder` script imports the whole service (~90 MB and a second per worker).
_WORKER_CODE = ("import json, sys; sys.path[:] = json.loads(sys.argv[2]); "
                "from bot.templates.pool import serve_inherited; serve_inherited(int(sys.argv[1]))")


def serve_inherited(fd: int) -> None:
    """A worker's start: serve renders on the socket inherited as ``fd``."""
    _serve(Connection(fd))


def _serve(conn: Connection) -> None:
    """The worker: render what is asked, within the limits set here, until the pipe closes."""
    import resource

    from bot.templates.render import TemplateLibrary
    resource.setrlimit(resource.RLIMIT_AS, (MAX_MEMORY, MAX_MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (MAX_CPU_SECONDS, MAX_CPU_SECONDS + 5))
    libraries: dict[tuple[str, tuple[tuple[str, str], ...]], TemplateLibrary] = {}
    while True:
        try:
            operation, directory, edits, name, argument = conn.recv()
        except EOFError:
            return
        key = (directory, tuple(sorted(edits.items())))
        library = libraries.get(key) or TemplateLibrary(Path(directory), edits)
        libraries = {key: library}  # keep the last snapshot only: compiled once, memory stays small
        conn.send(_run_one(operation, library, name, argument))


def _run_one(operation: str, library: Any, name: str, argument: Any) -> tuple[str, Any]:
    from bot.templates.render import validate_template
    try:
        if operation == "validate":  # compiling folds constants, so even checking runs here
            text, sample, channels = argument
            return "ok", validate_template(library, name, text, sample, channels)
        return "ok", library.render(name, argument)
    except TemplateError as exc:
        return "error", str(exc)
    except MemoryError:
        return "error", f"模板 {name} 渲染时占用内存过多，已中止。处理办法：去掉模板中的大数运算或重复内容"


class _Worker:
    def __init__(self) -> None:
        parent, child = socket.socketpair()
        with child:  # the worker holds its own copy; at our end of the pair it reads EOF when we die
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_CODE, str(child.fileno()), json.dumps(sys.path)],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL)
        self.conn = Connection(parent.detach())

    def ask(self, request: tuple[Any, ...], timeout: float) -> tuple[str, Any] | None:
        """The answer, or None when the worker ran out of time or died (it is then killed)."""
        try:
            self.conn.send(request)
            if self.conn.poll(timeout):
                return self.conn.recv()
        except (EOFError, OSError):
            pass
        self.close()
        return None

    def close(self) -> None:
        self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.conn.close()


class RenderPool:
    """A few workers; a render waits for a free one, then for at most ``timeout`` seconds."""

    def __init__(self, size: int = 2, timeout: float = RENDER_TIMEOUT) -> None:
        self.timeout = timeout
        self.size = size
        self._slots = threading.Semaphore(size)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def render(self, directory: Path, edits: Mapping[str, str], name: str, context: Mapping[str, Any]) -> Any:
        return self._run("render", directory, edits, name, dict(context))

    def validate(self, directory: Path, edits: Mapping[str, str], name: str, text: str,
                 sample: Mapping[str, Any], channels: tuple[str, ...]) -> Any:
        """``validate_template`` in a worker: its problems (a list), or TemplateError when it overran."""
        return self._run("validate", directory, edits, name, (text, dict(sample), channels))

    def _run(self, operation: str, directory: Path, edits: Mapping[str, str], name: str, argument: Any) -> Any:
        with self._slots:
            worker = self._take()
            answer = worker.ask((operation, str(directory), dict(edits), name, argument), self.timeout)
            if answer is None:
                raise TemplateError(f"模板 {name} 渲染超过 {self.timeout:g} 秒或占用内存过多，已中止",
                                    fix="去掉模板中的大数运算、长循环或重复内容")
            with self._lock:
                self._idle.append(worker)
        kind, value = answer
        if kind == "error":
            raise TemplateError(value)
        return value

    def warm(self) -> None:
        """Start the workers now, so that their start-up overlaps the caller's (`run` at start)."""
        with self._lock:
            self._idle.extend(_Worker() for _ in range(self.size - len(self._idle)))

    def _take(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Worker()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


_shared: RenderPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> RenderPool:
    """One small pool for renders made outside a runtime: alerts (from the dispatcher, the scheduler
    or a callback) and ``check``. The files in messages/ are the administrator's, alert.j2 too, so
    no template is rendered or compiled in the calling process: one way to render."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RenderPool(size=1)
            atexit.register(_shared.close)
        return _shared
