"""Dynamic client registration (RFC 7591) and management (RFC 7592).

An admin issues an initial access token (RFC 7591 §3) and hands it to a platform; the platform
registers itself with it and gets a registration access token with which it reads, replaces or deletes
its own registration (RFC 7592). Both tokens are known here only by the SHA-256 digest of their value.

Audit events are recorded by the callers (the registration endpoint, the CLI, the admin console), who
know the actor and the address."""

from __future__ import annotations

import math
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from idp.domain.admin import ADMIN_SCOPE_PREFIX
from idp.domain.models import Client
from idp.services.clients import ClientMetadataError, ClientService
from idp.services.tokens import TokenService, digest_token
from idp.store.models import ClientRow, InitialAccessTokenRow

REGISTRATION_PATH = "/connect/register"  # the registration endpoint; `/<client_id>` configures one

MIN_TTL = 60
MAX_TTL = 30 * 86400
MAX_USES = 1000
MAX_LABEL = 200
MAX_CREATED_BY = 128
MAX_TOKEN_LENGTH = 512  # longer bearer values are not ours: refused without a lookup

# The client metadata a platform may send (RFC 7591 §2, OIDC Registration, back-channel logout, and
# our access_token_format / minimum_acr). Anything else is ignored (RFC 7591 §2: "the authorization
# server MUST ignore any client metadata sent by the client that it does not understand").
KNOWN_FIELDS = (
    "client_name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "scope",
    "id_token_signed_response_alg",
    "access_token_format",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "jwks",
    "minimum_acr",
    "first_party",
)
URI_FIELDS = ("redirect_uris", "post_logout_redirect_uris", "backchannel_logout_uri")
# RFC 7592 §2.2: an update request MUST NOT include these (they are the server's, not metadata).
SERVER_FIELDS = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)
MAX_CLIENT_NAME = 200  # the column's length
MAX_URI = 2048
MAX_STRING = 16384  # e.g. one certificate in a JWK's x5c
MAX_LIST = 50
MAX_DEPTH = 6
MAX_SCOPE = 1000
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3 scope-token
TOKEN_ID = re.compile(r"[0-9a-f]{1,32}")
# Control, surrogate, format (incl. bidirectional overrides), private-use and unassigned characters
# have no place in client metadata and some cannot be stored at all (NUL in PostgreSQL).
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Cf", "Co", "Cn", "Zl", "Zp"})


