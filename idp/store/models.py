"""SQLAlchemy 2 typed models of the durable database. Times are integer epoch seconds (UTC)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.db import Base


class PersonRow(Base):
    """A natural person (自然人): a local account, or one linked to an external identity source."""

    __tablename__ = "persons"
    __table_args__ = (UniqueConstraint("external_source", "external_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # also the public `sub`
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    name: Mapped[str | None] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(254))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    phone_number: Mapped[str | None] = mapped_column(String(32), unique=True)
    # Resident identity number: AES-GCM ciphertext plus an HMAC blind index for lookup.
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_index: Mapped[str | None] = mapped_column(String(64), unique=True)
    id_number_masked: Mapped[str | None] = mapped_column(String(32))
    # Which identity document the number is: "resident_id" (GB 11643) or another type code.
    document_type: Mapped[str] = mapped_column(String(32), default="resident_id")
    # Real-name verification: when and by which source (register, operator, ldap).
    verified_at: Mapped[int | None] = mapped_column(BigInteger)
    verified_by: Mapped[str | None] = mapped_column(String(32))
    self_registered: Mapped[bool] = mapped_column(Boolean, default=False)
    # TOTP second factor: the secret AES-GCM encrypted; enabled once a code confirmed it.
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled_at: Mapped[int | None] = mapped_column(BigInteger)
    password_changed_at: Mapped[int | None] = mapped_column(BigInteger)
    # Set for persons who authenticate at an external source (LDAP): which source, and its stable id.
    external_source: Mapped[str | None] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


# Self-registration (is the address taken?) and password reset find a person by email address, case-
# insensitively: `lower(email) = ?`. Without this expression index that is a scan of every person.
Index("ix_persons_email_lower", func.lower(PersonRow.email))


class RecoveryCodeRow(Base):
    """A single-use MFA recovery code, stored only as a keyed digest."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(32), index=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class LegalEntityRow(Base):
    """A legal entity (法人) identified by its Unified Social Credit Code."""

    __tablename__ = "legal_entities"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    entity_type: Mapped[str] = mapped_column(String(32), default="enterprise")
    status: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending|verified|suspended|deregistered
    verified_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class AgentAuthorisationRow(Base):
    """Authority of a person to act for a legal entity: representative (法定代表人), agent (经办人), admin."""

    __tablename__ = "agent_authorisations"
    __table_args__ = (Index("ix_agent_authorisations_person_entity", "person_id", "entity_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(32), index=True)
    person_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(32))  # legal_representative | agent | entity_admin
    powers: Mapped[str] = mapped_column(Text, default="")  # space-separated scopes
    valid_from: Mapped[int] = mapped_column(BigInteger)
    valid_until: Mapped[int | None] = mapped_column(BigInteger)
    granted_by: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


class NotificationRow(Base):
    """A message sent through the development notifier (password-reset links), readable by the developer."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)


class ClientRow(Base):
    """A registered platform (relying party). Metadata names follow RFC 7591 / OIDC Registration."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # HMAC-SHA-256 of the secret under the server's secret-digest key; None for public clients.
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    client_name: Mapped[str] = mapped_column(String(200), default="")
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40))
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(10), default="RS256")
    access_token_format: Mapped[str] = mapped_column(String(10), default="jwt")
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    backchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, default=True)
    # Lists and the rest of the metadata: redirect_uris, post_logout_redirect_uris, grant_types,
    # response_types, scope, jwks.
    client_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Dynamic registration (RFC 7592): SHA-256 of the registration access token; who registered it
    # ("admin:<person id>", "cli", "dcr:<initial access token id>").
    registration_token_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    registered_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class ConsentRow(Base):
    """Scopes a person has granted to a client, remembered across logins."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("person_id", "client_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(32), index=True)
    client_id: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[int] = mapped_column(BigInteger)


class TokenRow(Base):
    """An issued access or refresh token, known only by the SHA-256 digest of its value.

    `grant_id` ties every token of one authorization (the code and all refresh rotations) together,
    so a replayed code or refresh token revokes the whole family.
    """

    __tablename__ = "tokens"
    __table_args__ = (
        Index("ix_tokens_grant_id", "grant_id"),
        Index("ix_tokens_sid", "sid"),
        Index("ix_tokens_person_client", "person_id", "client_id"),
        Index("ix_tokens_client_id", "client_id"),  # revoke_client: a disabled or deleted platform
        Index("ix_tokens_audience", "audience"),  # ... and the tokens exchanged for use at it
        Index("ix_tokens_expires_at", "expires_at"),  # purge_expired
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # "access" | "refresh"
    client_id: Mapped[str] = mapped_column(String(128))
    person_id: Mapped[str | None] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(Text, default="")
    grant_id: Mapped[str] = mapped_column(String(64))
    sid: Mapped[str | None] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(32))  # the legal entity the person acts for
    auth_time: Mapped[int | None] = mapped_column(BigInteger)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[str | None] = mapped_column(String(128))  # space-separated
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    # Refresh tokens only: when it was exchanged for its successor, and that successor's digest.
    rotated_at: Mapped[int | None] = mapped_column(BigInteger)
    successor_digest: Mapped[str | None] = mapped_column(String(64))
    # Exchanged tokens only (RFC 8693): the service the token is meant for, and the client acting.
    audience: Mapped[str | None] = mapped_column(String(128))
    actor: Mapped[str | None] = mapped_column(String(128))


class SigningKeyRow(Base):
    """A signing key. The private JWK is AES-GCM encrypted under the key-encryption key.

    Life cycle: published (in JWKS) from `created_at`; signs from `activates_at` until `retired_at`;
    leaves JWKS at `expires_at` (after every token it signed has expired).
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(BigInteger)
    activates_at: Mapped[int] = mapped_column(BigInteger)
    retired_at: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)


