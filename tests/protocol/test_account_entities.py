"""My entities and agents: a legal representative grants and revokes agents from their own pages."""

from __future__ import annotations

import datetime
import time

import pytest
from flows import hidden_inputs

USCC = "91350100M000100Y43"
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


@pytest.fixture
def world(settings, services, reference_registers):  # `services` empties the tables
    from idp.app import build_services, create_app

    wired = settings.with_overrides(enterprise_register_url=reference_registers)
    built = build_services(wired)
    rep = built.persons.upsert(REPRESENTATIVE)
    agent = built.persons.upsert(AGENT)
    entity = built.entities.create_entity(USCC, "示例科技有限公司")
    built.entities.verify_entity(entity.id)
    return create_app(wired, built), built, entity, rep, agent


def signed_in_as(app, services, person):
    client = app.test_client()
    handle, _session = services.sso.start(person.id, "urn:cn:gov:loa:3", ("pwd", "otp", "mfa"), None)
    client.set_cookie("idp_session", handle)
    return client


def tomorrow() -> str:
    return (datetime.date.today() + datetime.timedelta(days=2)).isoformat()


def test_representative_grants_and_revokes_an_agent(world):
    app, services, entity, rep, agent = world
    client = signed_in_as(app, services, rep)
    page = client.get("/account/entities")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "示例科技有限公司" in html and "授权经办人" in html
    form = {
        **hidden_inputs(html),
        "name": "李四",
        "id_number": AGENT["id_number"],
        "powers": "case:apply",
        "valid_until": tomorrow(),
    }
    response = client.post("/account/entities/grant", data=form)
    assert response.status_code == 302
    options = services.entities.acting_options(agent.id)
    assert [(o.uscc, o.role, o.powers) for o in options] == [(USCC, "agent", ("case:apply",))]
    html = client.get("/account/entities").get_data(as_text=True)
    assert "440305********2464" in html and AGENT["id_number"] not in html  # masked on the page
    authorisation = services.entities.authorisations_of_entity(entity.id, active_only=True)
    agent_auth = next(a for a in authorisation if a.person_id == agent.id)
    response = client.post(
        "/account/entities/revoke", data={**hidden_inputs(html), "authorisation_id": agent_auth.id}
    )
    assert response.status_code == 302
    assert services.entities.acting_options(agent.id) == []


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"name": "王五"}, 400),  # name does not match the number
        ({"id_number": "440305199207182465"}, 400),  # bad check character
        ({"valid_until": "2001-01-01"}, 400),  # in the past
        ({"valid_until": "soon"}, 400),
        ({"powers": "BAD POWER!"}, 400),
    ],
)
def test_bad_grants_are_refused_with_a_readable_page(world, change, status):
    app, services, _entity, rep, agent = world
    client = signed_in_as(app, services, rep)
    html = client.get("/account/entities").get_data(as_text=True)
    form = {
        **hidden_inputs(html),
        "name": "李四",
        "id_number": AGENT["id_number"],
        "powers": "case:apply",
        "valid_until": tomorrow(),
        **change,
    }
    response = client.post("/account/entities/grant", data=form)
    assert response.status_code == status and "Traceback" not in response.get_data(as_text=True)
    assert services.entities.acting_options(agent.id) == []


def test_an_agent_cannot_grant_and_can_give_up_their_authority(world):
    app, services, entity, rep, agent = world
    grant = services.entities.grant_agent(
        entity.id, agent.id, ["case:apply"], int(time.time()) + 86400, rep.id
    )
    client = signed_in_as(app, services, agent)
    html = client.get("/account/entities").get_data(as_text=True)
    assert "示例科技有限公司" in html
    form = {
        **hidden_inputs(html),
        "entity_id": entity.id,
        "name": "张三",
        "id_number": REPRESENTATIVE["id_number"],
        "powers": "x",
        "valid_until": tomorrow(),
    }
    assert client.post("/account/entities/grant", data=form).status_code == 404
    response = client.post(
        "/account/entities/revoke", data={**hidden_inputs(html), "authorisation_id": grant.id}
    )
    assert response.status_code == 302 and services.entities.acting_options(agent.id) == []


def test_pages_need_a_session_and_csrf(world):
    app, services, entity, rep, _agent = world
    anonymous = app.test_client()
    assert anonymous.get("/account/entities").headers["Location"].endswith("/login")
    client = signed_in_as(app, services, rep)
    response = client.post("/account/entities/grant", data={"entity_id": entity.id, "name": "李四"})
    assert response.status_code == 400  # no CSRF token
    assert (
        client.post(
            "/account/entities/revoke",
            data={
                **hidden_inputs(client.get("/account/entities").get_data(as_text=True)),
                "authorisation_id": "nope",
            },
        ).status_code
        == 404
    )
