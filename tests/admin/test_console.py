"""The administration console over the Flask test client: sign-in, the role matrix page by page, every
form's happy and bad-input paths, secrets shown once, re-authentication, languages and junk parameters."""

from __future__ import annotations

import datetime
import re
import time
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from admin_helpers import AdminUser, console_login, hidden_inputs, local

from idp.domain.admin import AUDITOR, ENTITY_ADMIN, PLATFORM_ADMIN, REAUTH_SECONDS, ROLES, SUPER_ADMIN

LOA2 = "urn:cn:gov:loa:2"
LOA3 = "urn:cn:gov:loa:3"
USCC = "91350100M000100Y43"  # in the reference enterprise register; representative 张三
ZHANGSAN = {
    "username": "zhangsan",
    "password": "zhangsan password 1",
    "name": "张三",
    "id_number": "410105198503121235",
}

# one page per section -> the roles that may open it
SECTIONS = {
    "/admin/clients": {SUPER_ADMIN, PLATFORM_ADMIN},
    "/admin/clients/new": {SUPER_ADMIN, PLATFORM_ADMIN},
    "/admin/initial-tokens": {SUPER_ADMIN, PLATFORM_ADMIN},
    "/admin/persons": {SUPER_ADMIN},
    "/admin/entities": {SUPER_ADMIN, ENTITY_ADMIN},
    "/admin/keys": {SUPER_ADMIN},
    "/admin/audit": {AUDITOR},
}


# -- helpers ------------------------------------------------------------------------------------------


def text(response) -> str:
    return response.get_data(as_text=True)


def signed_in(client, user: AdminUser, start: str = "/admin/"):
    response = console_login(client, user, start)
    assert response.status_code == 200, text(response)[:2000]
    return response


def form_fields(client, page: str, action: str) -> dict[str, str]:
    """The hidden fields (CSRF token, back, ...) of the form on `page` that posts to `action`."""
    html = text(client.get(page))
    for form in re.findall(r"<form[^>]*>.*?</form>", html, flags=re.S):
        if f'action="{action}"' in form:
            return hidden_inputs(form)
    raise AssertionError(f"no form posting to {action} on {page}")


def submit(client, page: str, action: str, **data: object):
    return client.post(action, data={**form_fields(client, page, action), **data})


def client_form(**overrides: object) -> dict[str, object]:
    form: dict[str, object] = {
        "client_id": "casehub",
        "client_name": "案件中心",
        "redirect_uris": "https://case.example.gov.cn/callback\nhttps://case.example.gov.cn/cb2",
        "post_logout_redirect_uris": "https://case.example.gov.cn/",
        "backchannel_logout_uri": "https://case.example.gov.cn/logout",
        "scope": "openid profile",
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic",
        "minimum_acr": LOA2,
        "access_token_format": "jwt",
        "id_token_signed_response_alg": "ES256",
        "first_party": "1",
    }
    form.update(overrides)
    return form


def secret_on(html: str) -> str:
    found = re.search(r'id="(?:client_secret|initial_token)">([^<]+)<', html)
    assert found, html[:3000]
    return unescape(found.group(1))


def register_client(services, client_id: str = "casehub") -> None:
    services.clients.register(
        {
            "client_id": client_id,
            "client_name": "案件中心",
            "redirect_uris": ["https://case.example.gov.cn/callback"],
            "token_endpoint_auth_method": "client_secret_basic",
        }
    )


def newest_auth_time(services, user: AdminUser) -> int:
    return max(s.auth_time for s in services.sso.sessions_of(user.person_id))


# -- signing in ---------------------------------------------------------------------------------------


def test_unauthenticated_browser_is_sent_into_the_provider_sign_in(client):
    response = client.get("/admin/clients?q=x")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=")
    authorize = client.get(response.headers["Location"])
    assert authorize.status_code == 302 and "/authorize?" in authorize.headers["Location"]
    assert "client_id=admin-console" in authorize.headers["Location"]
    assert "code_challenge_method=S256" in authorize.headers["Location"]


