"""The token-exchange grant (RFC 8693): a client trades a person's access token it holds for an RFC 9068
JWT access token meant for another service, with `act` naming the client (§4.1). No refresh token."""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
    grants,
)

from idp.protocol.grants import InvalidTargetError, with_entity_claim
from idp.protocol.token_format import TokenFactory
from idp.services.provider import ProviderServices
from idp.services.token_exchange import ExchangeRefused, TokenExchangeService

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
MAX_TOKEN_LENGTH = 8192
MAX_PARAM_LENGTH = 2048


ERRORS: dict[str, type[OAuth2Error]] = {
    "invalid_request": InvalidRequestError,
    "unauthorized_client": UnauthorizedClientError,
    "invalid_grant": InvalidGrantError,
    "invalid_scope": InvalidScopeError,
    "invalid_target": InvalidTargetError,
}


class TokenExchangeGrant(grants.BaseGrant, grants.TokenEndpointMixin):
    GRANT_TYPE = GRANT_TYPE
    # "none" lets a public client through authentication so that it is told unauthorized_client.
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    services: ProviderServices  # these three are set on the subclass built per app
    exchange: TokenExchangeService
    tokens: TokenFactory

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        self.request.client = client

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client = self.request.client
        form = self.request.form
        audience = form.get("audience")
        person_id: str | None = None
        try:
            self.exchange.check_client(client.client)
            subject_token, audience, scope = read_parameters(form)
            subject = self.exchange.subject_of(client.client, subject_token)
            person_id = subject.person_id
            decided = self.exchange.decide(client.client, subject, audience, scope)
            try:
                context = with_entity_claim(self.services, decided.context)
            except InvalidGrantError as exc:
                raise ExchangeRefused(
                    "invalid_request", "entity_authority_ended", str(exc.description)
                ) from None
            now = int(time.time())
            access_token = self.tokens.encode_jwt_access_token(
                client.client_id,
                context,
                " ".join(decided.scope),
                max(1, decided.expires_at - now),
                audience=decided.audience,
                actor=client.client_id,
                expires_at=decided.expires_at,
            )
        except ExchangeRefused as refused:
            self.exchange.refused(
                client.client_id,
                refused.reason,
                person_id=person_id,
                audience=audience if isinstance(audience, str) else None,
                scope=form.get("scope"),
            )
            raise ERRORS[refused.error](refused.description) from None
        self.exchange.issued(decided, access_token)
        body = {
            "access_token": access_token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": max(1, decided.expires_at - int(time.time())),
            "scope": " ".join(decided.scope),
        }
        return 200, body, self.TOKEN_RESPONSE_HEADER


def read_parameters(form: Any) -> tuple[str, str, str | None]:
    """subject_token, audience and scope, or ExchangeRefused(invalid_request / invalid_target)."""

    def bad(reason: str, description: str) -> ExchangeRefused:
        return ExchangeRefused("invalid_request", reason, description)

    for name in ("subject_token", "subject_token_type", "audience"):
        if not form.get(name):
            raise bad("missing_parameter", f"Missing '{name}' parameter.")
    for name in ("actor_token", "actor_token_type"):
        if name in form:
            raise bad("actor_token", "Delegation with an actor token is not supported.")
    if form.get("resource"):
        raise ExchangeRefused("invalid_target", "resource", "Use 'audience' (a client_id), not 'resource'.")
    for name, limit in (("subject_token", MAX_TOKEN_LENGTH), ("audience", 128), ("scope", MAX_PARAM_LENGTH)):
        if len(form.get(name) or "") > limit:
            raise bad("too_long", f"Parameter '{name}' is too long.")
    if form["subject_token_type"] != ACCESS_TOKEN_TYPE:
        raise bad("subject_token_type", "Only access tokens can be exchanged (subject_token_type).")
    if form.get("requested_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
        raise bad("requested_token_type", "Only access tokens can be issued (requested_token_type).")
    return form["subject_token"], form["audience"], form.get("scope")
