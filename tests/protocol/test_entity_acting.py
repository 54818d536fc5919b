"""Acting for a legal entity: the chooser, the `entity` claim in every token, revocation on the next token."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from flows import PORTAL, authorize_params, basic, follow, hidden_inputs, query_of, redeem
from joserfc import jwt
from joserfc.jwk import KeySet

USCC = "91350100M000100Y43"  # 示例科技有限公司 in the reference enterprise register, represented by 张三
REPRESENTATIVE = {
    "username": "zhangsan",
    "password": "correct horse battery",
    "name": "张三",
    "id_number": "410105198503121235",
}
AGENT = {
    "username": "lisi",
    "password": "correct horse battery",
    "name": "李四",
    "id_number": "440305199207182464",
}
STRANGER = {
    "username": "wangwu",
    "password": "correct horse battery",
    "name": "王五",
    "id_number": "310101197801013570",
}
CLIENT = {**PORTAL, "scope": "openid profile entity"}


@pytest.fixture
def world(settings, services, reference_registers):  # `services` empties the tables
    from idp.app import build_services, create_app

    wired = settings.with_overrides(enterprise_register_url=reference_registers)
    services = build_services(wired)  # noqa: F811 - this test needs the registers wired
    services.clients.register(CLIENT)
    rep = services.persons.upsert(REPRESENTATIVE)
    agent = services.persons.upsert(AGENT)
    services.persons.upsert(STRANGER)
    entity = services.entities.create_entity(USCC, "示例科技有限公司")
    services.entities.verify_entity(entity.id)
    grant = services.entities.grant_agent(
        entity.id, agent.id, ["case:apply"], int(time.time()) + 86400, rep.id
    )
    app = create_app(wired, services)
    return app.test_client(), services, entity, grant, rep


def sign_in(client, person, choose: str | None, **extra):
    """Authorize with the entity scope; on the chooser pick `choose` ("self" or an entity id)."""
    auth = authorize_params(CLIENT, scope="openid profile entity", **extra)
    response = client.get("/authorize?" + urlencode(auth.params))
    for _ in range(8):
        location = response.headers.get("Location", "")
        if response.status_code == 302 and location.startswith(CLIENT["redirect_uris"][0]):
            return auth, query_of(location)
        if response.status_code == 302:
            response = client.get(location)
            continue
        html = response.get_data(as_text=True)
        assert response.status_code == 200, html[:300]
        if 'name="acting"' in html:
            assert choose is not None, "unexpected chooser"
            response = client.post("/entity/select", data={**hidden_inputs(html), "acting": choose})
        elif 'name="password"' in html:
            fields = {**hidden_inputs(html), "identifier": person["username"], "password": person["password"]}
            response = client.post("/login", data=fields)
        elif 'name="choice"' in html:  # prompt=select_account: continue as the signed-in person
            response = client.post("/select-account", data={**hidden_inputs(html), "choice": "continue"})
        else:
            raise AssertionError(f"unexpected page: {html[:300]}")
    raise AssertionError("too many steps")


def tokens_for(client, person, choose, **extra):
    auth, result = sign_in(client, person, choose, **extra)
    response = redeem(client, result["code"], auth, CLIENT)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def decode(client, token):
    return jwt.decode(token, KeySet.import_key_set(client.get("/jwks.json").get_json())).claims


def test_agent_acting_for_the_entity_gets_the_entity_claim_everywhere(world):
    client, _services, entity, _grant, _rep = world
    tokens = tokens_for(client, AGENT, entity.id)
    expected = {"uscc": USCC, "name": "示例科技有限公司", "role": "agent", "powers": ["case:apply"]}
    id_claims = decode(client, tokens["id_token"])
    assert id_claims["entity"] == expected and id_claims["sub"] != USCC  # sub stays the person
    assert decode(client, tokens["access_token"])["entity"] == expected
    userinfo = client.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).get_json()
    assert userinfo["entity"] == expected and userinfo["name"] == "李四"
    introspection = client.post(
        "/introspect",
        data={"token": tokens["access_token"]},
        headers=basic(CLIENT["client_id"], CLIENT["client_secret"]),
    )
    assert introspection.get_json()["entity"]["uscc"] == USCC


def test_choosing_myself_gives_no_entity_claim(world):
    client, *_ = world
    tokens = tokens_for(client, AGENT, "self")
    assert "entity" not in decode(client, tokens["id_token"])
    assert "entity" not in decode(client, tokens["access_token"])


def test_the_choice_holds_for_the_session_and_select_account_switches(world):
    client, _services, entity, _grant, _rep = world
    tokens_for(client, AGENT, entity.id)
    silent = tokens_for(client, AGENT, None, prompt="none")  # SSO: no page, same choice
    assert decode(client, silent["id_token"])["entity"]["uscc"] == USCC
    switched = tokens_for(client, AGENT, "self", prompt="select_account")
    assert "entity" not in decode(client, switched["id_token"])


def test_revoked_agent_gets_nothing_on_the_next_token(world):
    client, services, entity, grant, rep = world
    tokens = tokens_for(client, AGENT, entity.id)
    services.entities.revoke_authorisation(grant.id, rep.id)
    refresh = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic(CLIENT["client_id"], CLIENT["client_secret"]),
    )
    assert refresh.status_code == 400 and refresh.get_json()["error"] == "invalid_grant"
    userinfo = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401
    introspection = client.post(
        "/introspect",
        data={"token": tokens["access_token"]},
        headers=basic(CLIENT["client_id"], CLIENT["client_secret"]),
    )
    assert introspection.get_json() == {"active": False}
    # the next sign-in no longer offers the entity (no authorisation left): no chooser, no claim
    again = tokens_for(client, AGENT, None, prompt="login")
    assert "entity" not in decode(client, again["id_token"])


def test_suspended_entity_cannot_be_acted_for(world):
    client, services, entity, _grant, _rep = world
    auth, result = sign_in(client, AGENT, entity.id)
    services.entities.suspend(entity.id)
    response = redeem(client, result["code"], auth, CLIENT)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_choosing_an_entity_without_authority_is_refused_on_the_page(world):
    client, _services, entity, _grant, _rep = world
    auth = authorize_params(CLIENT, scope="openid profile entity")
    response = client.get("/authorize?" + urlencode(auth.params))
    page = client.get(response.headers["Location"])
    fields = {
        **hidden_inputs(page.get_data(as_text=True)),
        "identifier": "lisi",
        "password": AGENT["password"],
    }
    response = client.post("/login", data=fields)
    response = client.get(response.headers["Location"])
    chooser = client.get(response.headers["Location"])
    html = chooser.get_data(as_text=True)
    assert 'name="acting"' in html and "示例科技有限公司" in html
    refused = client.post("/entity/select", data={**hidden_inputs(html), "acting": "0" * 32})
    assert refused.status_code == 400 and "Traceback" not in refused.get_data(as_text=True)


def test_person_without_authorisations_sees_no_chooser(world):
    client, *_ = world
    tokens = tokens_for(client, STRANGER, None)
    assert "entity" not in decode(client, tokens["id_token"])


def test_without_the_entity_scope_there_is_no_chooser(world):
    client, *_ = world
    auth = authorize_params(CLIENT, scope="openid profile")
    response = client.get("/authorize?" + urlencode(auth.params))
    location = follow(
        client, response, CLIENT["redirect_uris"][0], username="lisi", password=AGENT["password"]
    )
    assert "code" in query_of(location)