class RegistrationError(ValueError):
    """A request that cannot be carried out; `code` is the OAuth error code (RFC 7591 §3.2.2, RFC 6750
    §3.1 `invalid_token` when the registration no longer exists)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class InitialAccessToken:
    """An initial access token as admins see it; its value is shown once, at issuance, never again."""

    id: str
    label: str
    created_by: str
    created_at: int
    expires_at: int
    max_uses: int
    uses: int
    revoked_at: int | None

    def is_active(self, now: float) -> bool:
        return self.revoked_at is None and self.expires_at > now and self.uses < self.max_uses


@dataclass(frozen=True)
class Registration:
    """A client's registration as told to the client (RFC 7591 §3.2.1, RFC 7592 §3). `client_secret`
    and `registration_access_token` are present only when there is a value to tell (just generated,
    or the token the client presented)."""

    client: Client
    client_id_issued_at: int
    registration_client_uri: str
    client_secret: str | None = None
    registration_access_token: str | None = None

    def response(self) -> dict[str, Any]:
        client = self.client
        body: dict[str, Any] = {
            "client_id": client.client_id,
            "client_id_issued_at": self.client_id_issued_at,
            "client_name": client.client_name,
            "token_endpoint_auth_method": client.token_endpoint_auth_method,
            "grant_types": list(client.grant_types),
            "response_types": list(client.response_types),
            "redirect_uris": list(client.redirect_uris),
            "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
            "scope": " ".join(client.scope),
            "id_token_signed_response_alg": client.id_token_signed_response_alg,
            "access_token_format": client.access_token_format,
            "backchannel_logout_session_required": client.backchannel_logout_session_required,
            "registration_client_uri": self.registration_client_uri,
        }
        if client.backchannel_logout_uri:
            body["backchannel_logout_uri"] = client.backchannel_logout_uri
        if client.jwks is not None:
            body["jwks"] = client.jwks
        if client.minimum_acr:
            body["minimum_acr"] = client.minimum_acr
        if client.secret_digest is not None:
            body["client_secret_expires_at"] = 0  # never expires (RFC 7591 §3.2.1)
        if self.client_secret is not None:
            body["client_secret"] = self.client_secret
        if self.registration_access_token is not None:
            body["registration_access_token"] = self.registration_access_token
        return body


class RegistrationService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clients: ClientService,
        *,
        tokens: TokenService,
        issuer: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._clients = clients
        self._tokens = tokens
        self._issuer = issuer
        self._clock = clock

    # -- initial access tokens (issued by admins) --------------------------------------------------

    def issue_initial_token(
        self, created_by: str, label: str = "", ttl_seconds: int = 86400, max_uses: int = 1
    ) -> tuple[InitialAccessToken, str]:
        """A new initial access token and its value (256 bits; returned here once, stored as digest)."""
        if not isinstance(created_by, str) or not created_by or len(created_by) > MAX_CREATED_BY:
            raise RegistrationError("invalid_request", f"created_by must be 1-{MAX_CREATED_BY} characters")
        if not isinstance(label, str) or len(label) > MAX_LABEL or not _clean_text(label):
            raise RegistrationError(
                "invalid_request", f"the label must be at most {MAX_LABEL} printable characters"
            )
        if not _is_int(ttl_seconds) or not MIN_TTL <= ttl_seconds <= MAX_TTL:
            raise RegistrationError(
                "invalid_request", f"the lifetime must be {MIN_TTL} to {MAX_TTL} seconds (30 days)"
            )
        if not _is_int(max_uses) or not 1 <= max_uses <= MAX_USES:
            raise RegistrationError("invalid_request", f"max_uses must be 1 to {MAX_USES}")
        value = secrets.token_urlsafe(32)
        now = int(self._clock())
        row = InitialAccessTokenRow(
            id=secrets.token_hex(8),
            digest=digest_token(value),
            label=label.strip(),
            created_by=created_by,
            created_at=now,
            expires_at=now + ttl_seconds,
            max_uses=max_uses,
            uses=0,
            revoked_at=None,
        )
        with self._sessions.begin() as session:
            session.add(row)
            token = _to_initial_token(row)
        return token, value

    def list_initial_tokens(self, include_inactive: bool = False) -> list[InitialAccessToken]:
        """Newest first; only the usable ones unless `include_inactive`."""
        statement = select(InitialAccessTokenRow).order_by(
            InitialAccessTokenRow.created_at.desc(), InitialAccessTokenRow.id
        )
        if not include_inactive:
            statement = statement.where(*self._usable())
        with self._sessions() as session:
            return [_to_initial_token(row) for row in session.scalars(statement.limit(1000))]

    def revoke_initial_token(self, token_id: str) -> bool:
        """Revoke at once; False if there is no such token or it was already revoked."""
        if not isinstance(token_id, str) or not TOKEN_ID.fullmatch(token_id):
            return False
        with self._sessions.begin() as session:
            result = session.execute(
                update(InitialAccessTokenRow)
                .where(InitialAccessTokenRow.id == token_id, InitialAccessTokenRow.revoked_at.is_(None))
                .values(revoked_at=int(self._clock()))
            )
            return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]

    def find_initial_token(self, value: str) -> InitialAccessToken | None:
        """The usable token with this value, without using it (to authenticate before the body is
        read: a bad request does not spend a use)."""
        if not _plausible_token(value):
            return None
        with self._sessions() as session:
            row = session.scalar(
                select(InitialAccessTokenRow).where(
                    InitialAccessTokenRow.digest == digest_token(value), *self._usable()
                )
            )
            return _to_initial_token(row) if row is not None else None

    def consume_initial_token(self, value: str) -> InitialAccessToken | None:
        """Spend one use in one conditional UPDATE: of concurrent registrations with the last use of
        a token, exactly one gets it. None if the token is unknown, revoked, expired or used up."""
        if not _plausible_token(value):
            return None
        with self._sessions.begin() as session:
            row = session.execute(
                update(InitialAccessTokenRow)
                .where(InitialAccessTokenRow.digest == digest_token(value), *self._usable())
                .values(uses=InitialAccessTokenRow.uses + 1)
                .returning(InitialAccessTokenRow)
            ).scalar_one_or_none()
            return _to_initial_token(row) if row is not None else None

    def _usable(self) -> tuple[Any, ...]:
        return (
            InitialAccessTokenRow.revoked_at.is_(None),
            InitialAccessTokenRow.expires_at > int(self._clock()),
            InitialAccessTokenRow.uses < InitialAccessTokenRow.max_uses,
        )

    # -- registration (RFC 7591) -------------------------------------------------------------------

    def validate(self, metadata: Any) -> dict[str, Any]:
        """The metadata a new registration would store (without client_id), or RegistrationError."""
        return self._checked(metadata, current=None)

    def register(self, metadata: Any, initial_token_id: str) -> Registration:
        """Register a new client with a generated client_id (and secret, for the secret-based methods)
        and a new registration access token; the caller has spent a use of `initial_token_id`."""
        fields = self._checked(metadata, current=None)
        client_id = secrets.token_urlsafe(16)
        registration_token = secrets.token_urlsafe(32)
        try:
            client, secret = self._clients.register(
                {**fields, "client_id": client_id},
                registered_by=f"dcr:{initial_token_id}",
                registration_token_digest=digest_token(registration_token),
            )
        except ClientMetadataError as exc:
            raise _metadata_error(exc) from None
        return Registration(
            client=client,
            client_id_issued_at=self._issued_at(client_id),
            registration_client_uri=self.registration_client_uri(client_id),
            client_secret=secret,
            registration_access_token=registration_token,
        )

    def registration_client_uri(self, client_id: str) -> str:
        return f"{self._issuer}{REGISTRATION_PATH}/{client_id}"

    # -- management (RFC 7592) ---------------------------------------------------------------------

    def client_for_registration_token(self, client_id: str, value: str) -> Client | None:
        """The enabled client whose registration access token this is (digests compared in constant
        time). None alike for an unknown client, a wrong token and another client's token."""
        if not isinstance(client_id, str) or not _plausible_token(value):
            return None
        if not client_id or len(client_id) > 128 or not _clean_text(client_id):
            return None
        found = self._clients.find_registered(client_id, digest_token(value))
        return found[0] if found is not None else None

    def read(self, client: Client, registration_access_token: str | None = None) -> Registration:
        """RFC 7592 §2.1. The secret is known only by its digest and cannot be told again; the
        registration access token is told back when the caller passes the one presented."""
        return Registration(
            client=client,
            client_id_issued_at=self._issued_at(client.client_id),
            registration_client_uri=self.registration_client_uri(client.client_id),
            registration_access_token=registration_access_token,
        )

    def update(
        self, client_id: str, metadata: Any, registration_access_token: str | None = None
    ) -> Registration:
        """RFC 7592 §2.2: replace the metadata as a whole (omitted fields take their defaults). The
        client_id must be the client's own; a client_secret, if sent, must be the current one. Nothing
        is rotated: a secret is generated only if the client moves to a secret-based method."""
        if not isinstance(metadata, Mapping):
            raise RegistrationError("invalid_client_metadata", "the client metadata must be a JSON object")
        sent = sorted(name for name in SERVER_FIELDS if name in metadata)
        if sent:
            raise RegistrationError(
                "invalid_request", f"an update must not include {', '.join(sent)} (RFC 7592 §2.2)"
            )
        if metadata.get("client_id") != client_id:
            raise RegistrationError("invalid_request", "client_id must be sent and be the client's own")
        with self._sessions() as session:
            digest = session.scalar(
                select(ClientRow.registration_token_digest).where(
                    ClientRow.client_id == client_id, ClientRow.disabled.is_(False)
                )
            )
        found = self._clients.find_registered(client_id, digest) if digest else None
        if found is None:
            raise RegistrationError("invalid_token", "the client's registration has ended")
        current, issued_at = found
        if "client_secret" in metadata and metadata["client_secret"] is not None:
            secret = metadata["client_secret"]
            if not isinstance(secret, str) or not self._clients.verify_secret(current, secret):
                raise RegistrationError("invalid_request", "client_secret must be the current client secret")
        fields = self._checked(metadata, current=current)
        try:
            client, generated = self._clients.register(
                {**fields, "client_id": client_id}, registration_token_digest=digest
            )
        except ClientMetadataError:  # the metadata passed the same checks above: the row changed
            raise RegistrationError("invalid_token", "the client's registration has ended") from None
        return Registration(
            client=client,
            client_id_issued_at=issued_at,
            registration_client_uri=self.registration_client_uri(client_id),
            client_secret=generated,
            registration_access_token=registration_access_token,
        )

    def delete(self, client_id: str) -> bool:
        """RFC 7592 §2.3: disable the client, forget its registration access token and revoke every
        token it holds. The row stays (the audit trail and issued tokens refer to it). False if the
        client holds no registration (unknown, deleted already, or not dynamically registered)."""
        if not self._clients.end_registration(client_id):
            return False
        self._tokens.revoke_client(client_id)
        return True

    # -- the metadata checks -----------------------------------------------------------------------

    def _checked(self, metadata: Any, current: Client | None) -> dict[str, Any]:
        """Known fields only, null taken as absent; what the dynamic path refuses on top of
        ClientService.validate; then that validation (with a placeholder client_id)."""
        if not isinstance(metadata, Mapping):
            raise RegistrationError("invalid_client_metadata", "the client metadata must be a JSON object")
        # client_id and client_secret are the server's to choose (RFC 7591 §3.2.1): a new
        # registration ignores them; an update has checked them already.
        fields = {name: metadata[name] for name in KNOWN_FIELDS if metadata.get(name) is not None}
        for name, value in fields.items():
            _check_value(name, value, 0)
        # first_party (no consent screen) is the operator's decision. RFC 7591 §2 lets the server
        # refuse or replace requested metadata: we refuse it, so the platform learns that an admin
        # must decide, rather than silently registering something other than what it asked for.
        # An update may repeat the value an admin set; it keeps that value either way.
        allowed_first_party = current.first_party if current is not None else False
        if "first_party" in fields and fields["first_party"] is not allowed_first_party:
            raise RegistrationError(
                "invalid_client_metadata",
                "first_party cannot be requested: only an administrator marks a platform as first-party",
            )
        fields["first_party"] = allowed_first_party
        # token_exchange (which services the platform may exchange a person's token for) is the
        # operator's decision too: never read from the request (not a known field), kept on update.
        if current is not None and current.token_exchange:
            fields["token_exchange"] = [
                {"audience": t.audience, "scopes": list(t.scopes)} for t in current.token_exchange
            ]
        # audiences (which services it may get client-credentials tokens for) likewise.
        if current is not None and current.audiences:
            fields["audiences"] = [
                {"audience": t.audience, "scopes": list(t.scopes)} for t in current.audiences
            ]
        scope = fields.get("scope")
        if scope is not None:
            fields["scope"] = self._checked_scope(scope, current)
        for name in ("redirect_uris", "post_logout_redirect_uris"):
            if isinstance(fields.get(name), list):
                for uri in fields[name]:
                    self._check_uri(name, uri)
        if isinstance(fields.get("backchannel_logout_uri"), str):
            self._check_uri("backchannel_logout_uri", fields["backchannel_logout_uri"])
        try:
            self._clients.validate({**fields, "client_id": "registration-check"})
        except ValueError as exc:  # ClientMetadataError, or a URI urlsplit could not parse
            raise _metadata_error(exc) from None
        return fields

    def _checked_scope(self, scope: Any, current: Client | None) -> str:
        if not isinstance(scope, str):
            raise RegistrationError("invalid_client_metadata", "scope must be a string")
        if len(scope) > MAX_SCOPE:
            raise RegistrationError(
                "invalid_client_metadata", f"scope must be at most {MAX_SCOPE} characters"
            )
        tokens = scope.split()
        for token in tokens:
            if not SCOPE_TOKEN.fullmatch(token):
                raise RegistrationError("invalid_client_metadata", f"scope: {token!r} is not a valid scope")
        # Admin scopes make a platform an administrator: only a super_admin grants them, in the
        # console. A registration refuses them; an update may keep those an admin already granted.
        held = set(current.scope) if current is not None else set()
        refused = [t for t in tokens if t.casefold().startswith(ADMIN_SCOPE_PREFIX) and t not in held]
        if refused:
            raise RegistrationError(
                "invalid_client_metadata",
                f"admin scopes are granted only by an administrator: {', '.join(refused)}",
            )
        return scope

    def _check_uri(self, field: str, uri: Any) -> None:
        code = "invalid_redirect_uri" if field == "redirect_uris" else "invalid_client_metadata"
        if not isinstance(uri, str):
            return  # ClientService.validate names the wrong type
        try:
            parts = urlsplit(uri)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            raise RegistrationError(code, f"{field}: {uri!r} is not a valid URL") from None
        if any(ch.isspace() for ch in uri):
            raise RegistrationError(code, f"{field}: {uri!r} must not contain spaces")
        if parts.hostname and _host_and_port(parts) == _host_and_port(urlsplit(self._issuer)):
            raise RegistrationError(code, f"{field}: the provider's own address cannot be registered")

    def _issued_at(self, client_id: str) -> int:
        with self._sessions() as session:
            created = session.scalar(select(ClientRow.created_at).where(ClientRow.client_id == client_id))
        return int(created or 0)


