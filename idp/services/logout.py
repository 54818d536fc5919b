"""Ending SSO sessions: revoke their tokens and queue back-channel logout tokens in a durable outbox."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable

from joserfc import jws, jwt
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from idp.services.audit import AuditService
from idp.services.clients import ClientService
from idp.services.outbound import OutboundHttp, OutboundRefused
from idp.services.signing_keys import SigningKeyService
from idp.services.sso_sessions import SsoSessionService
from idp.services.tokens import TokenService
from idp.store.models import LogoutOutboxRow

log = logging.getLogger(__name__)

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TTL = 120
MAX_BACKOFF = 3600
LEASE_SECONDS = 60


class LogoutService:
    def __init__(
        self,
        *,
        issuer: str,
        sessions: sessionmaker[Session],
        sso: SsoSessionService,
        tokens: TokenService,
        clients: ClientService,
        keys: SigningKeyService,
        outbound: OutboundHttp,
        max_attempts: int,
        clock: Callable[[], float] = time.time,
        audit: AuditService | None = None,
    ) -> None:
        self._issuer = issuer
        self._sessions = sessions
        self._sso = sso
        self._tokens = tokens
        self._clients = clients
        self._keys = keys
        self._outbound = outbound
        self._max_attempts = max_attempts
        self._clock = clock
        self._audit = audit

    def end_session(self, sid: str, person_id: str) -> int:
        """End the SSO session everywhere; returns how many back-channel logouts were queued.

        Logouts are queued before the session ends, so a crash in between loses none; clients added
        by an authorization that finished meanwhile are queued after the end."""
        before = self._sso.clients(sid)
        queued = self._queue_logouts(sid, person_id, before)
        touched = self._sso.end(sid)
        queued += self._queue_logouts(sid, person_id, touched - before)
        self._tokens.revoke_session(sid)
        log.info("session ended: %d back-channel logout(s) queued", queued)
        if self._audit is not None:
            self._audit.record("logout", actor=person_id, subject=person_id, details={"backchannel": queued})
        return queued

    def _queue_logouts(self, sid: str, person_id: str, client_ids: set[str]) -> int:
        now = int(self._clock())
        rows = []
        for client_id in sorted(client_ids):
            client = self._clients.get(client_id)
            if client is None or not client.backchannel_logout_uri:
                continue
            token = self.build_logout_token(client_id, client.id_token_signed_response_alg, sid, person_id)
            rows.append(
                LogoutOutboxRow(
                    client_id=client_id,
                    uri=client.backchannel_logout_uri,
                    logout_token=token,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        if rows:
            with self._sessions.begin() as session:
                session.add_all(rows)
        return len(rows)

    def build_logout_token(self, client_id: str, alg: str, sid: str, sub: str) -> str:
        """OIDC Back-Channel Logout 1.0 §2.4: iss, aud, iat, exp, jti, events, sid, sub; no nonce."""
        now = int(self._clock())
        key = self._keys.current(alg)
        claims = {
            "iss": self._issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL,
            "jti": secrets.token_urlsafe(16),
            "sub": sub,
            "sid": sid,
            "events": {BACKCHANNEL_EVENT: {}},
        }
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": "logout+jwt"}, claims, key.private_key)

    def deliver_due(self, limit: int = 100) -> tuple[int, int]:
        """Deliver queued logout tokens that are due; returns (delivered, failed)."""
        now = int(self._clock())
        with self._sessions() as session:
            due = session.scalars(
                select(LogoutOutboxRow)
                .where(
                    LogoutOutboxRow.delivered_at.is_(None),
                    LogoutOutboxRow.gave_up_at.is_(None),
                    LogoutOutboxRow.next_attempt_at <= now,
                )
                .order_by(LogoutOutboxRow.next_attempt_at)
                .limit(limit)
            ).all()
        delivered = failed = 0
        for row in due:
            if not self._lease(row, now):
                continue  # another worker took it
            error = self._post(row)
            self._record_attempt(row, error)
            if error is None:
                delivered += 1
            else:
                failed += 1
        return delivered, failed

    def _lease(self, row: LogoutOutboxRow, now: int) -> bool:
        with self._sessions.begin() as session:
            result = session.execute(
                update(LogoutOutboxRow)
                .where(LogoutOutboxRow.id == row.id, LogoutOutboxRow.next_attempt_at == row.next_attempt_at)
                .values(next_attempt_at=now + LEASE_SECONDS)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def _fresh_token(self, row: LogoutOutboxRow) -> str:
        """The queued token, or, once less than half its lifetime is left, the same logout (aud, sub,
        sid) signed again with a new iat/exp/jti: retries go on far longer than LOGOUT_TOKEN_TTL, and a
        platform that was down for a while must not be sent a token it has to reject as expired."""
        signature = jws.extract_compact(row.logout_token.encode())
        claims = json.loads(signature.payload)
        if int(claims.get("exp", 0)) - int(self._clock()) > LOGOUT_TOKEN_TTL // 2:
            return row.logout_token
        client = self._clients.get(row.client_id)
        alg = client.id_token_signed_response_alg if client else str(signature.headers()["alg"])
        return self.build_logout_token(row.client_id, alg, claims["sid"], claims["sub"])

    def _post(self, row: LogoutOutboxRow) -> str | None:
        try:
            logout_token = self._fresh_token(row)
            status = self._outbound.post_form(row.uri, {"logout_token": logout_token})
        except OutboundRefused as exc:
            return f"refused: {exc}"
        except Exception as exc:  # noqa: BLE001 - any network failure is retried
            return f"{type(exc).__name__}: {exc}"[:500]
        # Back-Channel Logout §2.8: 200 (or 204) means the RP logged the session out.
        return None if status in (200, 204) else f"HTTP {status}"

    def _record_attempt(self, row: LogoutOutboxRow, error: str | None) -> None:
        now = int(self._clock())
        attempts = row.attempts + 1
        values: dict[str, object] = {"attempts": attempts, "last_error": error}
        if error is None:
            values["delivered_at"] = now
        elif attempts >= self._max_attempts:
            values["gave_up_at"] = now
            log.error(
                "back-channel logout to %s abandoned after %d attempts: %s", row.client_id, attempts, error
            )
        else:
            values["next_attempt_at"] = now + min(MAX_BACKOFF, 2 ** (attempts - 1))
            log.warning("back-channel logout to %s failed (attempt %d): %s", row.client_id, attempts, error)
        with self._sessions.begin() as session:
            session.execute(update(LogoutOutboxRow).where(LogoutOutboxRow.id == row.id).values(**values))

    def pending(self) -> list[dict[str, object]]:
        with self._sessions() as session:
            rows = session.scalars(
                select(LogoutOutboxRow).where(LogoutOutboxRow.delivered_at.is_(None))
            ).all()
            return [
                {"id": r.id, "client_id": r.client_id, "attempts": r.attempts, "last_error": r.last_error}
                for r in rows
            ]
