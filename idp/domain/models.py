"""Frozen values that cross layers: clients, persons, sessions, grants, tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ExchangeTarget:
    """A service this client may exchange a person's access token for (RFC 8693), and for what."""

    audience: str  # the target service's client_id
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class AudienceTarget:
    """A service this client may get access tokens for by client credentials (`audience`), and for what."""

    audience: str  # the target service's client_id
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Client:
    """A registered platform (OIDC relying party)."""

    client_id: str
    client_name: str
    token_endpoint_auth_method: str
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    response_types: tuple[str, ...] = ("code",)
    scope: tuple[str, ...] = ("openid", "profile")
    id_token_signed_response_alg: str = "RS256"
    access_token_format: str = "jwt"  # "jwt" (RFC 9068) or "opaque"
    first_party: bool = False
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = True
    jwks: dict | None = None  # for private_key_jwt
    secret_digest: str | None = None
    disabled: bool = False
    minimum_acr: str | None = None  # the weakest level of assurance this platform accepts
    token_exchange: tuple[ExchangeTarget, ...] = ()  # RFC 8693 targets; empty: no token exchange
    audiences: tuple[AudienceTarget, ...] = ()  # client credentials for other services; empty: none

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"


@dataclass(frozen=True)
class Person:
    """A natural person (自然人) as the provider knows them."""

    id: str
    username: str
    name: str | None = None
    email: str | None = None
    email_verified: bool = False
    phone_number: str | None = None
    id_number_masked: str | None = None
    verified: bool = False  # real-name verified against an identity source (or by an operator)
    mfa_enabled: bool = False
    disabled: bool = False


@dataclass(frozen=True)
class SsoSession:
    """One browser's single-sign-on session."""

    sid: str
    person_id: str
    auth_time: int
    acr: str
    amr: tuple[str, ...]
    created_at: int
    acting: str | None = None  # None: not chosen yet; "self"; or the id of a legal entity acted for


@dataclass(frozen=True)
class AuthContext:
    """Who a token is for and how they authenticated; carried from code to tokens to refresh."""

    person_id: str | None
    grant_id: str
    sid: str | None = None
    auth_time: int | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    nonce: str | None = None
    claims: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    entity_id: str | None = None  # the legal entity (法人) the person acts for, if any
    # The `entity` claim (uscc, name, role, powers), resolved afresh whenever tokens are issued.
    entity_claim: dict[str, Any] | None = None


@dataclass(frozen=True)
class CodeGrant:
    """What an authorization code stands for (stored in the ephemeral store, never the code itself)."""

    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    context: AuthContext


@dataclass(frozen=True)
class TokenRecord:
    """An issued token as looked up by its digest."""

    kind: str
    client_id: str
    person_id: str | None
    scope: str
    grant_id: str
    sid: str | None
    auth_time: int | None
    acr: str | None
    amr: tuple[str, ...]
    issued_at: int
    expires_at: int
    revoked_at: int | None
    rotated_at: int | None
    entity_id: str | None = None
    audience: str | None = None  # exchanged or client-credentials token: the service it is meant for
    actor: str | None = None  # an exchanged token: the client that acts (the `act` claim)

    def is_active(self, now: float) -> bool:
        return self.revoked_at is None and self.expires_at > now