def test_sign_in_returns_to_the_page_asked_for(client, admins):
    response = signed_in(client, admins[PLATFORM_ADMIN], "/admin/clients?q=abc")
    assert 'value="abc"' in text(response)


def test_a_person_without_an_admin_role_gets_a_403_page(client, admins):
    response = console_login(client, admins["nobody"])
    assert response.status_code == 403
    assert "access_denied" in text(response) and "<h1>拒绝访问</h1>" in text(response)


def test_an_admin_session_without_the_second_factor_is_sent_to_step_up(client, services, admins):
    handle, _ = services.sso.start(admins[SUPER_ADMIN].person_id, LOA2, ("pwd",), None)
    client.set_cookie("idp_session", handle)
    response = client.get("/admin/keys")
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login")
    authorize = client.get(response.headers["Location"])
    assert "acr_values=" + LOA3.replace(":", "%3A") in authorize.headers["Location"]
    # the provider asks for the second factor only, then the console page opens
    step = client.get(local(authorize.headers["Location"]))
    while step.status_code in (302, 303):
        step = client.get(local(step.headers["Location"]))
    assert 'name="code"' in text(step) and 'name="password"' not in text(step)
    done = console_login(client, admins[SUPER_ADMIN], "/admin/keys")
    assert done.status_code == 200 and "/admin/keys/rotate" in text(done)


# -- the role matrix, page by page -------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_each_section_is_open_exactly_to_its_roles(client, admins, role):
    dashboard = text(signed_in(client, admins[role]))
    for path, roles in SECTIONS.items():
        response = client.get(path)
        expected = 200 if role in roles else 403
        assert response.status_code == expected, (role, path, text(response)[:500])
        if path != "/admin/clients/new":
            assert (f'href="{path}"' in dashboard) == (role in roles), (role, path)
    assert 'href="/logout"' in dashboard
    post = client.post("/admin/keys/rotate", data={})
    assert post.status_code == 400  # no CSRF token: refused before anything else


def test_denied_actions_are_403_even_with_a_valid_form(client, admins, services):
    register_client(services)
    signed_in(client, admins[ENTITY_ADMIN])
    token = hidden_inputs(text(client.get("/admin/entities")))["csrf_token"]
    response = client.post("/admin/clients/casehub/disable", data={"csrf_token": token, "back": "/admin/"})
    assert response.status_code == 403
    assert services.clients.get("casehub") is not None


# -- platforms ----------------------------------------------------------------------------------------


def test_register_a_platform_shows_its_secret_once(client, admins, services):
    signed_in(client, admins[PLATFORM_ADMIN])
    response = submit(client, "/admin/clients/new", "/admin/clients/new", **client_form())
    assert response.status_code == 200, text(response)[:3000]
    secret = secret_on(text(response))
    assert len(secret) >= 32 and response.headers["Cache-Control"] == "no-store"
    stored = services.clients.get("casehub")
    assert services.clients.verify_secret(stored, secret)
    assert stored.redirect_uris == ("https://case.example.gov.cn/callback", "https://case.example.gov.cn/cb2")
    assert (
        stored.minimum_acr == LOA2 and stored.first_party and stored.id_token_signed_response_alg == "ES256"
    )
    page = client.get("/admin/clients/casehub")
    assert page.status_code == 200 and secret not in text(page) and "案件中心" in text(page)
    listing = text(client.get("/admin/clients?q=case"))
    assert "casehub" in listing and secret not in listing


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"redirect_uris": "http://case.example.gov.cn/cb"}, "must use https"),
        ({"client_id": ""}, "client_id"),
        ({"grant_types": [], "redirect_uris": ""}, ""),
        ({"token_endpoint_auth_method": "private_key_jwt", "jwks": "{not json"}, "JWKS"),
        ({"minimum_acr": "urn:nope"}, "minimum_acr"),
    ],
)
def test_register_a_platform_with_bad_input(client, admins, services, overrides, expected):
    signed_in(client, admins[PLATFORM_ADMIN], "/admin/?ui_locales=en")
    data = client_form(**overrides)
    if data.get("grant_types") == []:
        data["grant_types"] = ["authorization_code"]
    response = submit(
        client, "/admin/clients/new?ui_locales=en", "/admin/clients/new", ui_locales="en", **data
    )
    assert response.status_code == 400
    html = text(response)
    assert 'role="alert"' in html and "Nothing was changed." in html and expected in html
    assert 'name="client_name" value="案件中心"' in html  # the form keeps what was typed
    assert services.clients.find_any("casehub") is None


