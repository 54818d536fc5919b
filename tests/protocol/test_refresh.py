"""refresh_token grant (RFC 6749 §6; RFC 9700 §4.14.2): rotation, grace window, replay revokes the family."""

from __future__ import annotations

import pytest
from flows import PERSON, PORTAL, basic, login_for_code, redeem
from joserfc import jwt
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


def refresh(client, refresh_token: str, as_client: dict = PORTAL, **extra: str):
    return client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, **extra},
        headers=basic(as_client["client_id"], as_client["client_secret"]),
    )


def introspect(client, token: str) -> dict:
    response = client.post(
        "/introspect", data={"token": token}, headers=basic(PORTAL["client_id"], PORTAL["client_secret"])
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def userinfo_status(client, access_token: str) -> int:
    return client.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"}).status_code


def assert_invalid_grant(response) -> None:
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == "invalid_grant", body
    assert "access_token" not in body and "refresh_token" not in body


def age_rotation(services, refresh_token: str, seconds: int) -> None:
    """Move the moment a refresh token was rotated into the past (deterministic, no sleep)."""
    with services.tokens.engine().begin() as conn:
        changed = conn.execute(
            update(TokenRow)
            .where(TokenRow.digest == digest_token(refresh_token))
            .values(rotated_at=TokenRow.rotated_at - seconds)
        ).rowcount
    assert changed == 1


@pytest.fixture
def tokens(client, services):
    services.clients.register(PORTAL)
    services.persons.upsert(PERSON)
    auth, result = login_for_code(client)
    response = redeem(client, result["code"], auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_refresh_rotates_on_every_use(client, tokens):
    first = refresh(client, tokens["refresh_token"])
    assert first.status_code == 200, first.get_json()
    one = first.get_json()
    assert one["refresh_token"] != tokens["refresh_token"]
    assert one["access_token"] != tokens["access_token"]
    assert first.headers["Cache-Control"] == "no-store"
    second = refresh(client, one["refresh_token"])
    assert second.status_code == 200, second.get_json()
    two = second.get_json()
    assert two["refresh_token"] not in (one["refresh_token"], tokens["refresh_token"])
    assert userinfo_status(client, two["access_token"]) == 200
    assert introspect(client, tokens["refresh_token"]) == {"active": False}  # rotated away


def test_refreshed_tokens_keep_the_grant_and_the_scope(client, tokens):
    body = refresh(client, tokens["refresh_token"]).get_json()
    assert set(body["scope"].split()) == set(tokens["scope"].split())
    old = jwt.decode(tokens["access_token"], _keys(client)).claims
    new = jwt.decode(body["access_token"], _keys(client)).claims
    assert new["sub"] == old["sub"] and new["sid"] == old["sid"] and new["client_id"] == "portal"
    assert new["jti"] != old["jti"]


def test_refresh_may_narrow_but_not_widen_the_scope(client, tokens):
    narrowed = refresh(client, tokens["refresh_token"], scope="openid profile")
    assert narrowed.status_code == 200, narrowed.get_json()
    assert set(narrowed.get_json()["scope"].split()) == {"openid", "profile"}
    widened = refresh(client, narrowed.get_json()["refresh_token"], scope="openid profile phone")
    assert widened.status_code == 400
    assert widened.get_json()["error"] == "invalid_scope"


def test_a_rotated_token_within_the_grace_window_is_refused_without_revoking(client, tokens):
    successor = refresh(client, tokens["refresh_token"]).get_json()
    retry = refresh(client, tokens["refresh_token"])  # a concurrent retry, default grace 10 s
    assert_invalid_grant(retry)
    assert introspect(client, successor["access_token"])["active"] is True
    after = refresh(client, successor["refresh_token"])
    assert after.status_code == 200, after.get_json()


def test_replay_after_the_grace_window_revokes_the_whole_family(client, services, tokens):
    successor = refresh(client, tokens["refresh_token"]).get_json()
    age_rotation(services, tokens["refresh_token"], 11)  # grace is 10 s
    assert_invalid_grant(refresh(client, tokens["refresh_token"]))
    assert_invalid_grant(refresh(client, successor["refresh_token"]))
    for access in (tokens["access_token"], successor["access_token"]):
        assert introspect(client, access) == {"active": False}
        assert userinfo_status(client, access) == 401
    assert introspect(client, successor["refresh_token"]) == {"active": False}


def test_replay_with_zero_grace_revokes_the_family(settings, services):
    """refresh_grace_seconds=0 on a second app over the same stores."""
    from idp.app import build_services, create_app

    strict = settings.with_overrides(refresh_grace_seconds=0)
    strict_services = build_services(strict)
    try:
        app = create_app(strict, strict_services)
        app.config["TESTING"] = True
        test_client = app.test_client()
        strict_services.clients.register(PORTAL)
        strict_services.persons.upsert(PERSON)
        auth, result = login_for_code(test_client)
        first = redeem(test_client, result["code"], auth).get_json()
        successor = refresh(test_client, first["refresh_token"]).get_json()
        age_rotation(strict_services, first["refresh_token"], 1)  # one second later, past a 0 s grace
        assert_invalid_grant(refresh(test_client, first["refresh_token"]))
        assert_invalid_grant(refresh(test_client, successor["refresh_token"]))
        assert introspect(test_client, successor["access_token"]) == {"active": False}
    finally:
        strict_services.tokens.dispose()


def test_refresh_fails_after_logout_of_the_sso_session(client, tokens):
    logout = client.get("/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert logout.status_code == 200, logout.get_data(as_text=True)[:300]
    assert_invalid_grant(refresh(client, tokens["refresh_token"]))
    assert introspect(client, tokens["access_token"]) == {"active": False}
    assert userinfo_status(client, tokens["access_token"]) == 401


def test_refresh_fails_once_the_sso_session_is_gone_even_if_tokens_were_not_revoked(client, services, tokens):
    """The grant checks the session itself: ending it in the ephemeral store alone is enough."""
    sid = jwt.decode(tokens["id_token"], _keys(client)).claims["sid"]
    services.sso.end(sid)
    assert_invalid_grant(refresh(client, tokens["refresh_token"]))
    # and the family was revoked on the way
    assert introspect(client, tokens["refresh_token"]) == {"active": False}


def test_a_refresh_token_of_another_client_is_invalid_grant(client, services, tokens):
    services.clients.register(OTHER)
    assert_invalid_grant(refresh(client, tokens["refresh_token"], as_client=OTHER))
    # The rightful owner can still use it: the failed attempt neither rotated nor revoked it.
    assert refresh(client, tokens["refresh_token"]).status_code == 200


def test_an_access_token_is_not_a_refresh_token(client, tokens):
    assert_invalid_grant(refresh(client, tokens["access_token"]))


def test_unknown_or_missing_refresh_token(client, tokens):
    assert_invalid_grant(refresh(client, "no-such-token"))
    response = client.post(
        "/token",
        data={"grant_type": "refresh_token"},
        headers=basic(PORTAL["client_id"], PORTAL["client_secret"]),
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_an_expired_refresh_token_is_invalid_grant(client, services, tokens):
    with services.tokens.engine().begin() as conn:
        conn.execute(
            update(TokenRow)
            .where(TokenRow.digest == digest_token(tokens["refresh_token"]))
            .values(expires_at=1)
        )
    assert_invalid_grant(refresh(client, tokens["refresh_token"]))


def _keys(client):
    from joserfc.jwk import KeySet

    return KeySet.import_key_set(client.get("/jwks.json").get_json())
