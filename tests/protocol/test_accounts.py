"""Account pages over the Flask test client: sign-in required, registration and password reset without
enumeration, my sessions (ending one queues back-channel logout), my platforms, real-name verification,
Chinese by default and English on request."""

from __future__ import annotations

import dataclasses
import re
from html import unescape

import pytest
from flows import PERSON, PORTAL, basic, hidden_inputs, login_for_code, redeem
from sqlalchemy import select

from idp.services.accounts import AccountService
from idp.sources.base import SourceUnavailable
from idp.store.models import LogoutOutboxRow

WITH_BACKCHANNEL = {**PORTAL, "backchannel_logout_uri": "https://portal.example/backchannel"}
TAX = {
    **PORTAL,
    "client_id": "tax",
    "client_name": "Tax Bureau",
    "client_secret": "tax-secret-0123456789-0123456789-abcdef",
    "redirect_uris": ["https://tax.example/cb"],
    "first_party": False,
}
ACCOUNT_PAGES = [
    "/account",
    "/account/password",
    "/account/verify",
    "/account/sessions",
    "/account/platforms",
]
ID_2 = "440305199207182464"


@pytest.fixture
def registered(services):
    services.clients.register(WITH_BACKCHANNEL)
    services.clients.register(TAX)
    services.persons.upsert(PERSON)
    return services


