"""Single-sign-on sessions in the ephemeral store: one per browser, shared by every client."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import replace

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
        """Start a session after a login, always under a new handle (no session fixation).

        A new login of the same person continues their session: same sid, so the platforms it
        touched still get the back-channel logout when it ends (the web layer ends another person's
        session before calling this)."""
        previous = self.find(previous_handle)
        if previous_handle:
            self._store.delete(f"sso:{_digest(previous_handle)}")
        now = int(self._clock())
        same_person = previous is not None and previous.person_id == person_id
        session = SsoSession(
            sid=previous.sid if previous is not None and same_person else secrets.token_urlsafe(16),
            person_id=person_id,
            auth_time=now,
            acr=acr,
            amr=amr,
            created_at=now,
            acting=previous.acting if previous is not None and same_person else None,
        )
        handle = secrets.token_urlsafe(32)
        self._store.set(f"sso:{_digest(handle)}", _encode(session), self._ttl)
        self._store.set(f"sid:{session.sid}", _digest(handle), self._ttl)
        self._store.sadd(f"person-sessions:{person_id}", session.sid, self._ttl)
        if same_person:
            self._store.touch(f"sso-clients:{session.sid}", self._ttl)
        return handle, session

    def find(self, handle: str | None) -> SsoSession | None:
        if not handle or len(handle) > 100:
            return None
        raw = self._store.get(f"sso:{_digest(handle)}")
        return _decode(raw) if raw else None

    def raise_assurance(self, handle: str | None, acr: str, added_amr: tuple[str, ...]) -> SsoSession | None:
        """After a second factor: the session (same sid, same cookie) gets the new acr and the added
        amr values; None if the session is gone.

        auth_time becomes now: the second factor is an active authentication (OIDC Core §2 auth_time),
        and the session's level now rests on it. The update is made in place and then checked against
        a concurrent `end`, so a logout racing a step-up never brings the session back."""
        session = self.find(handle)
        if session is None or handle is None:
            return None
        amr = tuple(dict.fromkeys(session.amr + added_amr))
        return self._rewrite(
            handle, session, replace(session, acr=acr, amr=amr, auth_time=int(self._clock()))
        )

    def choose_acting(self, handle: str | None, acting: str) -> SsoSession | None:
        """Remember for whom the person acts in this session: "self" or a legal entity's id; it holds
        for every platform until the person switches (prompt=select_account)."""
        session = self.find(handle)
        if session is None or handle is None:
            return None
        return self._rewrite(handle, session, replace(session, acting=acting))

    def _rewrite(self, handle: str, session: SsoSession, changed: SsoSession) -> SsoSession | None:
        """Store a changed session in place, then check it against a concurrent `end`, so a logout
        racing the change never brings the session back."""
        key = f"sso:{_digest(handle)}"
        self._store.set(key, _encode(changed), self._remaining(session))
        if not self.is_active(session.sid):  # ended meanwhile: `end` took the sid before our write
            self._store.delete(key)
            return None
        return changed

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


def _encode(session: SsoSession) -> str:
    payload = {
        "sid": session.sid,
        "p": session.person_id,
        "at": session.auth_time,
        "acr": session.acr,
        "amr": list(session.amr),
        "c": session.created_at,
        "e": session.acting,
    }
    return json.dumps(payload, separators=(",", ":"))


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
            acting=data.get("e"),
        )
    except (ValueError, KeyError, TypeError):
        return None
