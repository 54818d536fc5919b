"""The provider with its sources wired by settings: LDAP logins, the registers for verification."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from flows import PORTAL, authorize_params, follow, hidden_inputs, query_of, redeem
from joserfc import jwt
from joserfc.jwk import KeySet
from source_servers import READER_DN, READER_PASSWORD, SUFFIX
from sqlalchemy import select

from idp.store.models import PersonRow


@pytest.fixture
def ldap_app(settings, services, slapd):
    from idp.app import build_services, create_app

    ldap_settings = settings.with_overrides(
        person_source="ldap",
        ldap_url=slapd.url,
        ldap_base_dn=SUFFIX,
        ldap_bind_dn=READER_DN,
        ldap_bind_password=READER_PASSWORD,
        ldap_timeout=2.0,
    )
    ldap_services = build_services(ldap_settings)
    ldap_services.clients.register(PORTAL)
    app = create_app(ldap_settings, ldap_services)
    return app, ldap_services


@pytest.mark.parametrize("identifier", ["zhangsan", "13800000001", "410105198503121235"])
def test_login_through_ldap_links_a_verified_local_person(ldap_app, identifier):
    app, services = ldap_app
    client = app.test_client()
    auth = authorize_params()
    response = client.get("/authorize?" + urlencode(auth.params))
    location = follow(
        client, response, PORTAL["redirect_uris"][0], username=identifier, password="Zhangsan#2026"
    )
    tokens = redeem(client, query_of(location)["code"], auth).get_json()
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    claims = jwt.decode(tokens["id_token"], keys).claims
    assert claims["acr"] == "urn:cn:gov:loa:2"  # the directory holds a valid resident ID number
    with services.tokens.engine().connect() as conn:
        rows = conn.execute(select(PersonRow.external_source, PersonRow.id, PersonRow.name)).all()
    assert [(r.external_source, r.name) for r in rows] == [("ldap", "张三")]
    assert claims["sub"] == rows[0].id


def test_wrong_ldap_password_is_the_generic_failure(ldap_app):
    app, _services = ldap_app
    client = app.test_client()
    page = client.get("/login")
    response = client.post(
        "/login",
        data={**hidden_inputs(page.get_data(as_text=True)), "identifier": "zhangsan", "password": "nope"},
    )
    assert response.status_code == 401


def test_directory_down_is_a_clear_503_and_no_session(settings, services, private_slapd):
    from idp.app import build_services, create_app

    ldap_settings = settings.with_overrides(
        person_source="ldap",
        ldap_url=private_slapd.url,
        ldap_base_dn=SUFFIX,
        ldap_bind_dn=READER_DN,
        ldap_bind_password=READER_PASSWORD,
        ldap_timeout=1.0,
    )
    app = create_app(ldap_settings, build_services(ldap_settings))
    private_slapd.stop()
    client = app.test_client()
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            **hidden_inputs(page.get_data(as_text=True)),
            "identifier": "zhangsan",
            "password": "Zhangsan#2026",
        },
    )
    assert response.status_code == 503
    assert "idp_session" not in (response.headers.get("Set-Cookie") or "")
    assert "Traceback" not in response.get_data(as_text=True)


def test_ldap_setting_needs_url_and_base_dn():
    from idp.settings import Settings

    with pytest.raises(ValueError, match="IDP_LDAP_URL"):
        Settings.from_env({"IDP_PERSON_SOURCE": "ldap"})
    assert Settings.from_env({"IDP_LDAP_TIMEOUT": "2.5"}).ldap_timeout == 2.5


def test_registers_are_wired_from_settings(settings, services, register_url):
    from idp.app import build_services

    wired = build_services(
        settings.with_overrides(population_register_url=register_url, enterprise_register_url=register_url)
    )
    person = wired.persons.upsert({"username": "selfreg", "password": "long enough pw", "name": "张三"})
    wired.accounts.verify_real_name(person.id, "张三", "410105198503121235")
    assert wired.persons.get(person.id).verified
    entity = wired.entities.create_entity("91350100M000100Y43", "示例科技有限公司")
    assert wired.entities.verify_entity(entity.id).status == "verified"
