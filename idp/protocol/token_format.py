"""Access-token formats: JWT per RFC 9068 (typ at+jwt) or opaque, chosen per client; refresh tokens opaque."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from joserfc import jwt

from idp.domain.models import AuthContext
from idp.protocol.clients import OAuthClient
from idp.services.signing_keys import SigningKeyService

ACCESS_TOKEN_ALG = "RS256"  # the default; IDP_ACCESS_TOKEN_ALG may choose ES256


class TokenFactory:
    """Authlib token generator: `(grant_type, client, user, scope, expires_in, include_refresh_token)`."""

    def __init__(
        self,
        *,
        issuer: str,
        keys: SigningKeyService,
        access_ttl: int,
        alg: str = ACCESS_TOKEN_ALG,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._alg = alg
        self._keys = keys
        self._access_ttl = access_ttl
        self._clock = clock

    def __call__(
        self,
        grant_type: str,
        client: OAuthClient,
        user: AuthContext | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
        *,
        audience: str | None = None,
    ) -> dict[str, Any]:
        """`audience`: the service the token is meant for (client credentials for another service);
        by default the client itself. An opaque token's audience lives in its stored record."""
        ttl = expires_in or self._access_ttl
        if client.client.access_token_format == "opaque":
            access_token = secrets.token_urlsafe(32)
        else:
            access_token = self.encode_jwt_access_token(
                client.client_id, user, scope or "", ttl, audience=audience
            )
        token: dict[str, Any] = {"token_type": "Bearer", "access_token": access_token, "expires_in": ttl}
        if scope:
            token["scope"] = scope
        if include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(32)
        return token

    def encode_jwt_access_token(
        self,
        client_id: str,
        user: AuthContext | None,
        scope: str,
        ttl: int,
        *,
        audience: str | None = None,
        actor: str | None = None,
        expires_at: int | None = None,
    ) -> str:
        """RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti; plus scope, sid, acr, amr, auth_time.

        An exchanged token (RFC 8693) names its `audience` (another service), the acting client in
        `act` (§4.1), and may end sooner than `ttl` (`expires_at`, the subject token's expiry)."""
        now = int(self._clock())
        exp = now + ttl if expires_at is None else min(now + ttl, expires_at)
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": user.person_id if user and user.person_id else client_id,
            "aud": audience or client_id,
            "client_id": client_id,
            "iat": now,
            "exp": exp,
            "jti": secrets.token_urlsafe(16),
        }
        if actor:
            claims["act"] = {"sub": actor}
        if scope:
            claims["scope"] = scope
        if user is not None and user.person_id:
            claims["auth_time"] = user.auth_time
            if user.sid:
                claims["sid"] = user.sid
            if user.acr:
                claims["acr"] = user.acr
            if user.amr:
                claims["amr"] = list(user.amr)
            if user.entity_claim:
                claims["entity"] = user.entity_claim
        key = self._keys.current(self._alg)
        return jwt.encode({"alg": self._alg, "typ": "at+jwt", "kid": key.kid}, claims, key.private_key)


def jwt_times(access_token: str) -> tuple[int, int] | None:
    """`iat` and `exp` of a JWT access token this provider has just signed (read, not verified); None
    for an opaque token. Stored as the token's record, so that the record and the claims agree even
    when the clock ticks between signing and storing."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return None
    if not isinstance(payload, dict):
        return None
    iat, exp = payload.get("iat"), payload.get("exp")
    return (iat, exp) if isinstance(iat, int) and isinstance(exp, int) else None