def test_duplicate_client_id_is_refused(client, admins, services):
    register_client(services)
    signed_in(client, admins[PLATFORM_ADMIN])
    response = submit(client, "/admin/clients/new", "/admin/clients/new", **client_form())
    assert response.status_code == 400 and "已有使用该客户端 ID 的平台" in text(response)


def test_a_form_without_its_csrf_token_is_refused(client, admins, services):
    signed_in(client, admins[PLATFORM_ADMIN])
    response = client.post("/admin/clients/new", data={**client_form(), "back": "/admin/clients/new"})
    assert response.status_code == 400
    assert services.clients.find_any("casehub") is None


def test_edit_disable_and_enable_a_platform(client, admins, services):
    register_client(services)
    signed_in(client, admins[PLATFORM_ADMIN])
    edit = client.get("/admin/clients/casehub/edit")
    assert edit.status_code == 200 and "https://case.example.gov.cn/callback" in text(edit)
    action = "/admin/clients/casehub/edit"
    response = submit(
        client, action, action, **client_form(client_name="新名称", access_token_format="opaque")
    )
    assert response.status_code == 303 and "done=saved" in response.headers["Location"]
    assert "已保存" in text(client.get(response.headers["Location"]))
    assert services.clients.get("casehub").client_name == "新名称"
    assert services.clients.get("casehub").access_token_format == "opaque"

    bad = submit(client, action, action, **client_form(client_name="坏", backchannel_logout_uri="ftp://x"))
    assert bad.status_code == 400 and services.clients.get("casehub").client_name == "新名称"

    page = "/admin/clients/casehub"
    response = submit(client, page, "/admin/clients/casehub/disable")
    assert response.status_code == 303 and services.clients.find_any("casehub").disabled
    response = submit(client, page, "/admin/clients/casehub/enable")
    assert response.status_code == 303 and not services.clients.find_any("casehub").disabled


def test_unknown_client_is_a_404_page(client, admins):
    signed_in(client, admins[PLATFORM_ADMIN])
    assert client.get("/admin/clients/nope").status_code == 404
    assert client.get("/admin/clients/nope/edit").status_code == 404


def test_rotating_a_secret_needs_a_recent_sign_in(client, admins, services, monkeypatch):
    register_client(services)
    user = admins[PLATFORM_ADMIN]
    signed_in(client, user)
    page = "/admin/clients/casehub"
    first_auth = newest_auth_time(services, user)
    monkeypatch.setattr(services.admin, "_clock", lambda: time.time() + REAUTH_SECONDS + 60)
    response = submit(client, page, "/admin/clients/casehub/rotate-secret")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert (
        location.startswith("/admin/login?")
        and "reauth=1" in location
        and "next=/admin/clients/casehub" in location
    )

    time.sleep(1.1)  # the new authentication is a later second than the first
    back = console_login(client, user, location)  # prompt=login: password and second factor again
    assert back.status_code == 200 and "casehub" in text(back)
    renewed = newest_auth_time(services, user)
    assert renewed > first_auth
    # a clock at which the first sign-in is too old but the new one is just recent enough
    monkeypatch.setattr(services.admin, "_clock", lambda: renewed + REAUTH_SECONDS)
    response = submit(client, page, "/admin/clients/casehub/rotate-secret")
    assert response.status_code == 200, text(response)[:2000]
    assert response.headers["Cache-Control"] == "no-store"
    secret = secret_on(text(response))
    assert services.clients.verify_secret(services.clients.get("casehub"), secret)
    assert secret not in text(client.get(page))


