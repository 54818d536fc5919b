"""PKCE (RFC 7636) with S256 only, required for every client, public or confidential."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError

CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
CODE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def check_code_challenge(challenge: str | None, method: str | None) -> str | None:
    """Problem with the authorization request's PKCE parameters, or None if they are acceptable."""
    if not challenge:
        return "code_challenge is required (PKCE with S256)"
    if method != "S256":
        return "code_challenge_method must be S256"
    if not CODE_CHALLENGE.match(challenge):
        return "code_challenge is malformed"
    return None


class RequireS256:
    """Grant extension: verifies code_verifier at the token endpoint (RFC 7636 §4.6)."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_token_request", self.validate_code_verifier)

    def validate_code_verifier(self, grant: Any, *args: Any) -> None:
        verifier = grant.request.form.get("code_verifier")
        if not verifier:
            raise InvalidRequestError("Missing 'code_verifier'")
        if not CODE_VERIFIER.match(verifier):
            raise InvalidRequestError("Invalid 'code_verifier'")
        challenge = grant.request.authorization_code.code_challenge
        if not hmac.compare_digest(s256(verifier), challenge):
            raise InvalidGrantError("PKCE verification failed")
