"""Token exchange (RFC 8693): may this client trade a person's access token for one meant for another
service, with which scope, until when; recording the exchanged token and auditing every answer.

The protocol layer parses the request, re-resolves the `entity` claim and signs the token; the
decisions that need storage (the subject token, the clients, the person's consent) are made here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from idp.domain.models import AuthContext, Client, TokenRecord
from idp.services.audit import AuditService
from idp.services.clients import ClientService
from idp.services.consent import ConsentService
from idp.services.sso_sessions import SsoSessionService
from idp.services.tokens import TokenService

EVENT = "token.exchanged"


class ExchangeRefused(Exception):
    """A refused exchange, as an OAuth error code (RFC 6749 §5.2, RFC 8693 §2.2.2) and an ASCII
    description; `reason` is the short code written to the audit trail."""

    def __init__(self, error: str, reason: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.reason = reason
        self.description = description


@dataclass(frozen=True)
class Exchange:
    """An exchange that passed every check: what the new access token says, and until when."""

    client_id: str  # the requesting (acting) client
    audience: str  # the service the new token is meant for
    scope: tuple[str, ...]
    context: AuthContext  # the person and how they authenticated, from the subject token
    expires_at: int  # never later than the subject token


class TokenExchangeService:
    def __init__(
        self,
        *,
        clients: ClientService,
        tokens: TokenService,
        consent: ConsentService,
        sso: SsoSessionService,
        audit: AuditService,
        access_ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clients = clients
        self._tokens = tokens
        self._consent = consent
        self._sso = sso
        self._audit = audit
        self._access_ttl = access_ttl
        self._clock = clock

    @staticmethod
    def check_client(client: Client) -> None:
        """Only a confidential client registered with `token_exchange` targets may exchange."""
        if client.is_public or not client.token_exchange:
            raise ExchangeRefused(
                "unauthorized_client", "not_configured", "The client is not allowed to exchange tokens."
            )

    def subject_of(self, client: Client, subject_token: str) -> TokenRecord:
        """The subject token's record: an active access token issued to this client for a person."""
        now = self._clock()
        record = self._tokens.find(subject_token)
        if (
            record is None
            or record.kind != "access"
            or not record.is_active(now)
            or (record.sid is not None and not self._sso.is_active(record.sid))
        ):
            raise ExchangeRefused(
                "invalid_request", "subject_inactive", "The subject token is invalid, expired or revoked."
            )
        if record.client_id != client.client_id:
            raise ExchangeRefused(
                "invalid_request", "subject_other_client", "The subject token was not issued to this client."
            )
        if record.person_id is None:
            raise ExchangeRefused(
                "invalid_request", "subject_not_person", "The subject token was not issued for a person."
            )
        if record.audience is not None:
            raise ExchangeRefused(
                "invalid_request", "subject_exchanged", "An exchanged token cannot be exchanged again."
            )
        return record

    def decide(
        self, client: Client, subject: TokenRecord, audience: str, requested_scope: str | None
    ) -> Exchange:
        """Check the audience, the scope and the person's consent; ExchangeRefused otherwise."""
        target = next((t for t in client.token_exchange if t.audience == audience), None)
        if target is None or self._clients.get(audience) is None:
            raise ExchangeRefused(
                "invalid_target",
                "audience_not_allowed",
                "The client may not exchange tokens for this audience.",
            )
        held = subject.scope.split()
        if requested_scope and requested_scope.strip():
            scope = tuple(dict.fromkeys(requested_scope.split()))
            if not set(scope) <= set(target.scopes):
                raise ExchangeRefused(
                    "invalid_scope", "scope_not_allowed", "The scope is not allowed for this audience."
                )
            if not set(scope) <= set(held):
                raise ExchangeRefused(
                    "invalid_scope", "scope_not_held", "The subject token does not carry this scope."
                )
        else:
            scope = tuple(s for s in target.scopes if s in held)
            if not scope:
                raise ExchangeRefused(
                    "invalid_scope",
                    "no_scope",
                    "The subject token carries no scope allowed for this audience.",
                )
        assert subject.person_id is not None  # checked by subject_of
        if not self._consent.covers(subject.person_id, client.client_id, scope):
            raise ExchangeRefused(
                "invalid_request", "no_consent", "The person has not consented to this purpose."
            )
        now = int(self._clock())
        return Exchange(
            client_id=client.client_id,
            audience=audience,
            scope=scope,
            context=AuthContext(
                person_id=subject.person_id,
                grant_id=subject.grant_id,
                sid=subject.sid,
                auth_time=subject.auth_time,
                acr=subject.acr,
                amr=subject.amr,
                entity_id=subject.entity_id,
            ),
            expires_at=min(now + self._access_ttl, subject.expires_at),
        )

    def issued(self, exchange: Exchange, access_token: str) -> None:
        """Store the exchanged token's digest under the subject token's grant and session; audit it."""
        self._tokens.save(
            client_id=exchange.client_id,
            scope=" ".join(exchange.scope),
            context=exchange.context,
            access_token=access_token,
            access_expires_at=exchange.expires_at,
            audience=exchange.audience,
            actor=exchange.client_id,
        )
        self._audit.record(
            EVENT,
            actor=exchange.client_id,
            subject=exchange.context.person_id,
            client_id=exchange.client_id,
            purpose=" ".join(exchange.scope),
            details={"audience": exchange.audience},
        )

    def refused(
        self,
        client_id: str,
        reason: str,
        *,
        person_id: str | None = None,
        audience: str | None = None,
        scope: str | None = None,
    ) -> None:
        self._audit.record(
            EVENT,
            actor=client_id,
            subject=person_id,
            client_id=client_id,
            purpose=scope[:512] if scope else None,
            outcome="failure",
            details={"reason": reason, "audience": audience[:128] if audience else None},
        )
