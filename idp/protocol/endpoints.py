"""Revocation (RFC 7009) and introspection (RFC 7662) endpoints over the token service."""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from idp.domain.entities import CannotActForEntity
from idp.domain.models import TokenRecord
from idp.services.entities import EntityError
from idp.services.provider import ProviderServices

ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


class PresentedToken:
    """A token value with its record, as Authlib's endpoints expect."""

    def __init__(self, value: str, record: TokenRecord) -> None:
        self.value = value
        self.record = record

    def check_client(self, client: Any) -> bool:
        return bool(self.record.client_id == client.client_id)

    def is_expired(self) -> bool:
        return self.record.expires_at <= time.time()

    def is_revoked(self) -> bool:
        return self.record.revoked_at is not None or (
            self.record.kind == "refresh" and self.record.rotated_at is not None
        )


def check_token_param(request: Any) -> None:
    """`token` is required; `token_type_hint` is only a hint: an unknown value is ignored and every
    token type searched (RFC 7009 §2.1, RFC 7662 §2.1), where Authlib answers 401."""
    if not request.form.get("token"):
        raise InvalidRequestError("Missing 'token' parameter.")


class TokenLookup:
    """What both endpoints share: the `token` parameter and lookup by digest."""

    services: ProviderServices

    def check_params(self, request: Any, client: Any) -> None:
        check_token_param(request)

    def query_token(self, token_string: str, token_type_hint: str | None) -> PresentedToken | None:
        record = self.services.tokens.find(token_string)
        return PresentedToken(token_string, record) if record is not None else None


class TokenRevocation(TokenLookup, RevocationEndpoint):
    CLIENT_AUTH_METHODS = ENDPOINT_AUTH_METHODS

    def authenticate_token(self, request: Any, client: Any) -> PresentedToken | None:
        # RFC 7009 §2.2: a token of another client is answered like an unknown one (no oracle).
        token: PresentedToken | None = None
        self.check_params(request, client)
        found = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if found is not None and found.check_client(client):
            token = found
        return token

    def revoke_token(self, token: PresentedToken, request: Any) -> None:
        self.services.tokens.revoke(token.value, token.record.client_id)


class TokenIntrospection(TokenLookup, IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ENDPOINT_AUTH_METHODS

    def check_permission(self, token: PresentedToken, client: Any, request: Any) -> bool:
        # A client learns nothing about another client's tokens: they read as inactive. An exchanged
        # token (RFC 8693) or a client-credentials token for another service is also the business
        # of the service it is meant for, its audience.
        return token.check_client(client) or token.record.audience == client.client_id

    def create_introspection_payload(self, token: PresentedToken | None) -> dict[str, Any]:
        if token is None or token.is_expired() or token.is_revoked():
            return {"active": False}
        record = token.record
        if record.sid and not self.services.sso.is_active(record.sid):
            return {"active": False}
        payload = self.introspect_token(token)
        if record.entity_id and record.person_id:
            try:
                payload["entity"] = self.services.entities.acting_as(
                    record.person_id, record.entity_id
                ).to_claim()
            except (CannotActForEntity, EntityError):
                return {"active": False}  # the authority to act for the entity has ended
        if record.person_id:  # a read of the person's data (who, for what), by the token's own client
            self.services.audit.record(
                "data.read",
                actor=record.client_id,
                subject=record.person_id,
                client_id=record.client_id,
                purpose=record.scope,
                details={"endpoint": "introspection"},
            )
        return payload

    def introspect_token(self, token: PresentedToken) -> dict[str, Any]:
        record = token.record
        payload: dict[str, Any] = {
            "active": True,
            "iss": self.services.issuer,
            "client_id": record.client_id,
            "token_type": "Bearer" if record.kind == "access" else "refresh_token",
            "scope": record.scope,
            "sub": record.person_id or record.client_id,
            "aud": record.audience or record.client_id,
            "iat": record.issued_at,
            "exp": record.expires_at,
        }
        if record.actor:
            payload["act"] = {"sub": record.actor}  # RFC 8693 §4.1, as in the exchanged JWT
        for name, value in (("sid", record.sid), ("acr", record.acr), ("auth_time", record.auth_time)):
            if value:
                payload[name] = value
        return payload
