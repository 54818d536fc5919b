"""Notifiers: how account messages (registration and password-reset links, notices) reach a person.

A deployment plugs in its own (an SMTP relay, an SMS gateway) by implementing `Notifier`. The two here
are for development: `DatabaseNotifier` records every message in the `notifications` table, where the
developer reads it with `python -m idp notifications`; `LogNotifier` writes it to the log. Both keep
links that grant access to an account: never use them in production.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idp.store.models import NotificationRow

log = logging.getLogger(__name__)

MAX_RECIPIENT = 254
MAX_SUBJECT = 200


class Notifier(Protocol):
    def send(self, recipient: str, subject: str, body: str) -> None:
        """Deliver a message to an email address or a mobile number; raise if it cannot be handed over."""


@dataclass(frozen=True)
class Notification:
    """A message recorded by the development notifier."""

    id: int
    recipient: str
    subject: str
    body: str
    created_at: int


class DatabaseNotifier:
    """Development: every message becomes a row the developer can read (`python -m idp notifications`)."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], float] = time.time) -> None:
        self._sessions = sessions
        self._clock = clock

    def send(self, recipient: str, subject: str, body: str) -> None:
        row = NotificationRow(
            recipient=recipient[:MAX_RECIPIENT],
            subject=subject[:MAX_SUBJECT],
            body=body,
            created_at=int(self._clock()),
        )
        with self._sessions.begin() as session:
            session.add(row)

    def recent(self, recipient: str | None = None, limit: int = 20) -> list[Notification]:
        """The newest messages first, optionally for one recipient."""
        query = select(NotificationRow).order_by(NotificationRow.id.desc()).limit(limit)
        if recipient:
            query = query.where(NotificationRow.recipient == recipient)
        with self._sessions() as session:
            return [
                Notification(
                    id=r.id, recipient=r.recipient, subject=r.subject, body=r.body, created_at=r.created_at
                )
                for r in session.scalars(query)
            ]


class LogNotifier:
    """Development: messages go to the log (links included), nothing else."""

    def send(self, recipient: str, subject: str, body: str) -> None:
        log.info("notification to %s: %s\n%s", recipient, subject, body)