class LogoutOutboxRow(Base):
    """A back-channel logout token waiting to be delivered, durable across restarts."""

    __tablename__ = "logout_outbox"
    __table_args__ = (Index("ix_logout_outbox_due", "delivered_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    client_id: Mapped[str] = mapped_column(String(128))
    uri: Mapped[str] = mapped_column(Text)
    logout_token: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger)
    gave_up_at: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)


class EphemeralEntry(Base):
    """The SQL implementation of the ephemeral store: one row per key, always with an expiry."""

    __tablename__ = "ephemeral"
    __table_args__ = (Index("ix_ephemeral_expires_at", "expires_at"),)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[float] = mapped_column(BigInteger)  # epoch milliseconds


class AuditEventRow(Base):
    """One append-only audit event, hash-chained to the event before it.

    `id` is assigned by the writer under the chain lock (last id + 1), so ids are contiguous and a
    gap means a deleted event; `hash` is SHA-256 over the canonical JSON of every other column."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_subject_at", "subject", "at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[int] = mapped_column(BigInteger)  # epoch milliseconds, when the event happened
    event: Mapped[str] = mapped_column(String(40))  # login.succeeded, token.issued, data.read ...
    actor: Mapped[str] = mapped_column(String(128))  # person id, client id or "anonymous"
    subject: Mapped[str | None] = mapped_column(String(32))  # the person the event concerns
    client_id: Mapped[str | None] = mapped_column(String(128))
    purpose: Mapped[str | None] = mapped_column(Text)  # the scope data was read for
    address: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # success | failure
    details: Mapped[str | None] = mapped_column(Text)  # canonical JSON; never secrets or identifiers
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AdminRoleRow(Base):
    """An admin role held by a person (super_admin, platform_admin, entity_admin, auditor)."""

    __tablename__ = "admin_roles"
    __table_args__ = (UniqueConstraint("person_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(32), index=True)
    role: Mapped[str] = mapped_column(String(32))
    granted_by: Mapped[str] = mapped_column(String(128))
    granted_at: Mapped[int] = mapped_column(BigInteger)


class InitialAccessTokenRow(Base):
    """An initial access token for dynamic client registration (RFC 7591 §3), issued by an admin.
    Known only by the SHA-256 digest of its value."""

    __tablename__ = "initial_access_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    max_uses: Mapped[int] = mapped_column(Integer, default=1)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
