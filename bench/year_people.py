"""The branch secretaries of the year benchmark: they read their study prompts and reply, or not.

Each prompt a secretary receives in the simulator is answered "第N期已学习" within a day or two,
or late (after a nudge), or twice, or never; some answers reach the service twice, the same
signed payload, as WeCom repeats a callback it thinks unanswered.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.clock import BEIJING
from bot.simulator import Simulator
from bot.simulator.callback_sender import text_message_xml

ISSUE = re.compile(r"《警示教育通报》2026年第(\d+)期")


@dataclass
class Replies:
    sent: int = 0             # distinct replies typed (each a distinct MsgId)
    answered: int = 0         # of those, the service answered 200
    repeated: int = 0         # the same payload posted once more, as WeCom does
    unanswered: int = 0       # no 200 after WeCom's retries (the service was down)
    clicks: int = 0           # card buttons clicked
    clicks_answered: int = 0
    confirmed: set[tuple[str, int]] = field(default_factory=set)  # (secretary, issue) answered with 200


def _button(message: dict[str, Any]) -> tuple[str, str] | None:
    """The task id and button key of a template card, if the message is one."""
    card = message.get("template_card")
    if not card or not card.get("button_list"):
        return None
    return str(card["task_id"]), str(card["button_list"][0]["key"])


class Secretaries:
    def __init__(self, simulator: Simulator, users: list[str], rng: random.Random) -> None:
        self.simulator, self.users, self.rng = simulator, users, rng
        self._seen: dict[str, int] = dict.fromkeys(users, 0)
        self._prompted: set[tuple[str, int]] = set()
        self._due: list[tuple[datetime, int, str, int, tuple[str, str] | None]] = []
        self._order = itertools.count()
        self.replies = Replies()

    def read_new_messages(self) -> None:
        """Look at what arrived since the last look; plan a reply to each first prompt of an issue."""
        for user in self.users:
            inbox = self.simulator.world.user_messages.get(user, [])
            fresh, self._seen[user] = inbox[self._seen[user]:], len(inbox)
            for message in fresh:
                match = ISSUE.search(json.dumps(message, ensure_ascii=False))
                if match and (user, int(match.group(1))) not in self._prompted:
                    self._prompted.add((user, int(match.group(1))))
                    self._plan(user, int(match.group(1)), datetime.fromtimestamp(message["time"], BEIJING),
                               _button(message))

    def _plan(self, user: str, issue: int, received: datetime, button: tuple[str, str] | None) -> None:
        roll = self.rng.random()
        if roll < 0.15:
            return  # never replies
        late = roll < 0.30
        delay = timedelta(days=self.rng.uniform(6, 12)) if late else timedelta(hours=self.rng.uniform(0.5, 30))
        twice = self.rng.random() < 0.1
        click = button if button and self.rng.random() < 0.4 else None
        heapq.heappush(self._due, (received + delay, next(self._order), user, issue, click))
        if twice:
            heapq.heappush(self._due, (received + delay + timedelta(hours=2), next(self._order), user, issue, None))

    def next_at(self) -> datetime | None:
        return self._due[0][0] if self._due else None

    def reply_due(self, now: datetime) -> None:
        """Type every reply whose time has come."""
        while self._due and self._due[0][0] <= now:
            _, _, user, issue, click = heapq.heappop(self._due)
            if click is not None:
                self._click(user, issue, *click)
            else:
                self._reply(user, f"第{issue}期已学习", issue, repeat=self.rng.random() < 0.1)

    def _click(self, user: str, issue: int, task_id: str, key: str) -> None:
        result = self.simulator.click_card(user, task_id, key)
        self.replies.clicks += 1
        if result.status == 200:
            self.replies.clicks_answered += 1
            self.replies.confirmed.add((user, issue))

    def _reply(self, user: str, text: str, issue: int, *, repeat: bool) -> None:
        simulator = self.simulator
        msg_id = 7 * 10**15 + self.replies.sent
        xml = text_message_xml(simulator.settings.corp_id, user, text, msg_id, simulator.settings.agent_id,
                               int(simulator.wall_clock()))
        result = simulator.sender.post(xml)
        self.replies.sent += 1
        if result.status == 200:
            self.replies.answered += 1
            self.replies.confirmed.add((user, issue))
        else:
            self.replies.unanswered += 1
        if repeat:  # the very same envelope again: a repeat the service must recognise
            self.replies.repeated += 1
            simulator.sender.post(xml)
