"""The audit chain in the database: append under a cross-process lock, read back in chain order."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Select, select, text
from sqlalchemy.orm import Session, sessionmaker

from idp.store.models import AuditEventRow, ClientRow

GENESIS_HASH = "0" * 64
# pg_advisory_xact_lock key of the chain's single writer: any constant agreed by every node
CHAIN_LOCK_KEY = 0x1D9A0D17
HASHED_FIELDS = (
    "id",
    "at",
    "event",
    "actor",
    "subject",
    "client_id",
    "purpose",
    "address",
    "outcome",
    "details",
    "prev_hash",
)


@dataclass(frozen=True)
class PendingEvent:
    """An event waiting to be chained: every column but id, prev_hash and hash."""

    at: int
    event: str
    actor: str
    subject: str | None
    client_id: str | None
    purpose: str | None
    address: str | None
    outcome: str
    details: str | None  # canonical JSON


def event_hash(fields: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON (sorted keys, no spaces, UTF-8) of the hashed fields."""
    canonical = json.dumps(
        {name: fields[name] for name in HASHED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def row_fields(row: AuditEventRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in (*HASHED_FIELDS, "hash")}


def append_events(sessions: sessionmaker[Session], events: Sequence[PendingEvent]) -> None:
    """Chain `events` after the last stored one in one transaction, holding the chain lock: on
    PostgreSQL a transaction-scoped advisory lock, on SQLite the database write lock (BEGIN IMMEDIATE)."""
    engine: Engine = sessions.kw["bind"]
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                _append(conn, events)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
        return
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
        _append(conn, events)


def _append(conn: Connection, events: Sequence[PendingEvent]) -> None:
    last = conn.execute(
        select(AuditEventRow.id, AuditEventRow.hash).order_by(AuditEventRow.id.desc()).limit(1)
    ).first()
    last_id, prev_hash = (last[0], last[1]) if last is not None else (0, GENESIS_HASH)
    rows = []
    for offset, pending in enumerate(events, start=1):
        fields: dict[str, Any] = {"id": last_id + offset, **pending.__dict__, "prev_hash": prev_hash}
        fields["hash"] = prev_hash = event_hash(fields)
        rows.append(fields)
    if rows:
        conn.execute(AuditEventRow.__table__.insert(), rows)  # type: ignore[attr-defined]


def iterate_chain(
    sessions: sessionmaker[Session], query: Select[Any] | None = None, batch: int = 1000
) -> Iterator[AuditEventRow]:
    """Rows in chain order, read in pages by id so a long chain never sits in memory at once."""
    base = query if query is not None else select(AuditEventRow)
    after = 0
    while True:
        with sessions() as session:
            page = session.scalars(
                base.where(AuditEventRow.id > after).order_by(AuditEventRow.id).limit(batch)
            ).all()
        if not page:
            return
        yield from page
        after = page[-1].id


def data_access_of(
    sessions: sessionmaker[Session], person_id: str, events: Sequence[str], limit: int
) -> list[Any]:
    """The newest events of `events` kinds about one person, with the client's display name."""
    with sessions() as session:
        return list(
            session.execute(
                select(AuditEventRow, ClientRow.client_name)
                .outerjoin(ClientRow, ClientRow.client_id == AuditEventRow.client_id)
                .where(
                    AuditEventRow.subject == person_id,
                    AuditEventRow.event.in_(events),
                    AuditEventRow.outcome == "success",  # a refused exchange read nothing
                )
                .order_by(AuditEventRow.at.desc(), AuditEventRow.id.desc())
                .limit(limit)
            ).all()
        )
