"""Authorization code flow with PKCE: code → tokens → ID token claims."""

from __future__ import annotations

from flows import ISSUER, PERSON, PORTAL, login_for_code, redeem
from joserfc import jwt
from joserfc.jwk import KeySet


def test_code_flow_issues_tokens_and_a_valid_id_token(client, services):
    services.clients.register(PORTAL)
    services.persons.upsert(PERSON)
    auth, result = login_for_code(client)
    assert result["iss"] == ISSUER
    assert result["state"] == auth.params["state"]
    response = redeem(client, result["code"], auth)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert response.headers["Cache-Control"] == "no-store"
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    id_token = jwt.decode(body["id_token"], keys, algorithms=["RS256"])
    claims = id_token.claims
    assert claims["iss"] == ISSUER and claims["aud"] == "portal" and claims["azp"] == "portal"
    assert claims["nonce"] == auth.params["nonce"]
    assert isinstance(claims["sub"], str) and claims["sid"] and claims["at_hash"]
    assert claims["acr"] == "urn:cn:gov:loa:2" and claims["amr"] == ["pwd"]
    assert not {"name", "email", "phone_number", "preferred_username"} & set(
        claims
    )  # personal data: userinfo only
    access = jwt.decode(body["access_token"], keys, algorithms=["RS256"])
    assert access.header["typ"] == "at+jwt"
    assert access.claims["client_id"] == "portal" and access.claims["sid"] == claims["sid"]
