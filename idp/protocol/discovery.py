"""Discovery metadata (OIDC Discovery 1.0 §3, RFC 8414): only what the provider really does."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from idp.protocol.claims import SUPPORTED_SCOPES
from idp.protocol.client_auth import ASSERTION_ALGS
from idp.protocol.endpoints import ENDPOINT_AUTH_METHODS
from idp.protocol.grants import TOKEN_AUTH_METHODS
from idp.services.registration import REGISTRATION_PATH

PROMPT_VALUES = ("none", "login", "consent", "select_account")
UI_LOCALES = ("zh-CN", "en")


def build_metadata(issuer: str, acr_values: tuple[str, ...]) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks.json",
        "end_session_endpoint": f"{issuer}/logout",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "registration_endpoint": f"{issuer}{REGISTRATION_PATH}",  # RFC 7591, with an initial access token
        # The standard scopes only: resource scopes (`<service>:<permission>`, see claims.py) exist per
        # client registration, and listing them would publish every service's permissions; RFC 8414
        # §2 lets a server leave supported scopes unadvertised.
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",  # RFC 8693, for configured clients
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": ENDPOINT_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": ENDPOINT_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "sid",
            "azp",
            "name",
            "preferred_username",
            "email",
            "email_verified",
            "phone_number",
            "phone_number_verified",
            "entity",
        ],
        "acr_values_supported": list(acr_values),
        "prompt_values_supported": list(PROMPT_VALUES),
        "ui_locales_supported": list(UI_LOCALES),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
    }


def encode_document(document: dict[str, Any]) -> tuple[bytes, str]:
    """Precomputed JSON bytes and a strong ETag, served from memory."""
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
