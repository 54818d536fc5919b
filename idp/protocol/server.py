"""The Authlib authorization server, built once per app: grants, client authentication, endpoints."""

from __future__ import annotations

import time
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidGrantError

from idp.domain.models import AuthContext
from idp.protocol.client_auth import PrivateKeyJwt
from idp.protocol.clients import OAuthClient
from idp.protocol.endpoints import TokenIntrospection, TokenRevocation
from idp.protocol.grants import (
    REFRESH_REFUSED,
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshCredential,
    RefreshTokenGrant,
    new_grant_id,
)
from idp.protocol.oidc import IdTokenIssuer
from idp.protocol.pkce import RequireS256
from idp.protocol.token_exchange import TokenExchangeGrant
from idp.protocol.token_format import TokenFactory, jwt_times
from idp.services.provider import ProviderServices
from idp.services.token_exchange import TokenExchangeService
from idp.services.tokens import RefreshRejected


class ProviderServer(AuthorizationServer):
    """Holds no per-request state; safe to share across threads."""

    def __init__(self, services: ProviderServices, *, refresh_ttl: int) -> None:
        super().__init__()
        self.services = services
        self._refresh_ttl = refresh_ttl

    def query_client(self, client_id: str) -> OAuthClient | None:
        if not isinstance(client_id, str) or not client_id or len(client_id) > 128:
            return None
        client = self.services.clients.get(client_id)
        return OAuthClient(client, self.services.clients.verify_secret) if client is not None else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Store SHA-256 digests only (never the tokens), tied to the grant they belong to."""
        now = int(time.time())
        # a JWT's own iat and exp, so that its record agrees with its claims to the second
        issued_at, expires_at = jwt_times(token["access_token"]) or (now, now + int(token["expires_in"]))
        context = request.user if isinstance(request.user, AuthContext) else AuthContext(None, new_grant_id())
        refresh = token.get("refresh_token")
        audience = getattr(request, "token_audience", None)  # client credentials for another service
        rotated = getattr(request, "refresh_token", None)  # refresh grant: the token being replaced
        try:
            self.services.tokens.save(
                client_id=request.client.client_id,
                scope=token.get("scope", ""),
                context=context,
                access_token=token["access_token"],
                access_expires_at=expires_at,
                refresh_token=refresh,
                refresh_expires_at=issued_at + self._refresh_ttl if refresh else None,
                audience=audience,
                rotates=rotated.token if isinstance(rotated, RefreshCredential) else None,
                issued_at=issued_at,
            )
        except RefreshRejected:
            raise InvalidGrantError(REFRESH_REFUSED) from None
        self.services.audit.record(
            "token.issued",
            actor=request.client.client_id,
            subject=context.person_id,
            client_id=request.client.client_id,
            purpose=token.get("scope", ""),
            details={
                "grant_type": request.payload.grant_type,
                "refresh_token": bool(refresh),
                **({"audience": audience} if audience else {}),
            },
        )
        # A reuse of the code that raced this redemption may have revoked the grant before these
        # tokens existed: check once more, now that they do (RFC 6749 §4.1.2).
        if request.payload.grant_type == "authorization_code" and self.services.codes.is_grant_revoked(
            context.grant_id
        ):
            self.services.tokens.revoke_grant(context.grant_id)


def build_server(
    services: ProviderServices,
    *,
    token_endpoint: str,
    access_ttl: int,
    id_token_ttl: int,
    refresh_ttl: int,
    access_token_alg: str = "RS256",  # noqa: S107 - an algorithm name, not a secret
) -> ProviderServer:
    server = ProviderServer(services, refresh_ttl=refresh_ttl)
    token_factory = TokenFactory(
        issuer=services.issuer, keys=services.keys, access_ttl=access_ttl, alg=access_token_alg
    )
    server.register_token_generator("default", token_factory)
    server.register_client_auth_method(
        PrivateKeyJwt.CLIENT_AUTH_METHOD,
        PrivateKeyJwt(
            services.issuer, token_endpoint, lambda key, ttl: services.ephemeral.add(key, "1", ttl)
        ),
    )
    code_grant = type("CodeGrant", (AuthorizationCodeGrant,), {"services": services})
    refresh_grant = type("RefreshGrant", (RefreshTokenGrant,), {"services": services})
    server.register_grant(code_grant, [RequireS256(), IdTokenIssuer(services, id_token_ttl)])
    server.register_grant(refresh_grant)
    server.register_grant(type("ClientCredentials", (ClientCredentialsGrant,), {"tokens": token_factory}))
    exchange = TokenExchangeService(
        clients=services.clients,
        tokens=services.tokens,
        consent=services.consent,
        sso=services.sso,
        audit=services.audit,
        access_ttl=access_ttl,
    )
    server.register_grant(
        type(
            "ExchangeGrant",
            (TokenExchangeGrant,),
            {"services": services, "exchange": exchange, "tokens": token_factory},
        )
    )
    server.register_endpoint(type("Revocation", (TokenRevocation,), {"services": services}))
    server.register_endpoint(type("Introspection", (TokenIntrospection,), {"services": services}))
    return server
