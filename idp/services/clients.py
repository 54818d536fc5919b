"""Registered platforms: validation of RFC 7591 metadata, keyed secret digests, cached lookup."""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from idp.domain.assurance import LOA1, LOA2, LOA3
from idp.domain.models import AudienceTarget, Client, ExchangeTarget
from idp.domain.scopes import is_resource_scope
from idp.store.db import LIKE_ESCAPE, contains_pattern
from idp.store.models import ClientRow

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
ID_TOKEN_ALGS = ("RS256", "ES256")
TOKEN_FORMATS = ("jwt", "opaque")
MIN_SECRET_LENGTH = 32
MAX_CLIENT_NAME = 200  # the column's length
ACR_LEVELS = (LOA1, LOA2, LOA3)
LIST_FIELDS = ("redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types")
MAX_EXCHANGE_TARGETS = 50
MAX_EXCHANGE_SCOPES = 50
MAX_SCOPE_TOKEN = 128


class ClientMetadataError(ValueError):
    """Client metadata that cannot be registered (RFC 7591 §3.2.2 invalid_client_metadata)."""


class ClientService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        secret_key: bytes,
        *,
        cache_seconds: int = 30,
        clock: Callable[[], float] = time.time,
        acr_levels: tuple[str, ...] = ACR_LEVELS,
        own_origin: str | None = None,
    ) -> None:
        self._acr_levels = acr_levels
        self._own_origin = own_origin
        self._sessions = sessions
        self._secret_key = secret_key
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, Client | None]] = {}
        self._lock = threading.Lock()

    # -- lookup -------------------------------------------------------------------------------
    def get(self, client_id: str) -> Client | None:
        """The enabled client, served from memory for `cache_seconds` (hot path of every request)."""
        now = self._clock()
        hit = self._cache.get(client_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self._sessions() as session:
            row = session.get(ClientRow, client_id)
            client = _to_client(row) if row is not None and not row.disabled else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[client_id] = (now + self._cache_seconds, client)
        return client

    def list(self) -> list[Client]:
        with self._sessions() as session:
            return [_to_client(r) for r in session.scalars(select(ClientRow).order_by(ClientRow.client_id))]

    def search(self, query: str = "", offset: int = 0, limit: int = 50) -> builtins.list[Client]:
        """Clients (enabled or not) whose id or name contains `query`, by client id; for admins."""
        offset, limit = max(0, offset), min(max(1, limit), 200)
        statement = select(ClientRow).order_by(ClientRow.client_id)
        query = query.strip()[:128]
        if query:
            pattern = contains_pattern(query)
            statement = statement.where(
                or_(
                    ClientRow.client_id.ilike(pattern, escape=LIKE_ESCAPE),
                    ClientRow.client_name.ilike(pattern, escape=LIKE_ESCAPE),
                )
            )
        with self._sessions() as session:
            return [_to_client(r) for r in session.scalars(statement.offset(offset).limit(limit))]

    def find_any(self, client_id: str) -> Client | None:
        """The client whether enabled or disabled, read from the database (admin pages, not cached)."""
        with self._sessions() as session:
            row = session.get(ClientRow, client_id)
            return _to_client(row) if row is not None else None

    def set_disabled(self, client_id: str, disabled: bool) -> bool:
        """Disable or enable a client; False if there is no such client. Effective on every node
        within `cache_seconds` (at once on this one)."""
        with self._sessions.begin() as session:
            row = session.get(ClientRow, client_id)
            if row is None:
                return False
            row.disabled = disabled
            row.updated_at = int(self._clock())
        self.forget(client_id)
        return True

    def forget(self, client_id: str) -> None:
        with self._lock:
            self._cache.pop(client_id, None)

    def verify_secret(self, client: Client, secret: str) -> bool:
        """Constant-time comparison of the keyed digest of the presented secret."""
        if client.secret_digest is None:
            return False
        return hmac.compare_digest(self.digest_secret(secret), client.secret_digest)

    def digest_secret(self, secret: str) -> str:
        return hmac.new(self._secret_key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    # -- registration -------------------------------------------------------------------------
    def validate(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """The checked metadata, or ClientMetadataError; writes nothing."""
        return validate_client_metadata(metadata, self._acr_levels, self._own_origin)

    def register(
        self,
        metadata: Mapping[str, Any],
        *,
        registered_by: str | None = None,
        registration_token_digest: str | None = None,
    ) -> tuple[Client, str | None]:
        """Create or update a client from RFC 7591 metadata; returns the client and a generated
        secret (only when one was generated, to be shown once).

        `registered_by` is recorded on a new client. With `registration_token_digest` (dynamic
        registration, RFC 7591/7592) a new client holds that digest, and an existing one is changed
        only while it is enabled and holds that same digest: its row is locked for the change, so a
        concurrent RFC 7592 delete is never undone (ClientMetadataError otherwise)."""
        fields = self.validate(metadata)
        generated: str | None = None
        secret = metadata.get("client_secret")
        now = int(self._clock())
        dynamic = registration_token_digest is not None
        with self._sessions.begin() as session:
            row = session.get(ClientRow, fields["client_id"], with_for_update=True if dynamic else None)
            if row is None:
                row = ClientRow(
                    client_id=fields["client_id"],
                    created_at=now,
                    registered_by=registered_by,
                    registration_token_digest=registration_token_digest,
                )
                session.add(row)
            elif dynamic and (row.disabled or row.registration_token_digest != registration_token_digest):
                raise ClientMetadataError("the client's registration has ended")
            if fields["token_endpoint_auth_method"] in ("client_secret_basic", "client_secret_post"):
                if secret:
                    row.secret_digest = self.digest_secret(secret)
                elif row.secret_digest is None:
                    generated = secrets.token_urlsafe(32)  # 256 bits
                    row.secret_digest = self.digest_secret(generated)
            else:
                row.secret_digest = None
            row.client_name = fields["client_name"]
            row.token_endpoint_auth_method = fields["token_endpoint_auth_method"]
            row.id_token_signed_response_alg = fields["id_token_signed_response_alg"]
            row.access_token_format = fields["access_token_format"]
            row.first_party = fields["first_party"]
            row.backchannel_logout_uri = fields["backchannel_logout_uri"]
            row.backchannel_logout_session_required = fields["backchannel_logout_session_required"]
            row.client_metadata = fields["client_metadata"]
            row.disabled = False
            row.updated_at = now
            client = _to_client(row)
        self.forget(client.client_id)
        return client, generated

    def rotate_secret(self, client_id: str) -> str:
        secret = secrets.token_urlsafe(32)
        with self._sessions.begin() as session:
            row = session.get(ClientRow, client_id)
            if row is None or row.secret_digest is None:
                raise ClientMetadataError("client has no secret to rotate")
            row.secret_digest = self.digest_secret(secret)
            row.updated_at = int(self._clock())
        self.forget(client_id)
        return secret

    # -- dynamic registration (RFC 7591 / RFC 7592), used by services/registration.py ------------
    def find_registered(self, client_id: str, registration_token_digest: str) -> tuple[Client, int] | None:
        """The enabled client holding this registration access token digest (compared in constant
        time) and when it was registered; read from the database, never the cache."""
        with self._sessions() as session:
            row = session.get(ClientRow, client_id)
            if row is None or row.disabled:
                return None
            if not hmac.compare_digest(row.registration_token_digest or "", registration_token_digest):
                return None
            return _to_client(row), row.created_at

    def end_registration(self, client_id: str) -> bool:
        """RFC 7592 §2.3: disable a dynamically registered client and forget its registration access
        token, in one statement (of two concurrent calls, one wins). False if it holds none."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(ClientRow)
                .where(ClientRow.client_id == client_id, ClientRow.registration_token_digest.is_not(None))
                .values(disabled=True, registration_token_digest=None, updated_at=int(self._clock()))
            )
            ended = int(result.rowcount or 0) == 1  # type: ignore[attr-defined]
        self.forget(client_id)
        return ended


def validate_client_metadata(
    metadata: Mapping[str, Any], acr_levels: tuple[str, ...] = ACR_LEVELS, own_origin: str | None = None
) -> dict[str, Any]:
    """Check RFC 7591 / OIDC Registration metadata; raise ClientMetadataError with a plain message."""

    def text(name: str, default: str | None = None) -> str | None:
        value = metadata.get(name, default)
        if value is not None and not isinstance(value, str):
            raise ClientMetadataError(f"{name} must be a string")
        return value

    def str_list(name: str, default: tuple[str, ...]) -> list[str]:
        value = metadata.get(name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ClientMetadataError(f"{name} must be a list of strings")
        return list(dict.fromkeys(value))

    client_id = text("client_id")
    if not client_id or len(client_id) > 128 or not client_id.isprintable() or " " in client_id:
        raise ClientMetadataError("client_id must be 1-128 printable characters without spaces")
    client_name = text("client_name", "") or client_id
    if len(client_name) > MAX_CLIENT_NAME:
        raise ClientMetadataError(f"client_name must be at most {MAX_CLIENT_NAME} characters")
    method = text("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise ClientMetadataError(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    secret = text("client_secret")
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise ClientMetadataError(f"client_secret must be at least {MIN_SECRET_LENGTH} characters")
    if secret is not None and method not in ("client_secret_basic", "client_secret_post"):
        raise ClientMetadataError(f"client_secret is not used with {method}")
    grant_types = str_list("grant_types", ("authorization_code", "refresh_token"))
    unknown = set(grant_types) - set(GRANT_TYPES)
    if unknown:
        raise ClientMetadataError(f"unsupported grant_types: {', '.join(sorted(unknown))}")
    if method == "none" and "client_credentials" in grant_types:
        raise ClientMetadataError("a public client cannot use client_credentials")
    response_types = str_list("response_types", ("code",) if "authorization_code" in grant_types else ())
    if set(response_types) - {"code"}:
        raise ClientMetadataError('only response_types ["code"] is supported')
    redirect_uris = str_list("redirect_uris", ())
    if "authorization_code" in grant_types and not redirect_uris:
        raise ClientMetadataError("redirect_uris is required for the authorization_code grant")
    for uri in redirect_uris:
        # the provider's own pages (the admin console) use the issuer's scheme, whatever it is
        check_redirect_uri(
            uri, "redirect_uris", allow_http=bool(own_origin) and uri.startswith(f"{own_origin}/")
        )
    post_logout = str_list("post_logout_redirect_uris", ())
    for uri in post_logout:
        check_redirect_uri(uri, "post_logout_redirect_uris")
    backchannel = text("backchannel_logout_uri")
    if backchannel is not None:
        check_redirect_uri(backchannel, "backchannel_logout_uri")
    alg = text("id_token_signed_response_alg", "RS256")
    if alg not in ID_TOKEN_ALGS:
        raise ClientMetadataError(f"id_token_signed_response_alg must be one of {', '.join(ID_TOKEN_ALGS)}")
    fmt = text("access_token_format", "jwt")
    if fmt not in TOKEN_FORMATS:
        raise ClientMetadataError("access_token_format must be jwt or opaque")
    scope = text("scope", "openid profile") or ""
    jwks = metadata.get("jwks")
    if method == "private_key_jwt":
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
            raise ClientMetadataError("private_key_jwt requires jwks with at least one public key")
        for key in jwks["keys"]:
            if not isinstance(key, dict) or any(k in key for k in ("d", "p", "q", "k")):
                raise ClientMetadataError("jwks must contain public keys only")
    elif jwks is not None:
        raise ClientMetadataError("jwks is only used with private_key_jwt")
    minimum_acr = text("minimum_acr")
    if minimum_acr is not None and minimum_acr not in acr_levels:
        raise ClientMetadataError(f"minimum_acr must be one of {', '.join(acr_levels)}")
    for flag in ("first_party", "backchannel_logout_session_required"):
        if flag in metadata and not isinstance(metadata[flag], bool):
            raise ClientMetadataError(f"{flag} must be true or false")
    token_exchange = check_token_exchange(metadata.get("token_exchange"), method)
    audiences = check_audiences(metadata.get("audiences"), client_id, method, grant_types)
    return {
        "client_id": client_id,
        "client_name": client_name,
        "token_endpoint_auth_method": method,
        "id_token_signed_response_alg": alg,
        "access_token_format": fmt,
        "first_party": bool(metadata.get("first_party", False)),
        "backchannel_logout_uri": backchannel,
        "backchannel_logout_session_required": bool(
            metadata.get("backchannel_logout_session_required", True)
        ),
        "client_metadata": {
            "redirect_uris": redirect_uris,
            "post_logout_redirect_uris": post_logout,
            "grant_types": grant_types,
            "response_types": response_types,
            "scope": " ".join(dict.fromkeys(scope.split())),
            **({"minimum_acr": minimum_acr} if minimum_acr else {}),
            **({"jwks": jwks} if jwks is not None else {}),
            **({"token_exchange": token_exchange} if token_exchange else {}),
            **({"audiences": audiences} if audiences else {}),
        },
    }


def is_scope_token(value: object) -> bool:
    """RFC 6749 §3.3 scope-token: printable ASCII without space, double quote or backslash."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_SCOPE_TOKEN
        and all(0x21 <= ord(ch) <= 0x7E and ch not in '"\\' for ch in value)
    )


def check_token_exchange(value: object, method: str) -> list[dict[str, Any]]:
    """`token_exchange`: [{"audience": client_id, "scopes": [...]}, ...], the services this client
    may exchange a person's access token for (RFC 8693), confidential clients only."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_EXCHANGE_TARGETS:
        raise ClientMetadataError(f"token_exchange must be a list of at most {MAX_EXCHANGE_TARGETS} objects")
    if value and method == "none":
        raise ClientMetadataError("a public client cannot use token exchange")
    targets: dict[str, list[str]] = {}
    for item in value:
        if not isinstance(item, dict) or set(item) - {"audience", "scopes"}:
            raise ClientMetadataError('token_exchange entries must be {"audience": ..., "scopes": [...]}')
        audience, scopes = item.get("audience"), item.get("scopes")
        if not isinstance(audience, str) or not 0 < len(audience) <= 128 or not audience.isprintable():
            raise ClientMetadataError("token_exchange audience must be a client_id of 1-128 characters")
        if " " in audience or audience in targets:
            raise ClientMetadataError(f"token_exchange audience {audience!r} is invalid or repeated")
        if (
            not isinstance(scopes, list)
            or not 0 < len(scopes) <= MAX_EXCHANGE_SCOPES
            or not all(is_scope_token(s) for s in scopes)
        ):
            raise ClientMetadataError("token_exchange scopes must be a non-empty list of scope tokens")
        if any(s.startswith("admin:") for s in scopes):
            raise ClientMetadataError("token_exchange cannot grant admin: scopes")
        targets[audience] = list(dict.fromkeys(scopes))
    return [{"audience": a, "scopes": s} for a, s in targets.items()]


def check_audiences(
    value: object, client_id: str, method: str, grant_types: list[str]
) -> list[dict[str, Any]]:
    """`audiences`: [{"audience": client_id, "scopes": [...]}, ...], the services this client may get
    access tokens for by client credentials (`audience` parameter), with resource scopes
    `<service>:<permission>` only; confidential clients with the client_credentials grant only."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_EXCHANGE_TARGETS:
        raise ClientMetadataError(f"audiences must be a list of at most {MAX_EXCHANGE_TARGETS} objects")
    if value and method == "none":
        raise ClientMetadataError("a public client cannot have audiences")
    if value and "client_credentials" not in grant_types:
        raise ClientMetadataError("audiences requires the client_credentials grant")
    targets: dict[str, list[str]] = {}
    for item in value:
        if not isinstance(item, dict) or set(item) - {"audience", "scopes"}:
            raise ClientMetadataError('audiences entries must be {"audience": ..., "scopes": [...]}')
        audience, scopes = item.get("audience"), item.get("scopes")
        if not isinstance(audience, str) or not 0 < len(audience) <= 128 or not audience.isprintable():
            raise ClientMetadataError("audiences audience must be a client_id of 1-128 characters")
        if " " in audience or audience in targets or audience == client_id:
            raise ClientMetadataError(
                f"audiences audience {audience!r} is invalid, repeated or the client itself"
            )
        if not isinstance(scopes, list) or not 0 < len(scopes) <= MAX_EXCHANGE_SCOPES:
            raise ClientMetadataError("audiences scopes must be a non-empty list of resource scopes")
        if not all(isinstance(s, str) and is_resource_scope(s) for s in scopes):
            raise ClientMetadataError(
                "audiences scopes must be resource scopes <service>:<permission>, not admin:"
            )
        targets[audience] = list(dict.fromkeys(scopes))
    return [{"audience": a, "scopes": s} for a, s in targets.items()]


def check_redirect_uri(uri: str, field: str, *, allow_http: bool = False) -> None:
    """Absolute http(s) URI without fragment; plain http only for loopback hosts (RFC 8252 §7.3)."""
    try:
        parts = urlsplit(uri)
        hostname = parts.hostname
    except ValueError:  # e.g. "http://[::1/cb": an unreadable URL is bad metadata, not a crash
        raise ClientMetadataError(f"{field}: {uri!r} is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not hostname or parts.fragment:
        raise ClientMetadataError(f"{field}: {uri!r} must be an absolute https URL without a fragment")
    if parts.scheme == "http" and not allow_http and hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ClientMetadataError(f"{field}: {uri!r} must use https (http only for loopback)")


def _to_client(row: ClientRow) -> Client:
    meta = row.client_metadata or {}
    return Client(
        client_id=row.client_id,
        client_name=row.client_name,
        token_endpoint_auth_method=row.token_endpoint_auth_method,
        redirect_uris=tuple(meta.get("redirect_uris", ())),
        post_logout_redirect_uris=tuple(meta.get("post_logout_redirect_uris", ())),
        grant_types=tuple(meta.get("grant_types", ())),
        response_types=tuple(meta.get("response_types", ())),
        scope=tuple(str(meta.get("scope", "")).split()),
        id_token_signed_response_alg=row.id_token_signed_response_alg,
        access_token_format=row.access_token_format,
        first_party=row.first_party,
        backchannel_logout_uri=row.backchannel_logout_uri,
        backchannel_logout_session_required=row.backchannel_logout_session_required,
        jwks=meta.get("jwks"),
        minimum_acr=meta.get("minimum_acr"),
        token_exchange=tuple(
            ExchangeTarget(t["audience"], tuple(t["scopes"])) for t in meta.get("token_exchange", ())
        ),
        audiences=tuple(AudienceTarget(t["audience"], tuple(t["scopes"])) for t in meta.get("audiences", ())),
        secret_digest=row.secret_digest,
        disabled=row.disabled,
    )