def test_initial_access_tokens(client, admins):
    signed_in(client, admins[PLATFORM_ADMIN])
    page = "/admin/initial-tokens"
    bad = submit(client, page, page, label="门户", days="0", max_uses="1")
    assert bad.status_code == 400 and "有效期须为 1 至 30 天" in text(bad)
    bad = submit(client, page, page, label="门户", days="abc", max_uses="x")
    assert bad.status_code == 400
    assert "门户" not in text(client.get(page))

    issued = submit(client, page, page, label="门户", days="2", max_uses="3")
    assert issued.status_code == 200 and issued.headers["Cache-Control"] == "no-store"
    value = secret_on(text(issued))
    listing = text(client.get(page))
    assert "门户" in listing and value not in listing and "0 / 3" in listing
    revoked = submit(client, page, "/admin/initial-tokens/revoke")
    assert revoked.status_code == 303 and "done=revoked" in revoked.headers["Location"]
    assert "门户" not in text(client.get(page))
    assert "门户" in text(client.get(page + "?all=1"))


def test_initial_tokens_when_registration_is_unavailable(client, admins, services, monkeypatch):
    monkeypatch.setattr(services.admin, "_registration", None)
    signed_in(client, admins[PLATFORM_ADMIN])
    response = client.get("/admin/initial-tokens?ui_locales=en")
    assert response.status_code == 200
    assert "Dynamic client registration is not configured on this provider." in text(response)


# -- persons ------------------------------------------------------------------------------------------


def test_search_and_view_a_person_with_the_id_number_masked(client, admins, services):
    person = services.persons.upsert(ZHANGSAN)
    signed_in(client, admins[SUPER_ADMIN])
    csrf = hidden_inputs(text(client.get("/admin/persons")))["csrf_token"]
    for query in ("张三", "zhangsan", ZHANGSAN["id_number"]):
        listing = text(client.post("/admin/persons", data={"q": query, "csrf_token": csrf}))
        assert f"/admin/persons/{person.id}" in listing, query
        results = listing.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
        assert ZHANGSAN["id_number"] not in results and "4101" in results  # masked in the results
    assert "未找到自然人" in text(
        client.post("/admin/persons", data={"q": "nobody-like", "csrf_token": csrf})
    )
    # the query is never in a URL: the language switch and paging carry no identifier
    assert ZHANGSAN["id_number"] not in "".join(re.findall(r'href="([^"]*)"', listing))
    page = client.get(f"/admin/persons/{person.id}")
    assert page.status_code == 200 and "张三" in text(page) and ZHANGSAN["id_number"] not in text(page)
    assert person.id_number_masked and person.id_number_masked in text(page)
    assert client.get("/admin/persons/nope").status_code == 404


def test_the_person_sees_the_admin_view_on_who_used_my_data(client, admins, services, app):
    person = services.persons.upsert(ZHANGSAN)
    signed_in(client, admins[SUPER_ADMIN])
    assert client.get(f"/admin/persons/{person.id}").status_code == 200
    services.audit.flush()
    own = app.test_client()
    handle, _ = services.sso.start(person.id, LOA2, ("pwd",), None)
    own.set_cookie("idp_session", handle)
    page = text(own.get("/account/data-access?ui_locales=en"))
    assert "Administrator (person record viewed)" in page and ">admin<" not in page
    assert "管理员（查看了您的账号记录）" in text(own.get("/account/data-access?ui_locales=zh"))