def _check_value(path: str, value: Any, depth: int) -> None:
    """Sizes and characters of one metadata value (the types are ClientService.validate's)."""
    if depth > MAX_DEPTH:
        raise RegistrationError("invalid_client_metadata", f"{path} is nested too deeply")
    if isinstance(value, str):
        limit = MAX_CLIENT_NAME if path == "client_name" else MAX_URI if path in URI_FIELDS else MAX_STRING
        code = "invalid_redirect_uri" if path == "redirect_uris" else "invalid_client_metadata"
        if len(value) > limit:
            raise RegistrationError(code, f"{path} must be at most {limit} characters")
        if not _clean_text(value):
            raise RegistrationError(code, f"{path} contains a control or unprintable character")
    elif isinstance(value, list):
        if len(value) > MAX_LIST:
            raise RegistrationError("invalid_client_metadata", f"{path} has more than {MAX_LIST} entries")
        for item in value:
            _check_value(path, item, depth + 1)
    elif isinstance(value, Mapping):
        if len(value) > MAX_LIST:
            raise RegistrationError("invalid_client_metadata", f"{path} has more than {MAX_LIST} members")
        for key, item in value.items():
            _check_value(path, key, depth + 1)
            _check_value(path, item, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise RegistrationError("invalid_client_metadata", f"{path} must not hold NaN or infinity")


def _host_and_port(parts: SplitResult) -> tuple[str | None, int | None]:
    return parts.hostname, parts.port or {"https": 443, "http": 80}.get(parts.scheme)


def _clean_text(value: str) -> bool:
    return not any(unicodedata.category(ch) in FORBIDDEN_CATEGORIES for ch in value)


def _metadata_error(exc: ValueError) -> RegistrationError:
    message = str(exc)
    code = "invalid_redirect_uri" if message.startswith("redirect_uris") else "invalid_client_metadata"
    return RegistrationError(code, message)


def _plausible_token(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_TOKEN_LENGTH


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _to_initial_token(row: InitialAccessTokenRow) -> InitialAccessToken:
    return InitialAccessToken(
        id=row.id,
        label=row.label,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        max_uses=row.max_uses,
        uses=row.uses,
        revoked_at=row.revoked_at,
    )