def sign_in(client, identifier: str = PERSON["username"], password: str = PERSON["password"]):
    fields = hidden_inputs(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={**fields, "identifier": identifier, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return response


def post_form(client, page: str, action: str | None = None, **data: str):
    """Submit the first form of `page` (its hidden fields, CSRF token included) with `data`."""
    html = client.get(page).get_data(as_text=True)
    target = action or unescape(re.search(r'<form[^>]*action="([^"]*)"', html).group(1))
    return client.post(target, data={**hidden_inputs(html), **data})


def blank_csrf(page: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', page)


def last_link(services, recipient: str, path: str) -> str:
    (message, *_) = services.notifier.recent(recipient)
    return re.search(rf"http://idp\.test({path}/\S+)", message.body).group(1)


def outbox(services) -> list[str]:
    with services.tokens.engine().connect() as conn:
        return [r.client_id for r in conn.execute(select(LogoutOutboxRow.client_id))]


def session_cookie_cleared(response) -> bool:
    return any(
        c.startswith("idp_session=;") or c.startswith('idp_session="";')
        for c in response.headers.getlist("Set-Cookie")
    )


# -- sign-in required -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ACCOUNT_PAGES)
def test_account_pages_send_strangers_to_sign_in(client, registered, path):
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"] == "/login"


@pytest.mark.parametrize(
    "action", ["/account/password", "/account/verify", "/account/sessions/end", "/account/platforms/revoke"]
)
def test_account_forms_send_strangers_to_sign_in(client, registered, action):
    csrf = hidden_inputs(client.get("/register").get_data(as_text=True))["csrf_token"]
    response = client.post(action, data={"csrf_token": csrf, "sid": "x", "client_id": "portal"})
    assert response.status_code == 302 and response.headers["Location"] == "/login"


def test_account_forms_need_the_csrf_token(client, registered):
    sign_in(client)
    for action in ("/account/password", "/account/sessions/end", "/register", "/password/forgot"):
        assert client.post(action, data={"sid": "x", "contact": "a@example.cn"}).status_code == 400


# -- profile ----------------------------------------------------------------------------------------


def test_profile_in_chinese_by_default_and_english_on_request(client, registered):
    sign_in(client)
    page = client.get("/account").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page and "我的账号" in page and "张三" in page
    assert "410105********1235" in page and PERSON["id_number"] not in page
    assert "zhangsan@example.cn" in page and "13800000001" in page
    assert "已实名认证" in page and 'href="/account/mfa"' in page
    assert "<script" not in page.lower()
    english = client.get("/account?ui_locales=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "My account" in english
    assert "Level 2: real-name verified" in english and "我的账号" not in english
    switched = client.get("/lang/en?next=/account/sessions")
    assert switched.headers["Location"] == "/account/sessions"
    assert "My sessions" in client.get("/account/sessions").get_data(as_text=True)


# -- registration -----------------------------------------------------------------------------------


def test_registration_answers_the_same_for_new_and_existing_addresses(client, registered):
    # both addresses mask to z***@example.cn; only one of them has an account
    existing = post_form(client, "/register", contact="zhangsan@example.cn")
    new = post_form(client, "/register", contact="zhaosi@example.cn")
    assert existing.status_code == new.status_code == 200
    assert blank_csrf(existing.get_data(as_text=True)) == blank_csrf(new.get_data(as_text=True))
    assert "z***@example.cn" in new.get_data(as_text=True)
    # what differs is only what the owner of the address receives
    assert "/register/complete/" not in registered.notifier.recent("zhangsan@example.cn")[0].body
    assert "/register/complete/" in registered.notifier.recent("zhaosi@example.cn")[0].body


def test_registration_refuses_a_malformed_address_with_a_message(client, registered):
    response = post_form(client, "/register?ui_locales=en", contact="not an address")
    assert response.status_code == 400
    assert "Enter a valid email address or mainland mobile number." in response.get_data(as_text=True)


def test_register_through_the_link_then_sign_in_at_level_1(client, registered):
    post_form(client, "/register", contact="WangWu@Example.cn")
    link = last_link(registered, "wangwu@example.cn", "/register/complete")
    form = client.get(link)
    assert form.status_code == 200 and "wangwu@example.cn" in form.get_data(as_text=True)
    mismatch = post_form(client, link, name="王五", password="a good password", confirm="another one")
    assert mismatch.status_code == 400 and "两次输入的新密码不一致" in mismatch.get_data(as_text=True)
    done = post_form(client, link, name="王五", password="a good password", confirm="a good password")
    assert done.status_code == 200 and "wangwu@example.cn" in done.get_data(as_text=True)
    assert client.get(link).status_code == 400  # used
    sign_in(client, "wangwu@example.cn", "a good password")
    profile = client.get("/account?ui_locales=en").get_data(as_text=True)
    assert "Level 1: self-registered, identity not verified" in profile and "Not verified" in profile


# -- password reset and change ----------------------------------------------------------------------


def test_forgot_password_answers_the_same_for_any_identifier(client, registered):
    known = post_form(client, "/password/forgot", identifier="zhangsan")
    unknown = post_form(client, "/password/forgot", identifier="nobody-at-all")
    assert known.status_code == unknown.status_code == 200
    assert blank_csrf(known.get_data(as_text=True)) == blank_csrf(unknown.get_data(as_text=True))
    assert len(registered.notifier.recent()) == 1


def test_reset_password_through_the_link_signs_out_everywhere(client, registered):
    auth, result = login_for_code(client, WITH_BACKCHANNEL)
    tokens = redeem(client, result["code"], auth).get_json()
    post_form(client, "/password/forgot", identifier="13800000001")
    link = last_link(registered, "zhangsan@example.cn", "/password/reset")
    assert client.get(link).status_code == 200
    done = post_form(client, link, password="a brand new password", confirm="a brand new password")
    assert done.status_code == 200 and session_cookie_cleared(done)
    assert outbox(registered) == ["portal"]  # the platform is logged out over the back channel
    introspection = client.post(
        "/introspect",
        data={"token": tokens["refresh_token"]},
        headers=basic("portal", PORTAL["client_secret"]),
    )
    assert introspection.get_json() == {"active": False}
    assert client.get(link).status_code == 400  # single use
    csrf = hidden_inputs(client.get("/password/forgot").get_data(as_text=True))["csrf_token"]
    again = client.post(link, data={"csrf_token": csrf, "password": "x" * 10, "confirm": "x" * 10})
    assert again.status_code == 400 and "该链接无法使用" in again.get_data(as_text=True)
    assert client.post(link, data={}).status_code == 400  # no CSRF token: refused before anything
    sign_in(client, "zhangsan", "a brand new password")


def test_change_password_keeps_this_session_and_ends_the_others(app, registered):
    here, there = app.test_client(), app.test_client()
    sign_in(here)
    sign_in(there)
    changed = post_form(
        here,
        "/account/password?ui_locales=en",
        current=PERSON["password"],
        password="changed password 1",
        confirm="changed password 1",
    )
    assert changed.status_code == 200 and "Other sessions signed out: 1." in changed.get_data(as_text=True)
    assert here.get("/account").status_code == 200
    assert there.get("/account").status_code == 302
    wrong = post_form(here, "/account/password", current="wrong", password="x" * 10, confirm="x" * 10)
    assert wrong.status_code == 400 and "当前密码不正确" in wrong.get_data(as_text=True)


# -- my sessions ------------------------------------------------------------------------------------


def test_ending_another_session_queues_its_back_channel_logout(app, registered):
    phone, laptop = app.test_client(), app.test_client()
    auth, result = login_for_code(phone, WITH_BACKCHANNEL)  # the phone signs in to the portal
    tokens = redeem(phone, result["code"], auth).get_json()
    sign_in(laptop)
    page = laptop.get("/account/sessions?ui_locales=en").get_data(as_text=True)
    assert page.count('name="sid"') == 2 and "Portal" in page and "This browser" in page
    other_sid = [
        s.sid
        for s in registered.sso.sessions_of(
            registered.persons.authenticate("zhangsan", PERSON["password"]).id
        )
        if "portal" in registered.sso.clients(s.sid)
    ][0]
    ended = post_form(laptop, "/account/sessions", action="/account/sessions/end", sid=other_sid)
    assert ended.status_code == 302 and ended.headers["Location"] == "/account/sessions?done=ended"
    assert outbox(registered) == ["portal"]
    assert registered.tokens.find(tokens["refresh_token"]).revoked_at is not None
    assert phone.get("/account").status_code == 302  # the phone is signed out
    assert laptop.get("/account").status_code == 200
    assert laptop.get("/account/sessions").get_data(as_text=True).count('name="sid"') == 1


def test_ending_this_session_signs_out(client, registered):
    sign_in(client)
    (session,) = registered.sso.sessions_of(
        registered.persons.authenticate("zhangsan", PERSON["password"]).id
    )
    response = post_form(client, "/account/sessions", action="/account/sessions/end", sid=session.sid)
    assert response.status_code == 200 and "您已退出登录。" in response.get_data(as_text=True)
    assert session_cookie_cleared(response)
    assert client.get("/account").status_code == 302


def test_a_session_of_someone_else_cannot_be_ended(app, registered):
    registered.persons.upsert({"username": "lisi", "password": "lisi password 1"})
    mine, theirs = app.test_client(), app.test_client()
    sign_in(mine)
    sign_in(theirs, "lisi", "lisi password 1")
    lisi = registered.persons.authenticate("lisi", "lisi password 1")
    (their_session,) = registered.sso.sessions_of(lisi.id)
    response = post_form(mine, "/account/sessions", action="/account/sessions/end", sid=their_session.sid)
    assert response.status_code == 404
    assert registered.sso.is_active(their_session.sid)


# -- my platforms -----------------------------------------------------------------------------------


def test_withdrawing_a_platform_revokes_its_refresh_tokens_and_consent(client, registered):
    auth, result = login_for_code(client, TAX)  # a platform that asks for consent
    tax_tokens = redeem(client, result["code"], auth, TAX).get_json()
    auth, result = login_for_code(client, WITH_BACKCHANNEL)  # first party: no consent, a refresh token
    portal_tokens = redeem(client, result["code"], auth).get_json()
    page = client.get("/account/platforms?ui_locales=en").get_data(as_text=True)
    assert "Tax Bureau" in page and "Portal" in page and "Your name and username" in page
    response = post_form(client, "/account/platforms", action="/account/platforms/revoke", client_id="tax")
    assert response.status_code == 302
    assert registered.tokens.find(tax_tokens["refresh_token"]).revoked_at is not None
    assert registered.tokens.find(tax_tokens["access_token"]).revoked_at is not None
    assert registered.tokens.find(portal_tokens["refresh_token"]).revoked_at is None
    person = registered.persons.authenticate("zhangsan", PERSON["password"])
    assert not registered.consent.covers(person.id, "tax", ["openid"])
    after = client.get("/account/platforms?ui_locales=en").get_data(as_text=True)
    assert "Tax Bureau" not in after and "Portal" in after
    refreshed = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tax_tokens["refresh_token"]},
        headers=basic("tax", TAX["client_secret"]),
    )
    assert refreshed.status_code == 400


# -- real-name verification -------------------------------------------------------------------------


class FakeRegister:
    def __init__(self, known: dict[str, str], *, down: bool = False) -> None:
        self.known, self.down = known, down

    def verify_real_name(self, name: str, id_number: str) -> bool:
        if self.down:
            raise SourceUnavailable("population register: timed out")
        return self.known.get(id_number) == name


def app_with_register(settings, services, register):
    from idp.app import create_app

    accounts = AccountService(
        services.persons,
        services.notifier,
        services.ephemeral,
        register,
        sso=services.sso,
        logout=services.logout,
        consent=services.consent,
        tokens=services.tokens,
        clients=services.clients,
        issuer=services.issuer,
    )
    app = create_app(settings, dataclasses.replace(services, accounts=accounts))
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture
def self_registered(services):
    services.persons.register_self(
        email="lisi@example.cn", phone_number=None, name=None, password="lisi password"
    )
    return {"identifier": "lisi@example.cn", "password": "lisi password"}


def test_verify_real_name_raises_the_account_to_level_2(settings, services, self_registered):
    client = app_with_register(settings, services, FakeRegister({ID_2: "李四"}))
    sign_in(client, **self_registered)
    response = post_form(client, "/account/verify", name="李四", id_number=ID_2.lower())
    assert response.status_code == 302 and response.headers["Location"] == "/account?done=verified"
    profile = client.get("/account?done=verified").get_data(as_text=True)
    assert "已实名认证" in profile and "440305********2464" in profile and ID_2 not in profile
    assert "下次登录" in profile


def test_verify_real_name_mismatch_and_bad_number(settings, services, self_registered):
    client = app_with_register(settings, services, FakeRegister({ID_2: "李四"}))
    sign_in(client, **self_registered)
    mismatch = post_form(client, "/account/verify", name="王五", id_number=ID_2)
    assert mismatch.status_code == 400 and "无法核验" in mismatch.get_data(as_text=True)
    bad = post_form(client, "/account/verify?ui_locales=en", name="李四", id_number="440305199207182465")
    assert bad.status_code == 400 and "check character does not match" in bad.get_data(as_text=True)
    assert 'value="李四"' in bad.get_data(as_text=True)  # the name is kept, the number is not echoed


def test_verify_real_name_when_the_register_is_down(settings, services, self_registered):
    client = app_with_register(settings, services, FakeRegister({}, down=True))
    sign_in(client, **self_registered)
    response = post_form(client, "/account/verify?ui_locales=en", name="李四", id_number=ID_2)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "population register cannot be reached" in page
    assert "Nothing was changed" in page
    assert "Not verified" in client.get("/account?ui_locales=en").get_data(as_text=True)