def test_lock_unlock_reset_mfa_and_end_sessions(client, admins, services):
    target = admins[PLATFORM_ADMIN]
    services.sso.start(target.person_id, LOA2, ("pwd",), None)
    services.sso.start(target.person_id, LOA2, ("pwd",), None)
    signed_in(client, admins[SUPER_ADMIN])
    page = f"/admin/persons/{target.person_id}"
    html = text(client.get(page))
    sid = re.search(r'name="sid" value="([^"]+)"', html).group(1)
    response = submit(client, page, f"{page}/end-sessions", sid=sid)
    assert response.status_code == 303 and "done=ended" in response.headers["Location"]
    assert sid not in {s.sid for s in services.sso.sessions_of(target.person_id)}
    assert submit(client, page, f"{page}/end-sessions", sid="no-such-session").status_code == 404

    response = submit(client, page, f"{page}/lock")
    assert response.status_code == 303 and services.persons.get(target.person_id).disabled
    assert services.sso.sessions_of(target.person_id) == []
    assert "账号已锁定" in text(client.get(response.headers["Location"]))
    response = submit(client, page, f"{page}/unlock")
    assert response.status_code == 303 and not services.persons.get(target.person_id).disabled

    response = submit(client, page, f"{page}/reset-mfa")
    assert response.status_code == 303 and not services.persons.get(target.person_id).mfa_enabled


def test_grant_and_revoke_admin_roles(client, admins, services):
    target = admins["nobody"]
    signed_in(client, admins[SUPER_ADMIN])
    page = f"/admin/persons/{target.person_id}"
    response = submit(client, page, f"{page}/roles/grant", role=ENTITY_ADMIN)
    assert response.status_code == 303 and services.admin.roles_of(target.person_id) == {ENTITY_ADMIN}
    bad = submit(client, page, f"{page}/roles/grant", role=AUDITOR)  # cannot combine with another role
    assert bad.status_code == 400 and services.admin.roles_of(target.person_id) == {ENTITY_ADMIN}
    response = submit(client, page, f"{page}/roles/revoke", role=ENTITY_ADMIN)
    assert response.status_code == 303 and services.admin.roles_of(target.person_id) == frozenset()
    own = f"/admin/persons/{admins[SUPER_ADMIN].person_id}"
    assert "管理员不能更改自己的角色" in text(client.get(own))


def test_granting_a_role_with_an_old_sign_in_asks_to_re_authenticate(client, admins, services, monkeypatch):
    target = admins["nobody"]
    signed_in(client, admins[SUPER_ADMIN])
    page = f"/admin/persons/{target.person_id}"
    fields = form_fields(client, page, f"{page}/roles/grant")
    monkeypatch.setattr(services.admin, "_clock", lambda: time.time() + 16 * 60)
    response = client.post(f"{page}/roles/grant", data={**fields, "role": AUDITOR})
    assert response.status_code == 302 and "reauth=1" in response.headers["Location"]
    assert services.admin.roles_of(target.person_id) == frozenset()


# -- legal entities ------------------------------------------------------------------------------------


@pytest.fixture
def wired(settings, services, reference_registers):
    """An app whose services reach the reference enterprise register (on the tables `services` emptied)."""
    from idp.app import build_services, create_app

    settings = settings.with_overrides(enterprise_register_url=reference_registers)
    built = build_services(settings)
    app = create_app(settings, built)
    app.config["TESTING"] = True
    return app, built


