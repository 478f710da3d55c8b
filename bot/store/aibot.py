"""The AI bot's tables: learnt conversations (and the branch each is bound to) and pushed cards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.store.db import Store
from bot.store.models import AibotCard, AibotChat

CHATS = AibotChat.__table__
CARDS = AibotCard.__table__


@dataclass(frozen=True)
class LearntChat:
    chatid: str
    chat_type: str
    first_user: str
    first_seen_at: datetime
    branch: str | None
    bound_by: str | None
    bound_at: datetime | None


def _insert(dialect: str):  # noqa: ANN202 - the dialect's insert construct
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def learn_chat(session: Session, chatid: str, chat_type: str, userid: str, now: datetime) -> None:
    """Remember a conversation the first time the bot hears in it; later messages change nothing."""
    insert = _insert(session.get_bind().dialect.name)
    statement = insert(CHATS).on_conflict_do_nothing(index_elements=["chatid"]).values(
        chatid=chatid, chat_type=chat_type, first_user=userid, first_seen_at=now)
    session.execute(statement)


def learnt_chats(store: Store) -> list[LearntChat]:
    """Every learnt conversation, groups first, earliest first."""
    query = select(*(CHATS.c[f] for f in LearntChat.__dataclass_fields__)).order_by(
        CHATS.c.chat_type, CHATS.c.first_seen_at, CHATS.c.chatid)
    with store.session(readonly=True) as session:
        return [LearntChat(*row) for row in session.execute(query).all()]


def bind_chat(store: Store, chatid: str, branch: str | None, actor: str, now: datetime) -> str | None:
    """Bind a learnt chat to a branch (None: unbind); returns the branch it was bound to before.

    Raises LookupError for a chat the bot has not learnt."""
    with store.session() as session:
        before = session.execute(select(CHATS.c.branch).where(CHATS.c.chatid == chatid)).first()
        if before is None:
            raise LookupError(chatid)
        session.execute(update(CHATS).where(CHATS.c.chatid == chatid)
                        .values(branch=branch, bound_by=actor, bound_at=now))
        return before[0]


def bound_chats(store: Store) -> dict[str, str]:
    """chatid → branch, for the group chats an administrator bound to a branch."""
    query = select(CHATS.c.chatid, CHATS.c.branch).where(CHATS.c.branch.is_not(None))
    with store.session(readonly=True) as session:
        return {chatid: branch for chatid, branch in session.execute(query).all()}


def claim_card(store: Store, chatid: str, item: str, task_id: str, now: datetime) -> bool:
    """Record a card about to be pushed; False when this chat already had one for this item.

    Recorded before the push, so a crash between the two loses a card rather than doubling it."""
    insert = _insert(store.dialect)
    statement = (insert(CARDS).on_conflict_do_nothing(index_elements=["chatid", "item"])
                 .values(chatid=chatid, item=item, task_id=task_id, sent_at=now)
                 .execution_options(preserve_rowcount=True))
    with store.session() as session:
        return bool(session.execute(statement).rowcount)


def release_card(store: Store, task_id: str) -> None:
    """WeCom refused the push: the item may be pushed to this chat again later."""
    with store.session() as session:
        session.execute(delete(CARDS).where(CARDS.c.task_id == task_id))


def record_card_errcode(store: Store, task_id: str, errcode: int | None) -> None:
    with store.session() as session:
        session.execute(update(CARDS).where(CARDS.c.task_id == task_id).values(errcode=errcode))


def card_items(store: Store) -> set[tuple[str, str]]:
    """(chatid, item) of every card pushed so far."""
    with store.session(readonly=True) as session:
        return {(chatid, item) for chatid, item in session.execute(select(CARDS.c.chatid, CARDS.c.item)).all()}
