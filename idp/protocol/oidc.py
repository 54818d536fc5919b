"""ID tokens (OIDC Core §2, §3.1.3.6): built after the code grant issues tokens, signed per client alg."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from typing import Any

from joserfc import jwt

from idp.domain.models import AuthContext
from idp.services.provider import ProviderServices


def half_hash(value: str) -> str:
    """at_hash: left half of SHA-256 (RS256 and ES256 both use SHA-256), base64url (OIDC Core §3.1.3.6)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


class IdTokenIssuer:
    """Grant extension: adds `id_token` to the token response when `openid` was granted."""

    def __init__(self, services: ProviderServices, ttl: int, clock: Callable[[], float] = time.time) -> None:
        self._services = services
        self._ttl = ttl
        self._clock = clock

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_create_token_response", self.add_id_token)

    def add_id_token(self, grant: Any, response: tuple[int, dict[str, Any], Any]) -> None:
        _status, token, _headers = response
        scope = token.get("scope") or ""
        if "openid" not in scope.split():
            return
        token["id_token"] = self.encode(grant.request.client.client, grant.request.user, scope, token)

    def encode(self, client: Any, ctx: AuthContext, scope: str, token: dict[str, Any]) -> str:
        now = int(self._clock())
        # OIDC Core §5.4: scope claims go to userinfo when an access token is issued; the ID token
        # stays small and free of personal data (it travels in URLs as id_token_hint).
        claims: dict[str, Any] = {"sub": ctx.person_id}
        claims.update(
            {
                "iss": self._services.issuer,
                "aud": client.client_id,
                "azp": client.client_id,
                "iat": now,
                "exp": now + self._ttl,
                "auth_time": ctx.auth_time,
                "at_hash": half_hash(token["access_token"]),
            }
        )
        for name, value in (("nonce", ctx.nonce), ("acr", ctx.acr), ("sid", ctx.sid)):
            if value:
                claims[name] = value
        if ctx.amr:
            claims["amr"] = list(ctx.amr)
        if ctx.entity_claim:
            claims["entity"] = ctx.entity_claim
        alg = client.id_token_signed_response_alg
        key = self._services.keys.current(alg)
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key.private_key)
