"""Consent: the scopes a person granted to a client, remembered per client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from idp.store.db import autocommit_reader
from idp.store.models import ConsentRow

# Asked at every authorization of a platform that is not first-party: one SELECT built once, in
# autocommit (no ORM session, no BEGIN/ROLLBACK around it).
GRANTED_SCOPE = select(ConsentRow.scope).where(
    ConsentRow.person_id == bindparam("person_id"), ConsentRow.client_id == bindparam("client_id")
)


@dataclass(frozen=True)
class Consent:
    """What a person granted one client."""

    client_id: str
    scopes: tuple[str, ...]
    granted_at: int


class ConsentService:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], float] = time.time) -> None:
        self._sessions = sessions
        self._reader = autocommit_reader(sessions)
        self._clock = clock

    def covers(self, person_id: str, client_id: str, scopes: Iterable[str]) -> bool:
        with self._reader.connect() as conn:
            granted = conn.scalar(GRANTED_SCOPE, {"person_id": person_id, "client_id": client_id})
        return granted is not None and set(scopes) <= set(granted.split())

    def grant(self, person_id: str, client_id: str, scopes: Iterable[str]) -> None:
        for _attempt in range(2):  # a concurrent first grant may win the insert; then update
            try:
                with self._sessions.begin() as session:
                    row = session.scalar(
                        select(ConsentRow).where(
                            ConsentRow.person_id == person_id, ConsentRow.client_id == client_id
                        )
                    )
                    if row is None:
                        row = ConsentRow(person_id=person_id, client_id=client_id, scope="")
                        session.add(row)
                    row.scope = " ".join(sorted(set(row.scope.split()) | set(scopes)))
                    row.granted_at = int(self._clock())
                return
            except IntegrityError:
                continue

    def revoke(self, person_id: str, client_id: str) -> None:
        with self._sessions.begin() as session:
            row = session.scalar(
                select(ConsentRow).where(ConsentRow.person_id == person_id, ConsentRow.client_id == client_id)
            )
            if row is not None:
                session.delete(row)

    def list_for_person(self, person_id: str) -> list[Consent]:
        """Every client the person has consented to (for "my authorised platforms")."""
        with self._sessions() as session:
            rows = session.scalars(
                select(ConsentRow).where(ConsentRow.person_id == person_id).order_by(ConsentRow.client_id)
            ).all()
            return [Consent(r.client_id, tuple(r.scope.split()), r.granted_at) for r in rows]
