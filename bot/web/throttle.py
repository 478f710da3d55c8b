"""Login throttling that slows a guesser without letting anyone lock everybody out.

Failures are counted in three places, each within a sliding window of 15 minutes (runtime clock):

- per account AND client address (in memory): 5 → that client may not log in to that account;
- per client address (in memory): 20 → that client may not log in at all;
- per account (in the database, failures in a row from anywhere): 50 → the account is locked,
  which only a slow guess spread over many addresses reaches; ``admin unlock`` ends it.

So one client failing on purpose locks out only itself, never the real administrator at another
address. The client address is the TCP peer, or the last address in ``server.trusted_proxy_header``
when a reverse proxy is configured: a header nobody configured is never believed.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from flask import Request

PAIR_FAILURES = 5
ADDRESS_FAILURES = 20
ACCOUNT_FAILURES = 50
WINDOW = timedelta(minutes=15)
MAX_KEYS = 10_000


def client_address(request: Request, trusted_header: str | None) -> str:
    """The client's address: from the configured proxy header only, else the TCP peer."""
    if trusted_header:
        forwarded = request.headers.get(trusted_header, "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:100]
    return request.remote_addr or "-"


class LoginThrottle:
    """Recent failures per client address and per (account, address), in this process."""

    def __init__(self, window: timedelta = WINDOW) -> None:
        self.window = window
        self._failures: dict[tuple[str, ...], deque[datetime]] = {}
        self._lock = threading.Lock()

    def blocked(self, name: str, address: str, at: datetime, since: datetime | None = None) -> bool:
        """True when this client may not try now; ``since``: the account's last unlock."""
        with self._lock:
            pair = [t for t in self._recent((name.strip(), address), at) if since is None or t > since]
            return len(pair) >= PAIR_FAILURES or len(self._recent((address,), at)) >= ADDRESS_FAILURES

    def failed(self, name: str, address: str, at: datetime) -> None:
        with self._lock:
            self._recent((name.strip(), address), at).append(at)
            self._recent((address,), at).append(at)
            if len(self._failures) > MAX_KEYS:  # many invented names: forget the ones past the window
                for key in [k for k, times in self._failures.items() if not times or times[-1] <= at - self.window]:
                    del self._failures[key]

    def _recent(self, key: tuple[str, ...], at: datetime) -> deque[datetime]:
        recent = self._failures.setdefault(key, deque())
        while recent and recent[0] <= at - self.window:
            recent.popleft()
        return recent
