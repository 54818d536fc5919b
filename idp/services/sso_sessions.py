"""Single-sign-on sessions in the ephemeral store: one per browser, shared by every client."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable

from idp.domain.models import SsoSession
from idp.store.ephemeral import EphemeralStore


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SsoSessionService:
    """The cookie holds an opaque random handle; the store keys it only by its SHA-256 digest."""

    def __init__(self, store: EphemeralStore, ttl: int, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock

    def start(
        self, person_id: str, acr: str, amr: tuple[str, ...], previous_handle: str | None
    ) -> tuple[str, SsoSession]:
        """Start a session after a login; the previous handle (if any) is dropped (new id at login)."""
        if previous_handle:
            self._store.delete(f"sso:{_digest(previous_handle)}")
        now = int(self._clock())
        session = SsoSession(
            sid=secrets.token_urlsafe(16),
            person_id=person_id,
            auth_time=now,
            acr=acr,
            amr=amr,
            created_at=now,
        )
        handle = secrets.token_urlsafe(32)
        payload = json.dumps(
            {"sid": session.sid, "p": person_id, "at": now, "acr": acr, "amr": list(amr), "c": now},
            separators=(",", ":"),
        )
        self._store.set(f"sso:{_digest(handle)}", payload, self._ttl)
        self._store.set(f"sid:{session.sid}", _digest(handle), self._ttl)
        self._store.sadd(f"person-sessions:{person_id}", session.sid, self._ttl)
        return handle, session

    def find(self, handle: str | None) -> SsoSession | None:
        if not handle or len(handle) > 100:
            return None
        raw = self._store.get(f"sso:{_digest(handle)}")
        return _decode(raw) if raw else None

    def record_client(self, session: SsoSession, client_id: str) -> None:
        """Remember that this session signed in to client_id (for back-channel logout)."""
        self._store.sadd(f"sso-clients:{session.sid}", client_id, self._remaining(session))

    def clients(self, sid: str) -> set[str]:
        return self._store.smembers(f"sso-clients:{sid}")

    def end(self, sid: str) -> set[str]:
        """End the session with this sid; returns the clients it touched.

        The session is made unfindable first and its clients are read last, so a client recorded by
        an authorization that was finishing meanwhile is still in the set we return."""
        digest = self._store.take(f"sid:{sid}")
        if digest:
            self._store.delete(f"sso:{digest}")
        clients = self.clients(sid)
        self._store.delete(f"sso-clients:{sid}")
        return clients

    def sessions_of(self, person_id: str) -> list[SsoSession]:
        """The person's live sessions (for "my sessions" and admins)."""
        found = []
        for sid in sorted(self._store.smembers(f"person-sessions:{person_id}")):
            digest = self._store.get(f"sid:{sid}")
            raw = self._store.get(f"sso:{digest}") if digest else None
            session = _decode(raw) if raw else None
            if session is not None and session.person_id == person_id:
                found.append(session)
        return found

    def is_active(self, sid: str) -> bool:
        return self._store.get(f"sid:{sid}") is not None

    def _remaining(self, session: SsoSession) -> int:
        return max(1, session.created_at + self._ttl - int(self._clock()))


def _decode(raw: str) -> SsoSession | None:
    try:
        data = json.loads(raw)
        return SsoSession(
            sid=data["sid"],
            person_id=data["p"],
            auth_time=int(data["at"]),
            acr=data["acr"],
            amr=tuple(data["amr"]),
            created_at=int(data["c"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
