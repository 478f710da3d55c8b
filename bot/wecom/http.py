"""The HTTP session to WeCom: a pooled connection per send worker, the environment read once."""

from __future__ import annotations

import os

import requests
from requests.adapters import HTTPAdapter

from bot.config import Settings


def pooled_session(session: requests.Session | None, settings: Settings, size: int) -> requests.Session:
    """A session whose pool to WeCom holds a connection per worker (urllib3 keeps 10 by default)."""
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=size)
    if session is None:
        session = requests.Session()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if settings.wecom is not None:
            _read_environment_once(session, settings.wecom.api_base)
    elif settings.wecom is not None:
        session.mount(settings.wecom.api_base, adapter)
    return session


def _read_environment_once(session: requests.Session, api_base: str) -> None:
    """Take the proxy and CA bundle for WeCom from the environment now, as requests would on each call.

    requests reads them (and ~/.netrc) on every request: about a third of a send's CPU time.
    """
    session.proxies.update(requests.utils.get_environ_proxies(api_base))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    # Only for https: with a bundle path, requests stats it on every request (os.path.isdir),
    # whatever the scheme; over plain http (the simulator) there is nothing to verify.
    if bundle and api_base.lower().startswith("https://"):
        session.verify = bundle
    session.trust_env = False
