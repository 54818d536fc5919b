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
    def __init__(self, store: EphemeralStore, ttl: int) -> None:
        self._store = store
        self._ttl = ttl

    def issue(self, grant: CodeGrant) -> str:
        code = secrets.token_urlsafe(32)
        self._store.set(f"code:{_digest(code)}", json.dumps(asdict(grant), separators=(",", ":")), self._ttl)
        return code

    def redeem(self, code: str) -> CodeGrant:
        """Atomically take the code. Raises CodeReused if it was already redeemed, KeyError if unknown."""
        digest = _digest(code)
        raw = self._store.take(f"code:{digest}")
        if raw is None:
            grant_id = self._store.get(f"code-used:{digest}")
            if grant_id:
                raise CodeReused(grant_id)
            raise KeyError("unknown or expired code")
        grant = _decode(raw)
        self._store.set(f"code-used:{digest}", grant.context.grant_id, USED_MARKER_TTL)
        return grant


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


def _decode(raw: str) -> CodeGrant:
    data = json.loads(raw)
    ctx = data.pop("context")
    ctx["amr"] = tuple(ctx["amr"])
    ctx["claims"] = tuple(tuple(c) for c in ctx["claims"])
    return CodeGrant(context=AuthContext(**ctx), **data)
