"""Discovery and JWKS: consistent with behaviour, public keys only, served with ETags."""

from __future__ import annotations

import base64

from flows import ISSUER


def test_every_advertised_endpoint_answers(client, services):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["issuer"] == ISSUER
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "registration_endpoint",
    ):
        path = meta[name].removeprefix(ISSUER)
        assert meta[name].startswith(ISSUER + "/")
        response = (
            client.get(path)
            if name in ("jwks_uri", "end_session_endpoint", "userinfo_endpoint", "authorization_endpoint")
            else client.post(path, data={})
        )
        assert response.status_code not in (404, 405) and response.status_code < 500, (
            name,
            response.status_code,
        )


def test_advertised_methods_match_what_is_accepted(client, services):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    }
    assert set(meta["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["backchannel_logout_supported"] is True
    assert set(meta["prompt_values_supported"]) == {"none", "login", "consent", "select_account"}
    jwks = client.get("/jwks.json").get_json()
    published_algs = {key["alg"] for key in jwks["keys"]}
    assert set(meta["id_token_signing_alg_values_supported"]) <= published_algs


def test_jwks_holds_public_keys_only(client, services):
    jwks = client.get("/jwks.json").get_json()
    assert len(jwks["keys"]) >= 2
    for key in jwks["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key)
        assert key["use"] == "sig" and key["kid"]
        if key["kty"] == "RSA":
            assert len(base64.urlsafe_b64decode(key["n"] + "==")) * 8 >= 2048


def test_conditional_get_answers_304(client, services):
    for path in ("/.well-known/openid-configuration", "/jwks.json"):
        first = client.get(path)
        etag = first.headers["ETag"]
        assert "max-age" in first.headers["Cache-Control"]
        second = client.get(path, headers={"If-None-Match": etag})
        assert second.status_code == 304 and second.data == b""


def test_rotation_is_published_at_once(client, services):
    before = {k["kid"] for k in client.get("/jwks.json").get_json()["keys"]}
    new_kids = services.keys.rotate()
    after = {k["kid"] for k in client.get("/jwks.json").get_json()["keys"]}
    assert set(new_kids) <= after and before <= after


def test_health_endpoints(client, services):
    assert client.get("/healthz").data == b"ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.data == b"ready"
