"""Answers to a secretary's reply or click on a study card, confirming through the ledger.

Replies are answered from messages/reply_*.j2. When a secretary has several open items the
numbered list offered is remembered (kv ``study-offer:<userid>``) so that "1" or "全部" next
confirms the right ones. A batch of callbacks shares one ``Responder``, which looks up the roster
and each branch's confirmations once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.clock import BEIJING
from bot.config import Branch, Settings
from bot.inbox.replies import Intent, understand
from bot.rules.studies import StudyItem, StudySchedule
from bot.store import Store
from bot.store.confirmations import ConfirmResult, Known, Source, confirm_in
from bot.store.inbox import get_value, put_value
from bot.templates.render import TemplateLibrary

OFFER_TTL = timedelta(days=3)
CARD_KEY_PREFIX = "confirm:"


@dataclass(frozen=True)
class Outcome:
    """A reply's answer and the confirmations it created (for the callback's after-work)."""

    reply: str
    confirmed: tuple[ConfirmResult, ...] = ()
    branch: str | None = None

    @property
    def created(self) -> tuple[ConfirmResult, ...]:
        return tuple(r for r in self.confirmed if r.created)


@dataclass(frozen=True)
class Roster:
    """Each secretary's branch and each branch's items (earliest deadline first), by lookup.

    Settings and schedules are immutable snapshots that a reload replaces, so one roster is built
    per pair and kept while both are the ones in force.
    """

    settings: Settings
    schedule: StudySchedule
    branches: dict[str, Branch]
    items: dict[str, tuple[StudyItem, ...]]

    def branch(self, userid: str) -> Branch | None:
        return self.branches.get(userid.strip().casefold())


_ROSTER: list[Roster] = []


def roster(settings: Settings, schedule: StudySchedule) -> Roster:
    cached = _ROSTER[0] if _ROSTER else None
    if cached is None or cached.settings is not settings or cached.schedule is not schedule:
        cached = _build_roster(settings, schedule)
        _ROSTER[:] = [cached]
    return cached


def _build_roster(settings: Settings, schedule: StudySchedule) -> Roster:
    branches: dict[str, Branch] = {}
    for branch in settings.organisation.branches:
        branches.setdefault(branch.secretary.userid.casefold(), branch)  # the first branch listed wins
    # The runtime has no schedule when schedules/studies.yaml is absent: then nothing is open.
    items = {b.id: tuple(sorted(schedule.for_branch(b.id) if schedule is not None else (),
                                key=lambda i: (i.deadline, i.id)))
             for b in settings.organisation.branches}
    return Roster(settings, schedule, branches, items)


# ---- answering replies ----------------------------------------------------------------------


@dataclass(frozen=True)
class Responder:
    """Answers replies inside one transaction: a batch of callbacks shares one responder, so the
    roster is looked up once and each branch's confirmations are read once.

    After rolling back a savepoint in which it answered, use a new responder (``known`` may hold
    confirmations that no longer exist).
    """

    session: Session
    settings: Settings
    schedule: StudySchedule
    templates: TemplateLibrary
    known: Known = field(default_factory=Known)

    @property
    def roster(self) -> Roster:
        return roster(self.settings, self.schedule)

    def preload(self, userids: Iterable[str]) -> None:
        """Read the confirmations of these users' branches in one query."""
        branches = (self.roster.branch(u) for u in userids)
        self.known.load(self.session, {b.id for b in branches if b is not None})

    def reply(self, now: datetime, userid: str, text: str) -> Outcome:
        turn = self._turn(now, userid)
        if turn is None:
            return Outcome(_not_secretary(self.templates, self.settings))
        intent = understand(text)
        if intent.kind == "confirm":
            return _on_confirm(turn, intent)
        if intent.kind == "choose":
            return _on_choose(turn, intent)
        if intent.kind == "progress":
            return Outcome(_progress(turn), branch=turn.branch.id)
        return Outcome(turn.render("reply_help"), branch=turn.branch.id)

    def click(self, now: datetime, userid: str, event_key: str) -> Outcome:
        turn = self._turn(now, userid)
        if turn is None:
            return Outcome(_not_secretary(self.templates, self.settings))
        item_id = event_key.removeprefix(CARD_KEY_PREFIX) if event_key.startswith(CARD_KEY_PREFIX) else None
        item = next((i for i in turn.visible() if i.id == item_id), None)
        if item is None:
            return Outcome(turn.render("reply_nothing_open"), branch=turn.branch.id)
        return _confirm_items(turn, [item], "button")

    def _turn(self, now: datetime, userid: str) -> _Turn | None:
        branch = self.roster.branch(userid)
        return None if branch is None else _Turn(self, now, userid, branch)


@dataclass(frozen=True)
class _Turn:
    """Everything one answer needs."""

    responder: Responder
    now: datetime
    userid: str
    branch: Branch

    @property
    def session(self) -> Session:
        return self.responder.session

    @property
    def schedule(self) -> StudySchedule:
        return self.responder.schedule

    def render(self, name: str, **context: Any) -> str:
        org = {"name": self.responder.settings.organisation.name}
        return self.responder.templates.render(
            name, {"organisation": org, "branch": _branch(self.branch), **context}).text

    def visible(self) -> list[StudyItem]:
        """Items published for this branch by now, earliest deadline first."""
        return [i for i in self.responder.roster.items.get(self.branch.id, ()) if i.publish_at <= self.now]

    def done(self) -> dict[str, ConfirmResult]:
        known = self.responder.known
        known.load(self.session, [self.branch.id])
        return known.of(self.branch.id)

    def confirm(self, item: StudyItem, source: Source) -> ConfirmResult:
        return confirm_in(self.session, item.id, self.branch.id, self.userid, self.now, source,
                          deadline=item.deadline, known=self.responder.known)


