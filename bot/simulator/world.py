"""Everything the simulated WeCom remembers, behind one lock."""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import FileStorage

from bot.simulator.state import ApiError, Fault, RecordedRequest, SimulatorSettings, SlidingWindows
from bot.simulator.tenant import Tenant


@dataclass
class Call:
    """One API call as the handlers see it."""

    query: dict[str, str]
    raw: bytes
    ip: str
    files: dict[str, FileStorage] = field(default_factory=dict)

    def json_body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ApiError(47001) from None
        if not isinstance(body, dict):
            raise ApiError(47001)
        return body


class World:
    def __init__(self, settings: SimulatorSettings, clock: Callable[[], float],
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.wall_clock = wall_clock  # stamps what the simulator shows and records
        self.lock = threading.RLock()
        self._seq = 0
        self.recorded: list[RecordedRequest] = []  # on answering
        self.arrived: list[tuple[str, dict[str, str], float]] = []  # (path, query, when) on arrival
        self.dropped: list[dict[str, Any]] = []
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.tenant = Tenant()
        self.task_ids: set[str] = set()  # task_id is unique per app, forever (42014)
        # group robots
        self.robots: dict[str, str] = dict(settings.robots)
        self.disabled_robots: set[str] = set()
        self.robot_messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.robot_windows = SlidingWindows()
        self.media: dict[str, dict[str, Any]] = {}
        # the self-built app
        self.tokens: dict[str, float] = {}
        self.current_token: str | None = None
        self.token_fetches = 0
        self.user_messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.sent_msgids: dict[str, dict[str, Any]] = {}
        self.response_codes: dict[str, dict[str, Any]] = {}
        self.duplicates: dict[str, tuple[float, dict[str, Any]]] = {}
        self.member_windows = SlidingWindows()
        self.member_hour_windows = SlidingWindows()
        self.conversations: dict[str, list[dict[str, Any]]] = defaultdict(list)
        # app group chats
        self.chats: dict[str, dict[str, Any]] = {}
        self.chat_messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.chat_member_windows = SlidingWindows()

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def stamp(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Add ordering and display time to an entry about to be stored."""
        entry["seq"] = self.next_seq()
        entry["time"] = self.wall_clock()
        return entry

    def drop(self, path: str, reason: str, **details: Any) -> None:
        self.dropped.append(self.stamp({"path": path, "reason": reason, **details}))

    def new_id(self, size: int = 24) -> str:
        return secrets.token_urlsafe(size)

    # tokens -----------------------------------------------------------------------------

    def issue_token(self) -> tuple[str, int]:
        now = self.clock()
        self.token_fetches += 1
        token = self.current_token
        if token is None or self.tokens.get(token, 0.0) <= now:
            token = secrets.token_urlsafe(48)
            self.tokens[token] = now + self.settings.token_expires_in
            self.current_token = token
        return token, max(1, int(self.tokens[token] - now))

    def check_token(self, call: Call) -> None:
        token = call.query.get("access_token")
        if not token:
            raise ApiError(41001)
        expires = self.tokens.get(token)
        if expires is None:
            raise ApiError(40014)
        if expires <= self.clock():
            raise ApiError(42001)

    def expire_tokens(self) -> None:
        now = self.clock()
        for token in self.tokens:
            self.tokens[token] = min(self.tokens[token], now)

    def revoke_token(self, token: str) -> None:
        self.tokens.pop(token, None)
        if self.current_token == token:
            self.current_token = None

    # inspection ---------------------------------------------------------------------------

    def snapshot(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(entries)
