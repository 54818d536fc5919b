"""RP-initiated logout (id_token_hint, post_logout_redirect_uri, state, confirmation) and the logout outbox."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from flows import PERSON, PORTAL, basic, hidden_inputs, login_for_code, query_of, redeem
from sqlalchemy import select

from idp.store.models import LogoutOutboxRow

WITH_BACKCHANNEL = {**PORTAL, "backchannel_logout_uri": "https://portal.example/backchannel"}


@pytest.fixture
def registered(services):
    services.clients.register(WITH_BACKCHANNEL)
    services.persons.upsert(PERSON)
    return services


def signed_in(client):
    auth, result = login_for_code(client)
    return redeem(client, result["code"], auth).get_json()


def outbox(services):
    with services.tokens.engine().connect() as conn:
        return conn.execute(
            select(LogoutOutboxRow.client_id, LogoutOutboxRow.uri, LogoutOutboxRow.logout_token)
        ).all()


def test_logout_with_valid_hint_redirects_with_state_and_ends_everything(client, registered):
    tokens = signed_in(client)
    params = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": "https://portal.example/bye",
        "state": "s-123",
    }
    response = client.get("/logout?" + urlencode(params))
    assert response.status_code == 302
    assert response.headers["Location"] == "https://portal.example/bye?state=s-123"
    # session gone: prompt=none now needs a login
    from flows import authorize_params

    auth = authorize_params(prompt="none")
    again = client.get("/authorize?" + urlencode(auth.params))
    assert query_of(again.headers["Location"])["error"] == "login_required"
    # tokens revoked at once
    userinfo = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401
    introspection = client.post(
        "/introspect",
        data={"token": tokens["refresh_token"]},
        headers=basic(PORTAL["client_id"], PORTAL["client_secret"]),
    )
    assert introspection.get_json() == {"active": False}
    # one back-channel logout queued for the client the session touched
    rows = outbox(registered)
    assert [(r.client_id, r.uri) for r in rows] == [("portal", "https://portal.example/backchannel")]


def test_unregistered_post_logout_redirect_uri_is_an_error_page(client, registered):
    tokens = signed_in(client)
    params = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.example/"}
    response = client.get("/logout?" + urlencode(params))
    assert response.status_code == 400 and "Location" not in response.headers


def test_post_logout_redirect_uri_without_client_is_refused(client, registered):
    response = client.get("/logout?" + urlencode({"post_logout_redirect_uri": "https://portal.example/bye"}))
    assert response.status_code == 400


def test_forged_hint_is_refused(client, registered):
    tokens = signed_in(client)
    header, payload, signature = tokens["id_token"].split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    response = client.get("/logout?" + urlencode({"id_token_hint": forged}))
    assert response.status_code == 400


def test_without_hint_the_person_confirms_on_a_csrf_protected_page(client, registered):
    signed_in(client)
    page = client.get(
        "/logout?"
        + urlencode(
            {"client_id": "portal", "post_logout_redirect_uri": "https://portal.example/bye", "state": "z"}
        )
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    fields = hidden_inputs(html)
    assert fields["post_logout_redirect_uri"] == "https://portal.example/bye"
    no_csrf = {k: v for k, v in fields.items() if k != "csrf_token"}
    assert client.post("/logout/confirm", data={**no_csrf, "decision": "logout"}).status_code == 400
    stay = client.post("/logout/confirm", data={**fields, "decision": "stay"})
    assert stay.headers["Location"] == "/"
    assert outbox(registered) == []
    response = client.post("/logout/confirm", data={**fields, "decision": "logout"})
    assert response.headers["Location"] == "https://portal.example/bye?state=z"
    assert len(outbox(registered)) == 1


def test_logout_without_session_and_without_redirect_shows_signed_out_page(client, registered):
    response = client.get("/logout")
    assert response.status_code == 200 and "text/html" in response.content_type


def test_a_code_issued_before_logout_cannot_be_redeemed_after_it(client, registered):
    auth, result = login_for_code(client)
    client.get("/logout")  # no hint: confirmation page
    page = client.get("/logout?" + urlencode({"client_id": "portal"}))
    fields = hidden_inputs(page.get_data(as_text=True))
    client.post("/logout/confirm", data={**fields, "decision": "logout"})
    response = redeem(client, result["code"], auth)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