def handle_reply(store: Store, settings: Settings, schedule: StudySchedule, templates: TemplateLibrary,
                 now: datetime, userid: str, text: str) -> str:
    """Answer one text reply (recording any confirmation it makes); returns the reply text."""
    with store.session() as session:
        return respond(session, settings, schedule, templates, now, userid, text).reply


def handle_card_click(store: Store, settings: Settings, schedule: StudySchedule, templates: TemplateLibrary,
                      now: datetime, userid: str, event_key: str) -> str:
    """Answer a click on a study card's button (key ``confirm:<item>``)."""
    with store.session() as session:
        return respond_to_click(session, settings, schedule, templates, now, userid, event_key).reply


def respond(session: Session, settings: Settings, schedule: StudySchedule, templates: TemplateLibrary,
            now: datetime, userid: str, text: str) -> Outcome:
    return Responder(session, settings, schedule, templates).reply(now, userid, text)


def respond_to_click(session: Session, settings: Settings, schedule: StudySchedule, templates: TemplateLibrary,
                     now: datetime, userid: str, event_key: str) -> Outcome:
    return Responder(session, settings, schedule, templates).click(now, userid, event_key)


def _not_secretary(templates: TemplateLibrary, settings: Settings) -> str:
    return templates.render("reply_not_secretary", {"organisation": {"name": settings.organisation.name}}).text


def _on_confirm(turn: _Turn, intent: Intent) -> Outcome:
    visible, done = turn.visible(), turn.done()
    open_items = [i for i in visible if i.id not in done]
    if intent.number is not None:
        return _confirm_number(turn, intent.number, visible, open_items)
    if len(open_items) == 1 or (open_items and intent.everything):
        return _confirm_items(turn, open_items, "reply")
    if open_items:
        return _offer(turn, open_items)
    confirmed = [i for i in visible if i.id in done]
    if confirmed:
        latest = max(confirmed, key=lambda i: i.publish_at)
        return _confirm_items(turn, [latest], "reply")  # nothing new: answered with reply_already
    return Outcome(turn.render("reply_nothing_open"), branch=turn.branch.id)


def _confirm_number(turn: _Turn, number: int, visible: list[StudyItem], open_items: list[StudyItem]) -> Outcome:
    matching = [i for i in open_items if i.number == number] or [i for i in visible if i.number == number]
    if matching:
        return _confirm_items(turn, [max(matching, key=lambda i: i.publish_at)], "reply")
    if open_items:
        return _offer(turn, open_items)
    return Outcome(turn.render("reply_nothing_open"), branch=turn.branch.id)


def _on_choose(turn: _Turn, intent: Intent) -> Outcome:
    offered = _offered(turn)
    if offered is None:
        open_items = [i for i in turn.visible() if i.id not in turn.done()]
        if len(open_items) == 1 and (intent.everything or intent.choices == (1,)):
            return _confirm_items(turn, open_items, "reply")
        if open_items:
            return _offer(turn, open_items)
        return Outcome(turn.render("reply_nothing_open"), branch=turn.branch.id)
    if intent.everything:
        return _confirm_items(turn, offered, "reply")
    if not intent.choices or any(not 1 <= n <= len(offered) for n in intent.choices):
        return Outcome(turn.render("reply_choose", items=[i.context() for i in offered]), branch=turn.branch.id)
    return _confirm_items(turn, _unique(offered[n - 1] for n in intent.choices), "reply")


def _unique(items: Iterable[StudyItem]) -> list[StudyItem]:
    seen: dict[str, StudyItem] = {}
    for item in items:
        seen.setdefault(item.id, item)
    return list(seen.values())


def _offer(turn: _Turn, items: list[StudyItem]) -> Outcome:
    key = _offer_key(turn.userid)
    value = {"items": [i.id for i in items], "at": turn.now.isoformat()}
    put_value(turn.session, key, value, turn.now)
    return Outcome(turn.render("reply_choose", items=[i.context() for i in items]), branch=turn.branch.id)


def _offered(turn: _Turn) -> list[StudyItem] | None:
    offer = get_value(turn.session, _offer_key(turn.userid))
    if not isinstance(offer, dict):
        return None
    if turn.now - datetime.fromisoformat(offer["at"]) > OFFER_TTL:
        return None
    items = [turn.schedule.get(i) for i in offer.get("items", [])]
    return [i for i in items if i is not None] or None


def _offer_key(userid: str) -> str:
    return f"study-offer:{userid.casefold()}"


def _confirm_items(turn: _Turn, items: Sequence[StudyItem], source: Source) -> Outcome:
    results = [turn.confirm(i, source) for i in items]
    new = [(i, r) for i, r in zip(items, results, strict=True) if r.created]
    if new:
        reply = turn.render("reply_confirmed", confirmed_at=turn.now.isoformat(),
                            items=[{**i.context(), "late": r.late} for i, r in new])
    else:
        reply = turn.render("reply_already", items=[{**i.context(), "confirmed_at": r.confirmed_at.isoformat()}
                                                    for i, r in zip(items, results, strict=True)])
    return Outcome(reply, tuple(results), turn.branch.id)


def _progress(turn: _Turn) -> str:
    done = turn.done()
    open_items = [{**i.context(), "overdue": turn.now > i.deadline} for i in turn.visible() if i.id not in done]
    year = turn.now.astimezone(BEIJING).year
    done_count = sum(1 for i in turn.visible() if i.id in done and i.publish_at.astimezone(BEIJING).year == year)
    return turn.render("reply_progress", open_items=open_items, done_count=done_count)


def _branch(branch: Branch) -> dict[str, str]:
    return {"id": branch.id, "name": branch.name}
