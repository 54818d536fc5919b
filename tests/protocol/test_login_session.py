"""Login page and SSO session: CSRF, generic failures, identifiers, cookie attributes, new id at login."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from flows import PERSON, PORTAL, authorize_params, hidden_inputs, login_for_code, query_of


@pytest.fixture
def registered(services):
    services.clients.register(PORTAL)
    services.persons.upsert(PERSON)
    return services


def login_page(client, **extra):
    auth = authorize_params(**extra)
    response = client.get("/authorize?" + urlencode(auth.params))
    page = client.get(response.headers["Location"])
    return auth, hidden_inputs(page.get_data(as_text=True))


def post_login(client, fields, identifier, password):
    return client.post("/login", data={**fields, "identifier": identifier, "password": password})


@pytest.mark.parametrize("identifier", ["zhangsan", "410105198503121235", "13800000001", " zhangsan "])
def test_login_by_username_id_number_or_phone(client, registered, identifier):
    _auth, fields = login_page(client)
    response = post_login(client, fields, identifier, PERSON["password"])
    assert response.status_code == 302 and "/authorize/resume" in response.headers["Location"]


def test_wrong_password_and_unknown_user_get_the_same_answer(client, registered):
    _auth, fields = login_page(client)
    wrong_password = post_login(client, fields, "zhangsan", "not the password")
    unknown_user = post_login(client, fields, "nobody-here", "not the password")
    assert wrong_password.status_code == unknown_user.status_code == 401

    def message(response):
        html = response.get_data(as_text=True)
        return html[html.index('class="error"') :][:200] if 'class="error"' in html else html

    assert message(wrong_password).replace("zhangsan", "") == message(unknown_user).replace("nobody-here", "")
    assert "idp_session" not in (wrong_password.headers.get("Set-Cookie") or "")


def test_login_without_csrf_token_is_refused(client, registered):
    _auth, fields = login_page(client)
    fields.pop("csrf_token")
    response = post_login(client, fields, "zhangsan", PERSON["password"])
    assert response.status_code == 400
    assert "idp_session" not in (response.headers.get("Set-Cookie") or "")


def test_session_cookie_is_opaque_httponly_lax_and_replaced_at_login(client, registered):
    _auth, fields = login_page(client)
    response = post_login(client, fields, "zhangsan", PERSON["password"])
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("idp_session="))
    assert (
        "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    )  # http issuer in tests
    first = cookie.split(";")[0].split("=", 1)[1]
    assert PERSON["username"] not in first and len(first) >= 40
    _auth, fields = login_page(client, prompt="login")
    response = post_login(client, fields, "zhangsan", PERSON["password"])
    second = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("idp_session="))
    assert second.split(";")[0].split("=", 1)[1] != first
    # the old handle no longer names a session
    assert registered.sso.find(first) is None


def test_secure_cookie_when_issuer_is_https(settings, services):
    from idp.app import create_app

    services.clients.register(PORTAL)
    services.persons.upsert(PERSON)
    app = create_app(settings.with_overrides(issuer="https://idp.example"), services)
    client = app.test_client()
    _auth, fields = login_page(client)
    response = post_login(client, fields, "zhangsan", PERSON["password"])
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("idp_session="))
    assert "Secure" in cookie


def test_cancel_returns_access_denied_to_the_client(client, registered):
    auth, fields = login_page(client)
    response = client.post("/login", data={**fields, "cancel": "1"})
    query = query_of(response.headers["Location"])
    assert query["error"] == "access_denied" and query["state"] == auth.params["state"]


def test_a_code_is_issued_only_once_per_transaction(client, registered):
    auth, fields = login_page(client)
    response = post_login(client, fields, "zhangsan", PERSON["password"])
    resume = response.headers["Location"]
    first = client.get(resume)
    assert "code=" in first.headers["Location"]
    again = client.get(resume)
    assert again.status_code == 400


def test_pages_carry_security_headers(client, registered):
    _auth, _fields = login_page(client)
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "<script" not in response.get_data(as_text=True)


def test_direct_login_without_a_client_lands_on_the_home_page(client, registered):
    page = client.get("/login")
    fields = hidden_inputs(page.get_data(as_text=True))
    response = post_login(client, fields, "zhangsan", PERSON["password"])
    assert response.headers["Location"] == "/"
    assert "张三" in client.get("/").get_data(as_text=True)


def test_empty_or_oversized_credentials_get_the_generic_answer(client, registered):
    _auth, fields = login_page(client)
    assert post_login(client, fields, "zhangsan", "").status_code == 401
    assert post_login(client, fields, "", PERSON["password"]).status_code == 401
    assert post_login(client, fields, "z" * 10_000, "p" * 10_000).status_code == 401


def test_a_new_login_of_the_same_person_keeps_the_session_id(client, registered):
    login_for_code(client)
    first = registered.sso.sessions_of(registered.persons.authenticate("zhangsan", PERSON["password"]).id)
    _auth, fields = login_page(client, prompt="login")
    post_login(client, fields, "zhangsan", PERSON["password"])
    second = registered.sso.sessions_of(first[0].person_id)
    assert [s.sid for s in second] == [first[0].sid]  # platforms it touched still get its logout


def test_another_persons_login_ends_the_previous_session_everywhere(client, registered):
    registered.clients.register({**PORTAL, "backchannel_logout_uri": "https://portal.example/backchannel"})
    registered.persons.upsert({"username": "lisi", "password": "another long password"})
    login_for_code(client)
    zhangsan = registered.persons.authenticate("zhangsan", PERSON["password"])
    assert len(registered.sso.sessions_of(zhangsan.id)) == 1
    _auth, fields = login_page(client, prompt="login")
    post_login(client, fields, "lisi", "another long password")
    assert registered.sso.sessions_of(zhangsan.id) == []
    assert registered.logout.pending()[0]["client_id"] == "portal"


def test_trusted_proxies_give_the_forwarded_client_address(settings, services):
    from flask import request

    from idp.app import create_app

    for hops, expected in ((0, "127.0.0.1"), (1, "203.0.113.9")):
        app = create_app(settings.with_overrides(trusted_proxies=hops), services)
        app.add_url_rule("/test-address", "test_address", lambda: request.remote_addr or "")
        response = app.test_client().get("/test-address", headers={"X-Forwarded-For": "203.0.113.9"})
        assert response.get_data(as_text=True) == expected
