"""private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core §9) with `jti` replay refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ASSERTION_ALGS = ["RS256", "ES256"]
MAX_ASSERTION_LIFETIME = 300


class PrivateKeyJwt(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, issuer: str, token_endpoint: str, remember_once: Callable[[str, int], bool]) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self._audiences = [issuer, token_endpoint]
        self._remember_once = remember_once

    def get_audiences(self) -> list[str]:
        return self._audiences

    def resolve_client_public_key(self, client: Any) -> KeySet:
        # Only a client registered for private_key_jwt has keys; any other is refused here, before
        # joserfc is asked to import an empty or unusable key set (which raises, not InvalidClientError).
        jwks = client.client.jwks
        if client.client.token_endpoint_auth_method != self.CLIENT_AUTH_METHOD or not jwks:
            raise InvalidClientError(description="The client cannot authenticate with a client assertion.")
        try:
            return KeySet.import_key_set(jwks)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidClientError(description="The client's registered keys are unusable.") from exc

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGS)
        except (JoseError, ValueError) as exc:
            raise InvalidClientError(description="The client assertion is invalid.") from exc
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims: dict[str, Any], jti: Any) -> bool:
        """Remember each (client, jti) until the assertion expires; a second use is refused."""
        if not isinstance(jti, str) or not 0 < len(jti) <= 200:
            return False
        exp = claims.get("exp")
        ttl = MAX_ASSERTION_LIFETIME + 60
        if isinstance(exp, int):
            remaining = exp - int(time.time()) + 60
            if remaining > MAX_ASSERTION_LIFETIME + 60:
                return False  # refuse long-lived assertions: they could not be replay-checked
            ttl = max(1, remaining)
        return self._remember_once(f"jti:{claims['sub']}:{jti}", ttl)
