"""The audit trail: append-only events, hash-chained, written off the request path by one thread.

`record` only queues the event in memory and never raises; a background writer chains queued events
into the database within about a second. A crash loses at most the queued events of that process."""

from __future__ import annotations

import atexit
import csv
import hmac
import io
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from idp.store.audit import (
    GENESIS_HASH,
    HASHED_FIELDS,
    PendingEvent,
    append_events,
    data_access_of,
    event_hash,
    iterate_chain,
    row_fields,
)
from idp.store.models import AuditEventRow

log = logging.getLogger(__name__)

EXPORT_COLUMNS = (*HASHED_FIELDS, "hash")  # every field of an event, as the chain stores it
DATA_ACCESS_EVENTS = ("data.read", "token.issued", "token.exchanged")
MAX_BATCH = 500
MAX_DETAILS = 2000
IDLE_SECONDS = 0.5  # the writer thread ends (releasing the engine) when idle; the next event restarts it
# Once an event waits, the writer waits this long for others to join its batch: under load one
# transaction carries many events (each costs a chain-lock round trip), at a bounded delay.
LINGER_SECONDS = 0.02


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    first_bad_id: int | None
    reason: str
    count: int  # events checked
    head: str  # hash of the last intact event: record it elsewhere to detect a cut-off tail


@dataclass(frozen=True)
class DataAccess:
    """One read of a person's data (or a token that allows it), for the person's own page."""

    at: int  # epoch milliseconds
    event: str
    client_id: str | None
    client_name: str | None
    purpose: str


@dataclass(frozen=True)
class AuditFilter:
    """What an auditor narrows the log to; every field optional. Times in epoch milliseconds."""

    event: str | None = None  # exact, or a prefix ending in "." (e.g. "admin.")
    actor: str | None = None
    subject: str | None = None
    client_id: str | None = None
    outcome: str | None = None
    since: int | None = None
    until: int | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.event:
            if self.event.endswith("."):
                query = query.where(AuditEventRow.event.startswith(self.event, autoescape=True))
            else:
                query = query.where(AuditEventRow.event == self.event)
        for column, value in (
            (AuditEventRow.actor, self.actor),
            (AuditEventRow.subject, self.subject),
            (AuditEventRow.client_id, self.client_id),
            (AuditEventRow.outcome, self.outcome),
        ):
            if value:
                query = query.where(column == value)
        if self.since is not None:
            query = query.where(AuditEventRow.at >= self.since)
        if self.until is not None:
            query = query.where(AuditEventRow.at < self.until)
        return query