def test_entities_create_verify_suspend_representative_and_agents(wired, admins):
    app, services = wired
    zhangsan = services.persons.upsert(ZHANGSAN)
    client = app.test_client()
    signed_in(client, admins[ENTITY_ADMIN])

    bad = submit(client, "/admin/entities", "/admin/entities", uscc="", name="")
    assert bad.status_code == 400 and "请输入统一社会信用代码和名称" in text(bad)
    bad = submit(client, "/admin/entities", "/admin/entities", uscc="91350100M000100Y44", name="错")
    assert bad.status_code == 400 and "未做任何更改" in text(bad)
    assert services.entities.list_entities() == []

    created = submit(
        client,
        "/admin/entities",
        "/admin/entities",
        uscc=USCC,
        name="示例科技有限公司",
        entity_type="enterprise",
    )
    assert created.status_code == 303
    page = local(created.headers["Location"]).split("?")[0]
    entity_id = page.rsplit("/", 1)[1]
    assert "示例科技有限公司" in text(client.get(page)) and "示例科技有限公司" in text(
        client.get("/admin/entities")
    )

    verified = submit(client, page, f"{page}/verify")
    assert verified.status_code == 303, text(verified)[:2000]
    assert services.entities.get_entity(entity_id).status == "verified"
    rep = [
        a for a in services.entities.authorisations_of_entity(entity_id) if a.role == "legal_representative"
    ]
    assert rep and rep[0].person_id == zhangsan.id  # taken from the register

    agent = admins["nobody"]
    bad = submit(
        client, page, f"{page}/agents", person=agent.username, powers="case:apply", valid_until="tomorrow"
    )
    assert bad.status_code == 400 and "YYYY-MM-DD" in text(bad)
    bad = submit(client, page, f"{page}/agents", person="", powers="case:apply")
    assert bad.status_code == 400
    bad = submit(client, page, f"{page}/agents", person="no-such-user", powers="case:apply")
    assert bad.status_code == 400
    granted = submit(
        client,
        page,
        f"{page}/agents",
        person=agent.id_number,
        powers="case:apply, case:view",
        valid_until="2099-12-31",
        role="agent",
    )
    assert granted.status_code == 303, text(granted)[:2000]
    held = [
        a for a in services.entities.authorisations_of_entity(entity_id) if a.person_id == agent.person_id
    ]
    assert held and set(held[0].powers) == {"case:apply", "case:view"} and held[0].valid_until

    html = text(client.get(page))
    assert "case:apply" in html
    revoked = submit(client, page, f"{page}/authorisations/revoke", authorisation_id=held[0].id)
    assert revoked.status_code == 303
    assert not [
        a
        for a in services.entities.authorisations_of_entity(entity_id, active_only=True)
        if a.person_id == agent.person_id
    ]

    representative = submit(client, page, f"{page}/representative", person=agent.username)
    assert representative.status_code == 303, text(representative)[:2000]

    assert submit(client, page, f"{page}/suspend").status_code == 303
    assert services.entities.get_entity(entity_id).status == "suspended"
    assert submit(client, page, f"{page}/reinstate").status_code == 303
    assert services.entities.get_entity(entity_id).status == "verified"


def test_verifying_without_a_register_is_a_readable_400(client, admins, services):
    entity = services.entities.create_entity(USCC, "示例科技有限公司")
    signed_in(client, admins[SUPER_ADMIN], "/admin/?ui_locales=en")
    page = f"/admin/entities/{entity.id}"
    response = submit(client, page, f"{page}/verify", ui_locales="en")
    assert response.status_code == 400 and "No enterprise register is configured" in text(response)
    assert services.entities.get_entity(entity.id).status == "pending"


# -- signing keys --------------------------------------------------------------------------------------


def test_keys_rotate_and_retire(client, admins, services, monkeypatch):
    services.keys.ensure_keys()
    signed_in(client, admins[SUPER_ADMIN])
    before = {k["kid"] for k in services.keys.list_keys()}
    html = text(client.get("/admin/keys"))
    assert all(kid in html for kid in before)
    response = submit(client, "/admin/keys", "/admin/keys/rotate", alg="ES256")
    assert response.status_code == 303 and "done=rotated" in response.headers["Location"]
    after = services.keys.list_keys()
    new = [k for k in after if k["kid"] not in before]
    assert len(new) == 1 and new[0]["alg"] == "ES256"

    bad = submit(client, "/admin/keys", "/admin/keys/rotate", alg="HS256")
    assert bad.status_code == 400 and len(services.keys.list_keys()) == len(after)
    bad = submit(client, "/admin/keys", "/admin/keys/retire", kid="no-such-kid")
    assert bad.status_code == 400

    retired = submit(client, "/admin/keys", "/admin/keys/retire", kid=new[0]["kid"])
    assert retired.status_code in (303, 400)  # a pending key may be retired; the only signer may not

    monkeypatch.setattr(services.admin, "_clock", lambda: time.time() + 16 * 60)
    stale = submit(client, "/admin/keys", "/admin/keys/rotate", alg="")
    assert stale.status_code == 302 and "reauth=1" in stale.headers["Location"]
    assert len(services.keys.list_keys()) == len(after)


