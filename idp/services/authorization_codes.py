"""Authorization codes: single use, consumed atomically, reuse revokes what the code issued."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict

from idp.domain.models import AuthContext, CodeGrant
from idp.store.ephemeral import EphemeralStore

USED_MARKER_TTL = 24 * 3600


class CodeReused(Exception):
    """A code came back after it was redeemed (RFC 6749 §4.1.2: revoke what it issued)."""

    def __init__(self, grant_id: str) -> None:
        super().__init__("authorization code reused")
        self.grant_id = grant_id


class AuthorizationCodeService:
    """`code:<digest>` holds the grant until it is taken; `code-grant:<digest>` outlives it, so a
    code that comes back at any moment after the take (even mid-redemption) is known as reused."""

    def __init__(self, store: EphemeralStore, ttl: int) -> None:
        self._store = store
        self._ttl = ttl

    def issue(self, grant: CodeGrant) -> str:
        code = secrets.token_urlsafe(32)
        digest = _digest(code)
        self._store.set(f"code-grant:{digest}", grant.context.grant_id, USED_MARKER_TTL)
        self._store.set(f"code:{digest}", json.dumps(asdict(grant), separators=(",", ":")), self._ttl)
        return code

    def redeem(self, code: str) -> CodeGrant:
        """Atomically take the code. Raises CodeReused if it was already taken, KeyError if unknown."""
        digest = _digest(code)
        raw = self._store.take(f"code:{digest}")
        if raw is None:
            grant_id = self._store.get(f"code-grant:{digest}")
            if grant_id:
                self.mark_grant_revoked(grant_id)
                raise CodeReused(grant_id)
            raise KeyError("unknown or expired code")
        return _decode(raw)

    def mark_grant_revoked(self, grant_id: str) -> None:
        """Remember a revoked grant, so tokens still being saved by the first redemption are revoked too."""
        self._store.set(f"grant-revoked:{grant_id}", "1", USED_MARKER_TTL)

    def is_grant_revoked(self, grant_id: str) -> bool:
        return self._store.get(f"grant-revoked:{grant_id}") is not None


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


def _decode(raw: str) -> CodeGrant:
    data = json.loads(raw)
    ctx = data.pop("context")
    ctx["amr"] = tuple(ctx["amr"])
    ctx["claims"] = tuple(tuple(c) for c in ctx["claims"])
    return CodeGrant(context=AuthContext(**ctx), **data)