class AuditService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], float] = time.time,
        *,
        pseudonym_key: bytes = b"",
        max_queue: int = 100_000,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._pseudonym_key = pseudonym_key
        self._max_queue = max_queue
        self._queue: deque[PendingEvent] = deque()
        self._unwritten = 0  # queued or being written
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.dropped = 0

    # -- recording (the hot path: memory only, never raises) ---------------------------------------

    def record(
        self,
        event: str,
        *,
        actor: str,
        subject: str | None = None,
        client_id: str | None = None,
        purpose: str | None = None,
        address: str | None = None,
        outcome: str = "success",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Queue one event for the chain. Never raises: a failing audit must not fail a login."""
        try:
            pending = PendingEvent(
                at=int(self._clock() * 1000),
                event=event[:40],
                actor=(actor or "anonymous")[:128],
                subject=subject[:32] if subject else None,
                client_id=client_id[:128] if client_id else None,
                purpose=purpose or None,
                address=address[:64] if address else None,
                outcome=outcome[:16],
                details=_canonical(details) if details else None,
            )
            with self._cond:
                if self._closed or len(self._queue) >= self._max_queue:
                    self.dropped += 1
                    log.error("audit event %s dropped (queue full or closed)", event)
                    return
                self._queue.append(pending)
                self._unwritten += 1
                self._cond.notify_all()
                if self._worker is None:
                    self._worker = threading.Thread(target=self._write_loop, name="audit-writer", daemon=True)
                    self._worker.start()
                    atexit.register(self._flush_at_exit)
        except Exception:  # noqa: BLE001 - the caller's request goes on; the failure is logged
            log.exception("audit event %s not recorded", event)

    def pseudonym(self, value: str) -> str:
        """A keyed digest of an identifier (username, ID number, mobile): links attempts, reveals nothing."""
        digest = hmac.new(self._pseudonym_key, value.strip().casefold().encode("utf-8", "replace"), "sha256")
        return digest.hexdigest()[:20]

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event recorded so far is in the database; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._unwritten:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Flush, then stop the writer; events still unwritten after `timeout` are lost (and logged)."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _flush_at_exit(self) -> None:
        if not self.flush(5.0):
            log.error("audit: %d event(s) not written at exit", self._unwritten)

    # -- the writer thread -------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._write(batch)
            with self._cond:
                self._unwritten -= len(batch)
                self._cond.notify_all()

    def _next_batch(self) -> list[PendingEvent] | None:
        with self._cond:
            idle_until = time.monotonic() + IDLE_SECONDS
            while not self._queue:
                remaining = idle_until - time.monotonic()
                if self._closed or remaining <= 0:
                    self._worker = None
                    atexit.unregister(self._flush_at_exit)
                    return None
                self._cond.wait(remaining)
            linger = len(self._queue) < MAX_BATCH and not self._closed
        if linger:  # a plain sleep: waking at every event that joins would cost more than it saves
            time.sleep(LINGER_SECONDS)
        with self._cond:
            return [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]

    def _write(self, batch: list[PendingEvent]) -> None:
        """Chain the batch, retrying with backoff while the database is unavailable."""
        attempt = 0
        while True:
            try:
                append_events(self._sessions, batch)
                return
            except Exception:  # noqa: BLE001 - keep the events, retry
                attempt += 1
                log.exception("audit write failed (attempt %d, %d event(s) waiting)", attempt, len(batch))
            with self._cond:
                if self._closed:
                    log.error("audit: writer closed, %d event(s) lost", len(batch))
                    return
                self._cond.wait(min(0.1 * 2**attempt, 5.0))

    # -- reading -----------------------------------------------------------------------------------

    def verify(self) -> VerifyResult:
        """Recompute the chain; report the first changed, inserted or deleted event."""
        prev_id, prev_hash, before_prev = 0, GENESIS_HASH, ""
        count = 0
        for row in iterate_chain(self._sessions):
            fields = row_fields(row)
            intact = event_hash(fields) == row.hash
            if row.id != prev_id + 1:
                return _bad(
                    prev_id + 1, f"deleted: event {prev_id + 1} is missing from the chain", count, prev_hash
                )
            if row.prev_hash != prev_hash:
                if before_prev and row.prev_hash == before_prev:
                    return _bad(
                        prev_id, f"inserted: event {prev_id} was not in the chain", count - 1, before_prev
                    )
                if intact and prev_id:
                    reason = f"changed: event {prev_id} differs from the hash event {row.id} recorded"
                    return _bad(prev_id, reason, count - 1, before_prev)
                return _bad(
                    row.id, f"changed: event {row.id} does not follow the event before it", count, prev_hash
                )
            if not intact:
                return _bad(row.id, f"changed: event {row.id} does not match its hash", count, prev_hash)
            before_prev, prev_hash, prev_id = prev_hash, row.hash, row.id
            count += 1
        return VerifyResult(True, None, "intact", count, prev_hash)

    def events_for_subject(self, person_id: str, limit: int = 100) -> list[DataAccess]:
        """Which platform read (or received a token for) which of a person's data, newest first."""
        return [
            DataAccess(
                at=row.at,
                event=row.event,
                client_id=row.client_id,
                client_name=name,
                purpose=row.purpose or "",
            )
            for row, name in data_access_of(self._sessions, person_id, DATA_ACCESS_EVENTS, limit)
        ]

    def search(self, where: AuditFilter, offset: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        """One page of matching events, newest first, each as the chain stores it."""
        offset, limit = max(0, offset), min(max(1, limit), 500)
        query = (
            where.apply(select(AuditEventRow)).order_by(AuditEventRow.id.desc()).offset(offset).limit(limit)
        )
        with self._sessions() as session:
            return [row_fields(row) for row in session.scalars(query)]

    def export(
        self,
        fmt: str = "jsonl",
        since: int | None = None,
        until: int | None = None,
        event: str | None = None,
        *,
        where: AuditFilter | None = None,
    ) -> Iterator[str]:
        """Events in chain order as lines (JSON Lines, or CSV with a header); `since`/`until` in epoch ms."""
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"unknown export format {fmt!r}")
        where = where or AuditFilter(event=event, since=since, until=until)
        query = where.apply(select(AuditEventRow))
        if fmt == "csv":
            yield _csv_line(EXPORT_COLUMNS)
        for row in iterate_chain(self._sessions, query):
            fields = row_fields(row)
            if fmt == "csv":
                yield _csv_line(tuple("" if fields[c] is None else str(fields[c]) for c in EXPORT_COLUMNS))
            else:
                yield json.dumps(fields, sort_keys=True, ensure_ascii=False)


def _bad(event_id: int, reason: str, count: int, head: str) -> VerifyResult:
    return VerifyResult(False, event_id, reason, max(count, 0), head)


def _canonical(details: dict[str, Any]) -> str:
    text = json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if len(text) <= MAX_DETAILS else json.dumps({"truncated": True})


def _csv_line(values: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()
