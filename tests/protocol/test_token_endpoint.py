"""Token endpoint, authorization_code grant (RFC 6749 §4.1.3, §5.2; RFC 7636 §4.6).

A code is single use; its reuse revokes what it issued; PKCE S256 and redirect_uri binding are enforced.
"""

from __future__ import annotations

import time

import pytest
from flows import PERSON, PORTAL, basic, login_for_code, pkce_pair, redeem

OTHER = {
    **PORTAL,
    "client_id": "other",
    "client_name": "Other portal",
    "client_secret": "other-secret-0123456789-0123456789-abcdef",
    "redirect_uris": ["https://other.example/cb"],
    "post_logout_redirect_uris": [],
}


def introspect(client, token: str, as_client: dict = PORTAL) -> dict:
    response = client.post(
        "/introspect",
        data={"token": token},
        headers=basic(as_client["client_id"], as_client["client_secret"]),
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def userinfo_status(client, access_token: str) -> int:
    return client.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"}).status_code


def token_request(client, data: dict, as_client: dict = PORTAL):
    return client.post("/token", data=data, headers=basic(as_client["client_id"], as_client["client_secret"]))


def assert_error(response, status: int, error: str) -> None:
    body = response.get_json()
    assert response.status_code == status, (response.status_code, body)
    assert body["error"] == error, body
    assert "access_token" not in body
    assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture
def portal(client, services):
    services.clients.register(PORTAL)
    services.persons.upsert(PERSON)
    return client


def test_a_code_is_redeemed_once(portal):
    auth, result = login_for_code(portal)
    first = redeem(portal, result["code"], auth)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["access_token"] and body["refresh_token"] and body["id_token"]
    assert set(body["scope"].split()) == {"openid", "profile", "email"}
    assert first.headers["Pragma"] == "no-cache"
    assert introspect(portal, body["access_token"])["active"] is True
    assert userinfo_status(portal, body["access_token"]) == 200


def test_a_reused_code_fails_and_revokes_what_it_issued(portal):
    auth, result = login_for_code(portal)
    first = redeem(portal, result["code"], auth).get_json()
    second = redeem(portal, result["code"], auth)
    assert_error(second, 400, "invalid_grant")
    # RFC 6749 §4.1.2: the tokens issued for the code are revoked.
    assert introspect(portal, first["access_token"]) == {"active": False}
    assert introspect(portal, first["refresh_token"]) == {"active": False}
    assert userinfo_status(portal, first["access_token"]) == 401
    refresh = token_request(portal, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert_error(refresh, 400, "invalid_grant")


def test_reuse_does_not_touch_tokens_of_other_grants(portal):
    auth, result = login_for_code(portal)
    first = redeem(portal, result["code"], auth).get_json()
    auth2, result2 = login_for_code(portal)
    other_grant = redeem(portal, result2["code"], auth2).get_json()
    assert redeem(portal, result["code"], auth).status_code == 400
    assert introspect(portal, first["access_token"]) == {"active": False}
    assert introspect(portal, other_grant["access_token"])["active"] is True


def test_wrong_code_verifier_is_invalid_grant(portal):
    auth, result = login_for_code(portal)
    auth.verifier, _ = pkce_pair()
    assert_error(redeem(portal, result["code"], auth), 400, "invalid_grant")


def test_code_verifier_of_the_plain_challenge_is_refused(portal):
    """The challenge itself as verifier (a `plain` downgrade) does not pass S256."""
    auth, result = login_for_code(portal)
    auth.verifier = auth.params["code_challenge"]
    assert_error(redeem(portal, result["code"], auth), 400, "invalid_grant")


def test_missing_code_verifier_is_invalid_request(portal):
    auth, result = login_for_code(portal)
    response = token_request(
        portal,
        {
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": auth.params["redirect_uri"],
        },
    )
    assert_error(response, 400, "invalid_request")


def test_malformed_code_verifier_is_invalid_request(portal):
    auth, result = login_for_code(portal)
    auth.verifier = "short"
    assert_error(redeem(portal, result["code"], auth), 400, "invalid_request")


def test_a_code_is_spent_by_a_failed_pkce_attempt(portal):
    """A wrong verifier burns the code: the right one cannot be tried afterwards (no guessing)."""
    auth, result = login_for_code(portal)
    right = auth.verifier
    auth.verifier, _ = pkce_pair()
    assert redeem(portal, result["code"], auth).status_code == 400
    auth.verifier = right
    assert_error(redeem(portal, result["code"], auth), 400, "invalid_grant")


def test_redirect_uri_must_match_the_authorization_request(services, portal):
    services.clients.register(
        {**PORTAL, "redirect_uris": [*PORTAL["redirect_uris"], "https://portal.example/cb2"]}
    )
    auth, result = login_for_code(portal)
    auth.params["redirect_uri"] = "https://portal.example/cb2"  # registered, but not the one used
    assert_error(redeem(portal, result["code"], auth), 400, "invalid_grant")


def test_missing_redirect_uri_is_refused(portal):
    auth, result = login_for_code(portal)
    response = token_request(
        portal, {"grant_type": "authorization_code", "code": result["code"], "code_verifier": auth.verifier}
    )
    assert response.status_code == 400
    assert response.get_json()["error"] in ("invalid_grant", "invalid_request")


def test_a_code_issued_to_another_client_is_invalid_grant(services, portal):
    services.clients.register(OTHER)
    auth, result = login_for_code(portal)
    response = token_request(
        portal,
        {
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": auth.params["redirect_uri"],
            "code_verifier": auth.verifier,
        },
        as_client=OTHER,
    )
    assert_error(response, 400, "invalid_grant")


def test_unknown_code_is_invalid_grant(portal):
    auth, _ = login_for_code(portal)
    assert_error(redeem(portal, "not-a-code", auth), 400, "invalid_grant")


def test_missing_code_is_invalid_request(portal):
    auth, _ = login_for_code(portal)
    response = token_request(
        portal,
        {
            "grant_type": "authorization_code",
            "redirect_uri": auth.params["redirect_uri"],
            "code_verifier": auth.verifier,
        },
    )
    assert_error(response, 400, "invalid_request")


def test_client_without_the_grant_type_is_unauthorized_client(services, portal):
    services.clients.register({**PORTAL, "grant_types": ["authorization_code"]})
    auth, result = login_for_code(portal)
    tokens = redeem(portal, result["code"], auth).get_json()
    assert "refresh_token" not in tokens  # Authlib issues one only when the client may refresh
    response = token_request(portal, {"grant_type": "client_credentials"})
    assert_error(response, 400, "unauthorized_client")


def test_an_expired_code_is_invalid_grant(settings, services):
    """code_ttl=1 on a second app over the same database and ephemeral store (SQL table or Redis)."""
    from idp.app import build_services, create_app

    short = settings.with_overrides(code_ttl=1)
    short_services = build_services(short)
    try:
        app = create_app(short, short_services)
        app.config["TESTING"] = True
        test_client = app.test_client()
        short_services.clients.register(PORTAL)
        short_services.persons.upsert(PERSON)
        auth, result = login_for_code(test_client)
        time.sleep(1.1)
        assert_error(redeem(test_client, result["code"], auth), 400, "invalid_grant")
        # Control: a fresh code redeemed at once still works on this app.
        auth, result = login_for_code(test_client)
        assert redeem(test_client, result["code"], auth).status_code == 200
    finally:
        short_services.tokens.dispose()
