"""Authlib's view of a registered client: the ClientMixin over our frozen Client."""

from __future__ import annotations

from collections.abc import Callable

from authlib.oauth2.rfc6749 import ClientMixin

from idp.domain.models import Client


class OAuthClient(ClientMixin):
    """Adapter used only inside protocol/; it never leaves this layer."""

    def __init__(self, client: Client, verify_secret: Callable[[Client, str], bool]) -> None:
        self.client = client
        self._verify_secret = verify_secret

    @property
    def client_id(self) -> str:
        return self.client.client_id

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # OIDC Core §3.1.2.1: redirect_uri is always required

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        allowed = set(self.client.scope)
        return " ".join(s for s in dict.fromkeys(scope.split()) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris  # exact string match (RFC 9700 §4.1.3)

    def check_client_secret(self, client_secret: str) -> bool:
        return self._verify_secret(self.client, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.client.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.client.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.client.grant_types
