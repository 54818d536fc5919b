"""Token-endpoint grants: authorization_code (atomic, reuse revokes), refresh_token (rotation), client_credentials."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    grants,
)

from idp.domain.entities import CannotActForEntity
from idp.domain.models import AuthContext, Client, CodeGrant, TokenRecord
from idp.protocol.token_format import TokenFactory
from idp.services.authorization_codes import CodeReused
from idp.services.entities import EntityError
from idp.services.provider import ProviderServices

TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


class RedeemedCode:
    """AuthorizationCodeMixin over a redeemed CodeGrant."""

    def __init__(self, grant: CodeGrant) -> None:
        self.grant = grant
        self.code_challenge = grant.code_challenge
        self.code_challenge_method = "S256"

    def get_redirect_uri(self) -> str:
        return self.grant.redirect_uri

    def get_scope(self) -> str:
        return self.grant.scope

    def get_nonce(self) -> str | None:
        return self.grant.context.nonce


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    services: ProviderServices  # set on the subclass built per app

    def query_authorization_code(self, code: str, client: Any) -> RedeemedCode | None:
        # DESIGN trap: consume here, atomically; a reused code revokes what it issued (RFC 6749 §4.1.2).
        try:
            grant = self.services.codes.redeem(code)
        except CodeReused as reused:
            self.services.tokens.revoke_grant(reused.grant_id)
            return None
        except KeyError:
            return None
        if grant.client_id != client.client_id:
            return None
        if grant.context.sid and not self.services.sso.is_active(grant.context.sid):
            return None  # the SSO session ended (logout) after the code was issued
        return RedeemedCode(grant)

    def delete_authorization_code(self, authorization_code: RedeemedCode) -> None:
        """Already consumed in query_authorization_code."""

    def save_authorization_code(self, code: str, request: Any) -> None:  # pragma: no cover
        raise NotImplementedError("codes are issued by idp.web.authorize")

    def authenticate_user(self, authorization_code: RedeemedCode) -> AuthContext:
        return with_entity_claim(self.services, authorization_code.grant.context)


class RefreshCredential:
    """The refresh token presented, as Authlib expects it."""

    def __init__(self, token: str, record: TokenRecord) -> None:
        self.token = token
        self.record = record

    def check_client(self, client: Any) -> bool:
        return bool(self.record.client_id == client.client_id)

    def get_scope(self) -> str:
        return self.record.scope

    def is_expired(self) -> bool:
        return False


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotate on every use
    services: ProviderServices

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshCredential | None:
        record = self.services.tokens.find(refresh_token)
        if record is None or record.kind != "refresh":
            return None
        return RefreshCredential(refresh_token, record)

    def authenticate_user(self, credential: RefreshCredential) -> AuthContext:
        # Validation only. The token is rotated in ProviderServer.save_token, in the transaction that
        # stores its successors; a used, revoked or expired token is refused there (REFRESH_REFUSED).
        record = credential.record
        if record.sid and not self.services.sso.is_active(record.sid):
            self.services.tokens.revoke_grant(record.grant_id)
            raise InvalidGrantError("The session of this refresh token has ended.")
        context = AuthContext(
            person_id=record.person_id,
            grant_id=record.grant_id,
            sid=record.sid,
            auth_time=record.auth_time,
            acr=record.acr,
            amr=record.amr,
            entity_id=record.entity_id,
        )
        try:
            return with_entity_claim(self.services, context)
        except InvalidGrantError:
            self.services.tokens.revoke_grant(record.grant_id)
            raise

    def revoke_old_credential(self, refresh_token: RefreshCredential) -> None:
        """Already marked rotated in ProviderServer.save_token."""


REFRESH_REFUSED = "The refresh token is invalid, expired, revoked or already used."


class InvalidTargetError(OAuth2Error):
    """RFC 8693 §2.2.2 / RFC 8707 §2: the server will not issue a token for this audience or resource."""

    error = "invalid_target"


MAX_AUDIENCE_LENGTH = 128  # a client_id


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """RFC 6749 §4.4. With `audience` (the logical-name parameter of RFC 8693 §2.1, a client_id; not
    RFC 8707 `resource`, which is an absolute URI), the token is meant for that service: aud = the
    audience, within the scopes the client's `audiences` metadata grants for it. Without: aud = the
    client itself, within the client's registered scope (admin:* included)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
    tokens: TokenFactory  # set on the subclass built per app

    def validate_token_request(self) -> None:
        super().validate_token_request()
        form = self.request.form
        if form.get("resource"):
            raise InvalidTargetError("Use 'audience' (a client_id), not 'resource'.")
        requested = (self.request.payload.scope or "").split()
        # RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
        audience = form.get("audience")
        if not audience:
            allowed = set(self.request.client.client.scope)
            if not set(requested) <= allowed or "openid" in requested:
                raise InvalidScopeError("The client may not request this scope.")
            return
        if len(audience) > MAX_AUDIENCE_LENGTH:
            raise InvalidRequestError("Parameter 'audience' is too long.")
        client: Client = self.request.client.client
        target = next((t for t in client.audiences if t.audience == audience), None)
        if target is None or self.server.query_client(audience) is None:
            raise InvalidTargetError("The client may not request tokens for this audience.")
        scope = tuple(dict.fromkeys(requested)) or target.scopes
        if not set(scope) <= set(target.scopes):
            raise InvalidScopeError("The scope is not allowed for this audience.")
        self.request.token_audience = target.audience  # read by create_token_response and save_token
        self.request.token_scope = " ".join(scope)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        audience = getattr(self.request, "token_audience", None)
        if audience is None:
            return super().create_token_response()  # type: ignore[no-any-return]
        token = self.tokens(
            self.GRANT_TYPE,
            self.request.client,
            scope=self.request.token_scope,
            include_refresh_token=False,
            audience=audience,
        )
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def with_entity_claim(services: ProviderServices, context: AuthContext) -> AuthContext:
    """Re-check, at every issuance, that the person may still act for the entity: a revoked or
    expired authorisation or a suspended entity stops the next token (and its refresh family)."""
    if context.entity_id is None or context.person_id is None:
        return context
    try:
        acting = services.entities.acting_as(context.person_id, context.entity_id)
    except (CannotActForEntity, EntityError) as exc:
        # RFC 6749 §5.2: error_description is ASCII, so the reason travels as its code.
        raise InvalidGrantError(f"The person may no longer act for this entity ({exc.code}).") from None
    return replace(context, entity_claim=acting.to_claim())


def new_grant_id() -> str:
    return secrets.token_urlsafe(16)