# -- the audit log -------------------------------------------------------------------------------------


def test_audit_filter_page_and_export(client, admins, services, settings):
    for i in range(5):
        services.audit.record("test.event", actor=f"tester{i}", subject="s1", outcome="success")
    services.audit.record("test.other", actor="tester9", outcome="failure")
    services.audit.flush()
    signed_in(client, admins[AUDITOR])
    page = client.get("/admin/audit?event=test.&limit=2")
    html = text(page)
    assert page.status_code == 200 and html.count('<td class="code">test.') == 2
    assert "offset=2" in html and "limit=2" in html  # next page link
    second = text(client.get("/admin/audit?event=test.&limit=2&offset=2"))
    assert "offset=0" in second
    failures = text(client.get("/admin/audit?outcome=failure&event=test."))
    assert "tester9" in failures and "tester1" not in failures
    # "today" as the console reads dates: in the display timezone (Asia/Shanghai), not the machine's
    today = datetime.datetime.now(ZoneInfo(settings.display_timezone)).strftime("%Y-%m-%d")
    dated = text(client.get(f"/admin/audit?event=test.event&from={today}&to={today}"))
    assert "tester4" in dated
    assert "tester4" not in text(client.get("/admin/audit?event=test.event&from=2000-01-01&to=2000-01-02"))

    bad = client.get("/admin/audit?from=yesterday")
    assert bad.status_code == 400 and "YYYY-MM-DD" in text(bad)

    exports = re.findall(
        r'href="(/admin/audit/export\?[^"]+)"', text(client.get("/admin/audit?event=test.event"))
    )
    assert len(exports) == 2
    jsonl = client.get(unescape(exports[0]))
    assert jsonl.status_code == 200 and jsonl.headers["Content-Disposition"].endswith('audit.jsonl"')
    lines = [line for line in text(jsonl).splitlines() if line]
    assert len(lines) == 5 and all('"test.event"' in line for line in lines)
    csv = client.get(unescape(exports[1]))
    assert csv.status_code == 200 and len(text(csv).splitlines()) == 6
    assert client.get("/admin/audit/export?format=xml").status_code == 400


# -- languages and junk ---------------------------------------------------------------------------------


def test_pages_render_in_chinese_by_default_and_in_english_on_request(client, admins):
    signed_in(client, admins[SUPER_ADMIN])
    chinese = text(client.get("/admin/"))
    assert '<html lang="zh-CN">' in chinese and "管理控制台" in chinese and "签名密钥" in chinese
    english = text(client.get("/admin/keys?ui_locales=en"))
    assert '<html lang="en">' in english and "Signing keys" in english and "签名密钥" not in english
    switched = client.get("/lang/en?next=/admin/persons")
    assert switched.headers["Location"] == "/admin/persons"
    page = text(client.get("/admin/persons"))
    assert "Every search and every record opened is recorded in the audit log." in page
    assert "<script" not in page.lower()


JUNK = [
    {"offset": "-1", "limit": "abc"},
    {"offset": "1" * 400, "limit": "99999999999"},
    {"q": "x" * 20000, "event": "\x00" * 10, "from": "2024-13-45", "to": "x" * 5000},
    {"outcome": "%", "client_id": "'; drop table clients; --", "all": "1" * 300, "done": "<script>"},
]


@pytest.mark.parametrize("role", [SUPER_ADMIN, AUDITOR])
def test_junk_query_parameters_never_cause_a_500(client, admins, role, services):
    register_client(services)
    signed_in(client, admins[role])
    paths = [
        "/admin/",
        *SECTIONS,
        "/admin/clients/casehub",
        "/admin/clients/casehub/edit",
        "/admin/audit/export",
    ]
    for path in paths:
        for junk in JUNK:
            response = client.get(path, query_string=junk)
            assert response.status_code < 500, (path, junk, text(response)[:500])
            assert "<script>" not in text(response)
    assert client.get("/admin/persons/" + "x" * 3000).status_code < 500
    assert client.get("/admin/entities/%00").status_code < 500
