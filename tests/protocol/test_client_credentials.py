"""client_credentials grant (RFC 6749 §4.4) and its access tokens: JWT per RFC 9068, or opaque."""

from __future__ import annotations

import time

import pytest
from flows import ISSUER, PORTAL, basic
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.services.clients import ClientMetadataError

BATCH = {
    "client_id": "batch",
    "client_name": "Batch job",
    "client_secret": "batch-secret-0123456789-0123456789-abcdef",
    "grant_types": ["client_credentials"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "catalogue.read cases.read openid",
}
BATCH_POST = {
    **BATCH,
    "client_id": "batch-post",
    "token_endpoint_auth_method": "client_secret_post",
}
BATCH_OPAQUE = {**BATCH, "client_id": "batch-opaque", "access_token_format": "opaque"}
SPA = {
    "client_id": "spa",
    "client_name": "Single-page app",
    "redirect_uris": ["https://spa.example/cb"],
    "grant_types": ["authorization_code"],
    "token_endpoint_auth_method": "none",
    "scope": "openid profile catalogue.read",
}


def request_token(client, registered: dict = BATCH, **form: str):
    return client.post(
        "/token",
        data={"grant_type": "client_credentials", **form},
        headers=basic(registered["client_id"], registered["client_secret"]),
    )


def introspect(client, token: str, as_client: dict = BATCH) -> dict:
    response = client.post(
        "/introspect",
        data={"token": token},
        headers=basic(as_client["client_id"], as_client["client_secret"]),
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def registered(services):
    for metadata in (BATCH, BATCH_POST, BATCH_OPAQUE):
        services.clients.register(metadata)


def test_client_secret_basic(client, registered):
    response = request_token(client, scope="catalogue.read")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["scope"] == "catalogue.read"
    assert "refresh_token" not in body and "id_token" not in body
    assert response.headers["Cache-Control"] == "no-store"
    assert introspect(client, body["access_token"])["active"] is True


def test_client_secret_post(client, registered):
    response = client.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": BATCH_POST["client_id"],
            "client_secret": BATCH_POST["client_secret"],
            "scope": "cases.read",
        },
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["scope"] == "cases.read"


def test_several_scopes_within_the_registered_ones(client, registered):
    response = request_token(client, scope="catalogue.read cases.read")
    assert response.status_code == 200, response.get_json()
    assert set(response.get_json()["scope"].split()) == {"catalogue.read", "cases.read"}


@pytest.mark.parametrize("scope", ["admin", "catalogue.read admin", "catalogue.write"])
def test_scope_outside_the_registered_scope_is_invalid_scope(client, registered, scope):
    response = request_token(client, scope=scope)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid_scope"


@pytest.mark.parametrize("scope", ["openid", "openid catalogue.read"])
def test_openid_is_refused_even_when_registered(client, registered, scope):
    response = request_token(client, scope=scope)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid_scope"


def test_a_public_client_cannot_register_for_client_credentials(services):
    with pytest.raises(ClientMetadataError):
        services.clients.register({**SPA, "grant_types": ["authorization_code", "client_credentials"]})


def test_a_public_client_cannot_use_client_credentials(client, services):
    services.clients.register(SPA)
    response = client.post(
        "/token", data={"grant_type": "client_credentials", "client_id": "spa", "scope": "catalogue.read"}
    )
    assert response.status_code in (400, 401), response.get_json()
    assert response.get_json()["error"] in ("invalid_client", "unauthorized_client")
    assert "access_token" not in response.get_json()


def test_a_client_not_registered_for_the_grant_is_refused(client, services):
    services.clients.register(PORTAL)
    response = request_token(client, PORTAL, scope="profile")
    assert response.status_code == 400
    assert response.get_json()["error"] == "unauthorized_client"


def test_access_tokens_signed_with_es256_when_configured(settings, services, registered):
    from idp.app import create_app

    client = create_app(settings.with_overrides(access_token_alg="ES256"), services).test_client()
    body = request_token(client, scope="catalogue.read").get_json()
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    token = jwt.decode(body["access_token"], keys, algorithms=["ES256"])
    assert token.header["alg"] == "ES256" and token.header["typ"] == "at+jwt"
    assert token.claims["client_id"] == "batch"
    assert introspect(client, body["access_token"])["active"] is True


def test_an_unknown_access_token_alg_is_a_settings_error():
    from idp.settings import Settings

    with pytest.raises(ValueError, match="IDP_ACCESS_TOKEN_ALG"):
        Settings.from_env({"IDP_ACCESS_TOKEN_ALG": "HS256"})


def test_jwt_access_token_per_rfc_9068(client, registered):
    before = int(time.time())
    body = request_token(client, scope="catalogue.read").get_json()
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    token = jwt.decode(body["access_token"], keys, algorithms=["RS256"])
    assert token.header["typ"] == "at+jwt"
    assert token.header["kid"] in {key["kid"] for key in client.get("/jwks.json").get_json()["keys"]}
    claims = token.claims
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "batch" and claims["client_id"] == "batch"
    assert claims["aud"] == "batch"
    assert claims["scope"] == "catalogue.read"
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + body["expires_in"]
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert "auth_time" not in claims and "sid" not in claims
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER}, exp={"essential": True}, iat={"essential": True}
    ).validate(claims)
    other = request_token(client, scope="catalogue.read").get_json()
    assert jwt.decode(other["access_token"], keys).claims["jti"] != claims["jti"]


def test_jwt_access_token_is_refused_with_a_foreign_key(client, registered):
    """Control for the JWKS check above: another key does not verify the token."""
    from joserfc.errors import BadSignatureError
    from joserfc.jwk import RSAKey

    body = request_token(client, scope="catalogue.read").get_json()
    with pytest.raises(BadSignatureError):
        jwt.decode(body["access_token"], RSAKey.generate_key(2048), algorithms=["RS256"])


def test_opaque_access_token(client, registered):
    response = request_token(client, BATCH_OPAQUE, scope="catalogue.read")
    assert response.status_code == 200, response.get_json()
    token = response.get_json()["access_token"]
    assert token.count(".") == 0 and len(token) >= 43  # not a JWT; 256 bits of randomness
    info = introspect(client, token, as_client=BATCH_OPAQUE)
    assert info["active"] is True
    assert info["client_id"] == "batch-opaque" and info["sub"] == "batch-opaque"
    assert info["scope"] == "catalogue.read" and info["token_type"] == "Bearer"


def test_client_credentials_tokens_do_not_open_userinfo(client, registered):
    body = request_token(client, scope="catalogue.read").get_json()
    response = client.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_stored_times_are_the_jwt_iat_and_exp_even_when_the_clock_ticks_before_storing(
    client, registered, services, monkeypatch
):
    """Signing and storing happen in different seconds now and then; the record must not outlive the
    token's own `exp` (an exchanged token is capped by the record, RFC 8693 §2.2.1 expires_in)."""
    import types

    import idp.protocol.server as server_module

    later = types.SimpleNamespace(time=lambda: time.time() + 5)  # storing 5 s after signing
    monkeypatch.setattr(server_module, "time", later)
    body = request_token(client, scope="catalogue.read").get_json()
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    claims = jwt.decode(body["access_token"], keys).claims
    record = services.tokens.find(body["access_token"])
    assert record is not None and (record.issued_at, record.expires_at) == (claims["iat"], claims["exp"])
