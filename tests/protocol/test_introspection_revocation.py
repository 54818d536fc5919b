"""Token introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

import time

import pytest
from flows import PERSON, PORTAL, basic, login_for_code, redeem
from sqlalchemy import update

from idp.services.tokens import digest_token
from idp.store.models import TokenRow

OTHER = {
    **PORTAL,
    "client_id": "other",
    "client_name": "Other portal",
    "client_secret": "other-secret-0123456789-0123456789-abcdef",
    "redirect_uris": ["https://other.example/cb"],
    "post_logout_redirect_uris": [],
}
BATCH = {
    "client_id": "batch",
    "client_secret": "batch-secret-0123456789-0123456789-abcdef",
    "grant_types": ["client_credentials"],
    "token_endpoint_auth_method": "client_secret_post",
    "scope": "catalogue.read",
    "access_token_format": "opaque",
}


def introspect(client, token: str, as_client: dict = PORTAL, **extra: str):
    return client.post(
        "/introspect",
        data={"token": token, **extra},
        headers=basic(as_client["client_id"], as_client["client_secret"]),
    )


def info(client, token: str, as_client: dict = PORTAL) -> dict:
    response = introspect(client, token, as_client)
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def revoke(client, token: str, as_client: dict = PORTAL, **extra: str):
    return client.post(
        "/revoke",
        data={"token": token, **extra},
        headers=basic(as_client["client_id"], as_client["client_secret"]),
    )


def userinfo_status(client, access_token: str) -> int:
    return client.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"}).status_code


def refresh(client, refresh_token: str):
    return client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers=basic(PORTAL["client_id"], PORTAL["client_secret"]),
    )


@pytest.fixture
def tokens(client, services):
    services.clients.register(PORTAL)
    services.clients.register(OTHER)
    services.persons.upsert(PERSON)
    auth, result = login_for_code(client)
    response = redeem(client, result["code"], auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# -- introspection -------------------------------------------------------------------------------


def test_an_active_access_token(client, tokens):
    before = int(time.time())
    body = info(client, tokens["access_token"])
    assert body["active"] is True
    assert body["client_id"] == "portal"
    assert set(body["scope"].split()) == {"openid", "profile", "email"}
    assert isinstance(body["sub"], str) and body["sub"]
    assert body["token_type"] == "Bearer"
    assert body["iat"] <= int(time.time()) and body["iat"] >= before - 5
    assert body["exp"] > body["iat"]
    assert body["exp"] - body["iat"] == tokens["expires_in"]
    assert body["sid"] and body["acr"] and body["auth_time"]


def test_sub_matches_the_id_token(client, tokens):
    from joserfc import jwt
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    claims = jwt.decode(tokens["id_token"], keys).claims
    assert info(client, tokens["access_token"])["sub"] == claims["sub"]


def test_an_active_refresh_token(client, tokens):
    body = info(client, tokens["refresh_token"], PORTAL)
    assert body["active"] is True and body["client_id"] == "portal"
    assert body["token_type"] == "refresh_token"


def test_a_hint_does_not_change_the_answer(client, tokens):
    for hint in ("access_token", "refresh_token"):
        response = introspect(client, tokens["access_token"], token_type_hint=hint)
        assert response.status_code == 200 and response.get_json()["active"] is True


def test_another_clients_token_reads_as_inactive_and_nothing_else(client, tokens):
    for token in (tokens["access_token"], tokens["refresh_token"]):
        response = introspect(client, token, OTHER)
        assert response.status_code == 200
        assert response.get_json() == {"active": False}


def test_a_revoked_token_is_inactive(client, services, tokens):
    services.tokens.revoke(tokens["access_token"], "portal")
    assert info(client, tokens["access_token"]) == {"active": False}


def test_an_expired_token_is_inactive(client, services, tokens):
    with services.tokens.engine().begin() as conn:
        conn.execute(
            update(TokenRow)
            .where(TokenRow.digest == digest_token(tokens["access_token"]))
            .values(expires_at=int(time.time()) - 1)
        )
    assert info(client, tokens["access_token"]) == {"active": False}
    assert userinfo_status(client, tokens["access_token"]) == 401


@pytest.mark.parametrize("token", ["unknown", "x" * 9000, "eyJhbGciOiJub25lIn0.e30.", "令牌"])
def test_an_unknown_token_is_inactive(client, tokens, token):
    assert info(client, token) == {"active": False}


def test_tokens_of_an_ended_session_are_inactive(client, services, tokens):
    from joserfc import jwt
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    sid = jwt.decode(tokens["id_token"], keys).claims["sid"]
    services.sso.end(sid)  # the session alone, without revoking the tokens
    assert info(client, tokens["access_token"]) == {"active": False}


def test_a_client_credentials_token(client, services, tokens):
    services.clients.register(BATCH)
    issued = client.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "scope": "catalogue.read",
            "client_id": "batch",
            "client_secret": BATCH["client_secret"],
        },
    ).get_json()
    response = client.post(
        "/introspect",
        data={"token": issued["access_token"], "client_id": "batch", "client_secret": BATCH["client_secret"]},
    )
    body = response.get_json()
    assert body["active"] is True and body["sub"] == "batch" and body["scope"] == "catalogue.read"
    assert "sid" not in body and "auth_time" not in body


def test_introspection_requires_client_authentication(client, tokens):
    response = client.post("/introspect", data={"token": tokens["access_token"]})
    assert response.status_code == 401, response.get_json()
    assert response.get_json()["error"] == "invalid_client"
    assert "active" not in response.get_json()
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    wrong = introspect(client, tokens["access_token"], {**PORTAL, "client_secret": "wrong" * 8})
    assert wrong.status_code == 401 and "active" not in wrong.get_json()


def test_introspection_without_a_token_is_invalid_request(client, tokens):
    response = client.post(
        "/introspect", data={}, headers=basic(PORTAL["client_id"], PORTAL["client_secret"])
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_an_unknown_hint_is_ignored(client, tokens):
    """RFC 7662 §2.1: the server extends its search across all token types."""
    response = introspect(client, tokens["access_token"], token_type_hint="id_token")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["active"] is True
    response = introspect(client, tokens["refresh_token"], token_type_hint="access_token")
    assert response.get_json()["active"] is True


# -- revocation ----------------------------------------------------------------------------------


def test_revoking_an_access_token_takes_effect_at_once(client, tokens):
    assert userinfo_status(client, tokens["access_token"]) == 200
    response = revoke(client, tokens["access_token"], token_type_hint="access_token")
    assert response.status_code == 200, response.get_json()
    assert info(client, tokens["access_token"]) == {"active": False}
    assert userinfo_status(client, tokens["access_token"]) == 401
    # RFC 7009 §2.1: revoking an access token need not touch the refresh token
    assert info(client, tokens["refresh_token"])["active"] is True


def test_revoking_a_refresh_token_revokes_its_family(client, tokens):
    rotated = refresh(client, tokens["refresh_token"]).get_json()
    response = revoke(client, rotated["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200, response.get_json()
    for access in (tokens["access_token"], rotated["access_token"]):
        assert info(client, access) == {"active": False}
        assert userinfo_status(client, access) == 401
    assert info(client, rotated["refresh_token"]) == {"active": False}
    refused = refresh(client, rotated["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"


def test_revoking_a_refresh_token_leaves_other_grants_alone(client, tokens):
    auth, result = login_for_code(client)
    second = redeem(client, result["code"], auth).get_json()
    assert revoke(client, tokens["refresh_token"]).status_code == 200
    assert info(client, second["access_token"])["active"] is True
    assert refresh(client, second["refresh_token"]).status_code == 200


def test_revoking_another_clients_token_answers_200_but_changes_nothing(client, tokens):
    for token in (tokens["access_token"], tokens["refresh_token"]):
        response = revoke(client, token, OTHER)
        assert response.status_code == 200, response.get_json()
    assert info(client, tokens["access_token"])["active"] is True
    assert info(client, tokens["refresh_token"])["active"] is True
    assert userinfo_status(client, tokens["access_token"]) == 200


@pytest.mark.parametrize("token", ["unknown", "x" * 9000, "令牌"])
def test_revoking_an_unknown_token_answers_200(client, tokens, token):
    response = revoke(client, token)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_revocation_ignores_a_wrong_or_unknown_hint(client, tokens):
    """RFC 7009 §2.1: the hint is only a hint."""
    response = revoke(client, tokens["access_token"], token_type_hint="refresh_token")
    assert response.status_code == 200, response.get_json()
    assert info(client, tokens["access_token"]) == {"active": False}
    response = revoke(client, tokens["refresh_token"], token_type_hint="bogus")
    assert response.status_code == 200, response.get_json()
    assert info(client, tokens["refresh_token"]) == {"active": False}


def test_revoking_twice_answers_200(client, tokens):
    assert revoke(client, tokens["access_token"]).status_code == 200
    assert revoke(client, tokens["access_token"]).status_code == 200


def test_revocation_requires_client_authentication(client, tokens):
    response = client.post("/revoke", data={"token": tokens["access_token"]})
    assert response.status_code == 401, response.get_json()
    assert response.get_json()["error"] == "invalid_client"
    assert info(client, tokens["access_token"])["active"] is True
    wrong = revoke(client, tokens["access_token"], {**PORTAL, "client_secret": "wrong" * 8})
    assert wrong.status_code == 401
    assert info(client, tokens["access_token"])["active"] is True


def test_revocation_without_a_token_is_invalid_request(client, tokens):
    response = client.post("/revoke", data={}, headers=basic(PORTAL["client_id"], PORTAL["client_secret"]))
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
