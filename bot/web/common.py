"""What every console page shares: the blueprint, the runtime, time formatting, paging, masking."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from flask import Blueprint, Flask, current_app, flash, g

from bot.config import Settings
from bot.formatting import STATUS_LABELS, target_title
from bot.occurrence import KIND_LABELS
from bot.runtime import Runtime
from bot.simulator.markdown import render_markdown
from bot.store.audit import audit
from bot.web.delivery_subjects import subject_of

RUNTIME_KEY = "wecom_runtime"
PAGE_SIZE = 50
MASK = "******"
_KEY_IN_URL = re.compile(r"(key|secret|access_token|corpsecret|token)=([^&\s\"']+)", re.I)

console = Blueprint("console", __name__, url_prefix="/admin",
                    template_folder="templates", static_folder="static")


def runtime() -> Runtime:
    return current_app.extensions[RUNTIME_KEY]


def settings() -> Settings:
    return runtime().settings()


def now() -> datetime:
    return runtime().clock.now().astimezone(settings().zone)


def today() -> date:
    return now().date()


def actor() -> str:
    return g.user.name


def record(action: str, subject: str, before: str | None = None, after: str | None = None) -> None:
    """An audit entry for a change made by the logged-in administrator."""
    audit(runtime().store, actor=actor(), action=action, subject=subject, before=before, after=after, at=now())


def notice(message: str, category: str = "info") -> None:
    flash(message, category)


def secret_values(current: Settings) -> list[str]:
    """Every secret the configuration holds (robot keys, app secret, callback token and key, AI bot secret)."""
    found = [t.key.get_secret_value() for t in current.targets.values() if hasattr(t, "key")]
    if current.wecom is not None:
        found += [current.wecom.secret.get_secret_value(), current.wecom.callback.token.get_secret_value(),
                  current.wecom.callback.encoding_aes_key.get_secret_value()]
    if current.server.secret_key is not None:
        found.append(current.server.secret_key.get_secret_value())
    if current.aibot is not None:
        found.append(current.aibot.secret.get_secret_value())
    return [s for s in found if len(s) >= 6]


def mask_secrets(text: Any) -> str:
    """Text safe to show: secrets in it (and key=… in URLs) replaced by asterisks."""
    return secret_masker(settings())(text)


def secret_masker(current: Settings) -> Callable[[Any], str]:
    """mask_secrets for these settings, usable outside a request (a streamed download)."""
    secrets = secret_values(current)

    def mask(text: Any) -> str:
        if text is None:
            return ""
        masked = _KEY_IN_URL.sub(lambda m: f"{m.group(1)}={MASK}", str(text))
        for secret in secrets:
            masked = masked.replace(secret, MASK)
        return masked
    return mask


def beijing(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.astimezone(settings().zone).strftime(fmt) if value else ""


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=settings().zone)


def parse_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat((text or "").strip()) if text else None
    except ValueError:
        return None


def parse_int(text: str | None, default: int, low: int = 1, high: int = 1_000_000) -> int:
    try:
        return min(max(int(text or default), low), high)
    except ValueError:
        return default


@dataclass(frozen=True)
class Page:
    number: int
    size: int
    total: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    def numbers(self) -> Iterable[int]:
        """A few page numbers around the current one."""
        return range(max(1, self.number - 3), min(self.pages, self.number + 3) + 1)


def page_of(raw: str | None, total: int, size: int = PAGE_SIZE) -> Page:
    pages = max(1, math.ceil(total / size))
    return Page(parse_int(raw, 1, 1, pages), size, total)


def install_filters(app: Flask) -> None:
    app.jinja_env.filters.update(
        beijing=beijing, masked=mask_secrets, kind_label=lambda k: KIND_LABELS.get(k, k),
        status_label=lambda s: STATUS_LABELS.get(s, s),
        target_label=lambda name: target_title(name, settings().all_targets()), wecom_markdown=render_markdown,
        subject=lambda row: subject_of(row, runtime().studies(), runtime().calendar()))
    app.context_processor(lambda: {"org_name": settings().organisation.name})
