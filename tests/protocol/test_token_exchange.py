"""Token exchange (RFC 8693): the case service trades a person's access token for one meant for the
e-certificate service, with `act` naming the case service; every refusal is an OAuth error."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from flows import PERSON, PORTAL, authorize_params, basic, decode, hidden_inputs, query_of, redeem, refused
from sqlalchemy import update

from idp.services.clients import ClientMetadataError
from idp.services.tokens import digest_token
from idp.store.models import TokenRow

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"

CASES = {
    "client_id": "cases",
    "client_name": "Case service",
    "client_secret": "cases-secret-0123456789-0123456789-abcdef",
    "redirect_uris": ["https://cases.example/cb"],
    "post_logout_redirect_uris": ["https://cases.example/bye"],
    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "openid profile entity certificates:read cases:read",
    "token_exchange": [{"audience": "certificates", "scopes": ["certificates:read", "certificates:verify"]}],
}
CERTIFICATES = {
    "client_id": "certificates",
    "client_name": "E-certificate service",
    "client_secret": "certificates-secret-0123456789-0123456789",
    "grant_types": ["client_credentials"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "certificates:read",
}
PLAIN = {  # a case service without token-exchange configuration
    **CASES,
    "client_id": "cases-plain",
    "redirect_uris": ["https://plain.example/cb"],
    "post_logout_redirect_uris": [],
    "token_exchange": [],
}
PUBLIC = {
    "client_id": "spa",
    "client_name": "Single-page app",
    "redirect_uris": ["https://spa.example/cb"],
    "grant_types": ["authorization_code"],
    "token_endpoint_auth_method": "none",
    "scope": "openid certificates:read",
}
LOGIN_SCOPE = "openid profile certificates:read cases:read"


@pytest.fixture
def registered(services):
    for metadata in (CASES, CERTIFICATES, PLAIN, PUBLIC, PORTAL):
        services.clients.register(metadata)
    services.persons.upsert(PERSON)
    yield services
    services.audit.close()


def sign_in(client, registered_client: dict = CASES, scope: str = LOGIN_SCOPE, person: dict = PERSON):
    """Log in at the client (login, consent, entity chooser as they come) and redeem the code."""
    auth = authorize_params(registered_client, scope=scope)
    response = client.get("/authorize?" + urlencode(auth.params))
    for _ in range(10):
        location = response.headers.get("Location", "")
        if response.status_code == 302 and location.startswith(registered_client["redirect_uris"][0]):
            break
        if response.status_code == 302:
            response = client.get(location)
            continue
        html = response.get_data(as_text=True)
        assert response.status_code == 200, html[:300]
        fields = hidden_inputs(html)
        if 'name="password"' in html:
            response = client.post(
                "/login", data={**fields, "identifier": person["username"], "password": person["password"]}
            )
        elif 'name="decision"' in html:
            response = client.post("/consent", data={**fields, "decision": "allow"})
        elif 'name="acting"' in html:
            response = client.post("/entity/select", data={**fields, "acting": person["acting"]})
        else:
            raise AssertionError(f"unexpected page: {html[:300]}")
    else:
        raise AssertionError("too many steps")
    tokens = redeem(client, query_of(location)["code"], auth, registered_client)
    assert tokens.status_code == 200, tokens.get_json()
    return tokens.get_json()


def exchange(client, subject_token: str | None, as_client: dict = CASES, **form: str):
    data = {
        "grant_type": GRANT,
        "subject_token": subject_token,
        "subject_token_type": ACCESS,
        "audience": "certificates",
        **form,
    }
    return client.post(
        "/token",
        data={k: v for k, v in data.items() if v is not None},
        headers=basic(as_client["client_id"], as_client["client_secret"]),
    )


def introspect(client, token: str, as_client: dict = CERTIFICATES) -> dict:
    response = client.post(
        "/introspect",
        data={"token": token},
        headers=basic(as_client["client_id"], as_client["client_secret"]),
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def events(services, kind: str = "token.exchanged") -> list[dict]:
    assert services.audit.flush(10)
    return [json.loads(line) for line in services.audit.export("jsonl", event=kind)]


# -- the happy path --------------------------------------------------------------------------------


def test_exchange_for_the_certificate_service(client, registered):
    tokens = sign_in(client)
    subject = decode(client, tokens["access_token"]).claims
    before = int(time.time())
    response = exchange(client, tokens["access_token"])
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["issued_token_type"] == ACCESS and body["token_type"] == "Bearer"
    assert body["scope"] == "certificates:read"  # allowed for the audience ∩ held by the subject token
    assert "refresh_token" not in body and "id_token" not in body
    assert 0 < body["expires_in"] <= subject["exp"] - before

    token = decode(client, body["access_token"])
    assert token.header["typ"] == "at+jwt"
    claims = token.claims
    assert claims["aud"] == "certificates" and claims["client_id"] == "cases"
    assert claims["act"] == {"sub": "cases"}
    assert claims["sub"] == subject["sub"] == decode(client, tokens["id_token"]).claims["sub"]
    assert claims["scope"] == "certificates:read"
    for name in ("acr", "amr", "auth_time", "sid", "iss"):
        assert claims[name] == subject[name], name
    assert claims["exp"] <= subject["exp"] and claims["jti"] != subject["jti"]
    assert "entity" not in claims

    seen = introspect(client, body["access_token"])  # the audience's view
    assert seen["active"] is True and seen["aud"] == "certificates" and seen["act"] == {"sub": "cases"}
    assert (
        seen["client_id"] == "cases" and seen["sub"] == claims["sub"] and seen["scope"] == "certificates:read"
    )
    assert introspect(client, body["access_token"], CASES)["active"] is True  # the acting client's too
    assert introspect(client, body["access_token"], PORTAL) == {"active": False}  # nobody else's
    # the certificate service learns nothing about the case service's own token
    assert introspect(client, tokens["access_token"]) == {"active": False}


def test_an_explicit_scope_within_both_limits(client, registered):
    tokens = sign_in(client)
    response = exchange(client, tokens["access_token"], scope="certificates:read")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["scope"] == "certificates:read"


def test_requested_token_type_access_token_and_private_key_free_post_auth(client, registered):
    tokens = sign_in(client)
    response = client.post(
        "/token",
        data={
            "grant_type": GRANT,
            "subject_token": tokens["access_token"],
            "subject_token_type": ACCESS,
            "requested_token_type": ACCESS,
            "audience": "certificates",
            "client_id": "cases",
            "client_secret": CASES["client_secret"],
        },
    )
    refused(response, "invalid_client")  # cases authenticates with client_secret_basic only
    response = exchange(client, tokens["access_token"], requested_token_type=ACCESS)
    assert response.status_code == 200, response.get_json()


# -- refusals --------------------------------------------------------------------------------------


def test_a_client_without_exchange_configuration_is_unauthorized(client, registered):
    tokens = sign_in(client, PLAIN)
    refused(exchange(client, tokens["access_token"], PLAIN), "unauthorized_client")


def test_a_public_client_is_unauthorized(client, registered):
    response = client.post(
        "/token",
        data={
            "grant_type": GRANT,
            "client_id": "spa",
            "subject_token": "x",
            "subject_token_type": ACCESS,
            "audience": "certificates",
        },
    )
    refused(response, "unauthorized_client")


def test_unauthenticated_requests_are_invalid_client(client, registered):
    response = client.post(
        "/token",
        data={
            "grant_type": GRANT,
            "subject_token": "x",
            "subject_token_type": ACCESS,
            "audience": "certificates",
        },
        headers=basic("cases", "wrong-secret-0123456789-0123456789-abcdef"),
    )
    refused(response, "invalid_client")


def test_a_token_of_another_client_is_invalid_request(client, registered):
    tokens = sign_in(client, PLAIN)
    refused(exchange(client, tokens["access_token"]), "invalid_request")


def test_a_client_credentials_token_is_invalid_request(client, registered):
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "certificates:read"},
        headers=basic("cases", CASES["client_secret"]),
    )
    assert response.status_code == 200, response.get_json()
    body = refused(exchange(client, response.get_json()["access_token"]), "invalid_request")
    assert "person" in body["error_description"]


def test_a_refresh_token_or_garbage_is_invalid_request(client, registered):
    tokens = sign_in(client)
    refused(exchange(client, tokens["refresh_token"]), "invalid_request")
    refused(exchange(client, "not-a-token"), "invalid_request")
    refused(exchange(client, tokens["id_token"]), "invalid_request")


def test_a_revoked_or_expired_subject_token_is_invalid_request(client, registered, services):
    tokens = sign_in(client)
    revoked = client.post(
        "/revoke", data={"token": tokens["access_token"]}, headers=basic("cases", CASES["client_secret"])
    )
    assert revoked.status_code == 200
    refused(exchange(client, tokens["access_token"]), "invalid_request")

    other = sign_in(client)
    with services.tokens.engine().begin() as conn:
        conn.execute(
            update(TokenRow)
            .where(TokenRow.digest == digest_token(other["access_token"]))
            .values(expires_at=int(time.time()) - 1)
        )
    refused(exchange(client, other["access_token"]), "invalid_request")


def test_an_exchanged_token_cannot_be_exchanged_again(client, registered):
    tokens = sign_in(client)
    exchanged = exchange(client, tokens["access_token"]).get_json()["access_token"]
    refused(exchange(client, exchanged), "invalid_request")


@pytest.mark.parametrize("audience", ["portal", "nobody", "cases"])
def test_an_audience_not_configured_is_invalid_target(client, registered, audience):
    tokens = sign_in(client)
    refused(exchange(client, tokens["access_token"], audience=audience), "invalid_target")


def test_a_disabled_audience_is_invalid_target(client, registered, services):
    tokens = sign_in(client)
    services.clients.set_disabled("certificates", True)
    refused(exchange(client, tokens["access_token"]), "invalid_target")


def test_resource_is_invalid_target(client, registered):
    tokens = sign_in(client)
    response = exchange(client, tokens["access_token"], resource="https://certificates.example/api")
    refused(response, "invalid_target")


@pytest.mark.parametrize(
    "scope",
    [
        "cases:read",  # held by the subject token, not allowed for the audience
        "certificates:verify",  # allowed for the audience, not held by the subject token
        "certificates:read cases:read",
        "openid",
        "certificates:read admin:all",
    ],
)
def test_a_scope_outside_either_limit_is_invalid_scope(client, registered, scope):
    tokens = sign_in(client)
    refused(exchange(client, tokens["access_token"], scope=scope), "invalid_scope")


def test_no_usable_scope_by_default_is_invalid_scope(client, registered):
    tokens = sign_in(client, scope="openid profile cases:read")
    refused(exchange(client, tokens["access_token"]), "invalid_scope")


def test_without_the_persons_consent_it_is_invalid_request(client, registered, services):
    tokens = sign_in(client)
    person_id = decode(client, tokens["access_token"]).claims["sub"]
    services.consent.revoke(person_id, "cases")
    body = refused(exchange(client, tokens["access_token"]), "invalid_request")
    assert body["error_description"] == "The person has not consented to this purpose."


def test_a_consent_not_covering_the_resource_scope_is_invalid_request(client, registered, services):
    tokens = sign_in(client)
    person_id = decode(client, tokens["access_token"]).claims["sub"]
    services.consent.revoke(person_id, "cases")
    services.consent.grant(person_id, "cases", ["openid", "profile", "cases:read"])
    refused(exchange(client, tokens["access_token"]), "invalid_request")


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"subject_token": None}, "invalid_request"),
        ({"subject_token_type": None}, "invalid_request"),
        ({"audience": None}, "invalid_request"),
        ({"audience": ""}, "invalid_request"),
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:id_token"}, "invalid_request"),
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}, "invalid_request"),
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:jwt"}, "invalid_request"),
        ({"subject_token_type": "access_token"}, "invalid_request"),
        ({"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}, "invalid_request"),
        ({"requested_token_type": "urn:ietf:params:oauth:token-type:id_token"}, "invalid_request"),
        ({"actor_token": "x", "actor_token_type": ACCESS}, "invalid_request"),
        ({"actor_token": "x"}, "invalid_request"),
        ({"subject_token": "x" * 10_000}, "invalid_request"),
        ({"audience": "c" * 129}, "invalid_request"),
        ({"scope": "certificates:read " * 200}, "invalid_request"),
        ({"audience": "电子证照"}, "invalid_target"),
        ({"subject_token": "令牌"}, "invalid_request"),
        ({"scope": "证照:读取"}, "invalid_scope"),
        ({"subject_token_type": "令牌类型"}, "invalid_request"),
    ],
)
def test_bad_input_is_an_oauth_error(client, registered, form, error):
    tokens = sign_in(client)
    response = exchange(client, **{"subject_token": tokens["access_token"], **form})
    assert response.status_code < 500
    refused(response, error)


def test_repeated_parameters_are_invalid_request(client, registered):
    tokens = sign_in(client)
    response = client.post(
        "/token",
        data={
            "grant_type": GRANT,
            "subject_token": tokens["access_token"],
            "subject_token_type": ACCESS,
            "audience": ["certificates", "portal"],
        },
        headers=basic("cases", CASES["client_secret"]),
    )
    refused(response, "invalid_request")


# -- revocation follows the subject token's grant and session --------------------------------------


def test_logout_revokes_the_exchanged_token(client, registered):
    tokens = sign_in(client)
    exchanged = exchange(client, tokens["access_token"]).get_json()["access_token"]
    assert introspect(client, exchanged)["active"] is True
    params = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://cases.example/bye"}
    assert client.get("/logout?" + urlencode(params)).status_code == 302
    assert introspect(client, exchanged) == {"active": False}
    refused(exchange(client, tokens["access_token"]), "invalid_request")


def test_revoking_the_grant_revokes_the_exchanged_token(client, registered):
    tokens = sign_in(client)
    exchanged = exchange(client, tokens["access_token"]).get_json()["access_token"]
    revoked = client.post(
        "/revoke", data={"token": tokens["refresh_token"]}, headers=basic("cases", CASES["client_secret"])
    )
    assert revoked.status_code == 200
    assert introspect(client, exchanged) == {"active": False}


def test_disabling_the_audience_revokes_tokens_exchanged_for_it(client, registered, services):
    tokens = sign_in(client)
    exchanged = exchange(client, tokens["access_token"]).get_json()["access_token"]
    assert services.tokens.revoke_client("certificates") == 1
    assert introspect(client, exchanged, CASES) == {"active": False}
    assert introspect(client, tokens["access_token"], CASES)["active"] is True


# -- audit -----------------------------------------------------------------------------------------


def test_exchanges_are_audited_and_listed_as_data_access(client, registered, services):
    tokens = sign_in(client)
    person_id = decode(client, tokens["access_token"]).claims["sub"]
    assert exchange(client, tokens["access_token"]).status_code == 200
    refused(exchange(client, tokens["access_token"], audience="portal"), "invalid_target")
    refused(exchange(client, tokens["access_token"], scope="cases:read"), "invalid_scope")
    success, target, scope = events(services)[-3:]
    assert success["outcome"] == "success" and success["actor"] == "cases" and success["client_id"] == "cases"
    assert success["subject"] == person_id and success["purpose"] == "certificates:read"
    assert json.loads(success["details"]) == {"audience": "certificates"}
    assert target["outcome"] == "failure" and target["subject"] == person_id
    assert json.loads(target["details"]) == {"audience": "portal", "reason": "audience_not_allowed"}
    assert scope["outcome"] == "failure" and json.loads(scope["details"])["reason"] == "scope_not_allowed"
    accesses = [a for a in services.audit.events_for_subject(person_id) if a.event == "token.exchanged"]
    assert len(accesses) == 1 and accesses[0].purpose == "certificates:read"  # refusals read nothing
    assert services.audit.verify().ok


def test_a_refused_unconfigured_client_is_audited(client, registered, services):
    tokens = sign_in(client, PLAIN)
    refused(exchange(client, tokens["access_token"], PLAIN), "unauthorized_client")
    last = events(services)[-1]
    assert last["actor"] == "cases-plain" and last["outcome"] == "failure"
    assert json.loads(last["details"])["reason"] == "not_configured"


# -- resource scopes at /authorize, client metadata, discovery -------------------------------------


def test_the_consent_page_names_the_resource_scope(client, registered):
    auth = authorize_params(CASES, scope=LOGIN_SCOPE, ui_locales="en")
    response = client.get("/authorize?" + urlencode(auth.params))
    while response.status_code == 302:
        response = client.get(response.headers["Location"])
    fields = hidden_inputs(response.get_data(as_text=True))
    response = client.post(
        "/login", data={**fields, "identifier": PERSON["username"], "password": PERSON["password"]}
    )
    while response.status_code == 302:
        response = client.get(response.headers["Location"])
    page = response.get_data(as_text=True)
    assert "Access another government service on your behalf (certificates:read)" in page


def test_a_first_party_client_asks_consent_for_a_resource_scope(client, registered, services):
    services.clients.register({**CASES, "first_party": True})
    sign_in(client)  # answers the consent page
    person = services.persons.authenticate(PERSON["username"], PERSON["password"])
    assert services.consent.covers(person.id, "cases", ["certificates:read"])


@pytest.mark.parametrize(
    ("registered_scope", "requested"),
    [
        ("openid certificates:read", "openid cases:read"),  # not registered for it
        ("openid admin:clients", "openid admin:clients"),  # admin scopes never at /authorize
        ("openid Certificates:Read", "openid Certificates:Read"),  # not a resource scope
        ("openid catalogue.read", "openid catalogue.read"),
    ],
)
def test_only_registered_resource_scopes_can_be_requested(client, services, registered_scope, requested):
    services.clients.register({**CASES, "scope": registered_scope})
    auth = authorize_params(CASES, scope=requested)
    response = client.get("/authorize?" + urlencode(auth.params))
    assert response.status_code == 302
    assert query_of(response.headers["Location"])["error"] == "invalid_scope"


@pytest.mark.parametrize(
    "token_exchange",
    [
        "certificates",
        {"audience": "certificates", "scopes": ["certificates:read"]},
        [{"audience": "certificates"}],
        [{"audience": "certificates", "scopes": []}],
        [{"audience": "certificates", "scopes": "certificates:read"}],
        [{"audience": "certificates", "scopes": ["admin:clients"]}],
        [{"audience": "certificates", "scopes": ["with space"]}],
        [{"audience": "certificates", "scopes": ['quote"']}],
        [{"audience": "c" * 129, "scopes": ["certificates:read"]}],
        [{"audience": "", "scopes": ["certificates:read"]}],
        [{"audience": 7, "scopes": ["certificates:read"]}],
        [{"audience": "certificates", "scopes": ["certificates:read"], "extra": 1}],
        [{"audience": "certificates", "scopes": ["a:b"]}, {"audience": "certificates", "scopes": ["c:d"]}],
    ],
)
def test_invalid_token_exchange_metadata_is_refused(services, token_exchange):
    with pytest.raises(ClientMetadataError):
        services.clients.validate({**CASES, "token_exchange": token_exchange})


def test_a_public_client_cannot_be_configured_for_exchange(services):
    with pytest.raises(ClientMetadataError):
        services.clients.validate(
            {**PUBLIC, "token_exchange": [{"audience": "certificates", "scopes": ["certificates:read"]}]}
        )


def test_token_exchange_metadata_reaches_the_client(services):
    client, _ = services.clients.register(CASES)
    assert [(t.audience, t.scopes) for t in client.token_exchange] == [
        ("certificates", ("certificates:read", "certificates:verify"))
    ]
    assert services.clients.register(PLAIN)[0].token_exchange == ()


def test_discovery_lists_the_grant_type(client):
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert GRANT in metadata["grant_types_supported"]
    assert "certificates:read" not in metadata["scopes_supported"]


# -- acting for a legal entity ---------------------------------------------------------------------

USCC = "91350100M000100Y43"  # 示例科技有限公司 in the reference enterprise register
AGENT = {
    "username": "lisi",
    "password": "correct horse battery",
    "name": "李四",
    "id_number": "440305199207182464",
}
REPRESENTATIVE = {
    "username": "zhangsan",
    "password": "correct horse battery",
    "name": "张三",
    "id_number": "410105198503121235",
}


@pytest.fixture
def entity_world(settings, services, reference_registers):  # `services` empties the tables
    from idp.app import build_services, create_app

    wired = settings.with_overrides(enterprise_register_url=reference_registers)
    built = build_services(wired)
    for metadata in (CASES, CERTIFICATES):
        built.clients.register(metadata)
    rep = built.persons.upsert(REPRESENTATIVE)
    agent = built.persons.upsert(AGENT)
    entity = built.entities.create_entity(USCC, "示例科技有限公司")
    built.entities.verify_entity(entity.id)
    grant = built.entities.grant_agent(entity.id, agent.id, ["case:apply"], int(time.time()) + 86400, rep.id)
    yield create_app(wired, built).test_client(), built, entity, grant, rep
    built.audit.close()
    built.tokens.dispose()


def test_the_entity_claim_is_carried_and_a_revoked_authority_refused(entity_world):
    client, services, entity, grant, rep = entity_world
    tokens = sign_in(client, scope=LOGIN_SCOPE + " entity", person={**AGENT, "acting": entity.id})
    response = exchange(client, tokens["access_token"])
    assert response.status_code == 200, response.get_json()
    claims = decode(client, response.get_json()["access_token"]).claims
    assert claims["entity"]["uscc"] == USCC and claims["entity"]["role"] == "agent"
    assert claims["act"] == {"sub": "cases"}

    services.entities.revoke_authorisation(grant.id, rep.id)
    body = refused(exchange(client, tokens["access_token"]), "invalid_request")
    assert "entity" in body["error_description"]
    assert json.loads(events(services)[-1]["details"])["reason"] == "entity_authority_ended"


# -- dynamic registration cannot grant itself token exchange, and keeps what an operator set ------


def test_dynamic_registration_ignores_and_keeps_token_exchange(client, services):
    targets = [{"audience": "certificates", "scopes": ["certificates:read"]}]
    initial = services.registration.issue_initial_token("admin:test")[1]
    metadata = {
        "client_name": "Case service",
        "redirect_uris": ["https://cases.example/cb"],
        "scope": "openid certificates:read",
        "token_exchange": targets,
    }
    response = client.post("/connect/register", json=metadata, headers={"Authorization": f"Bearer {initial}"})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert services.clients.get(body["client_id"]).token_exchange == ()  # not the platform's to ask
    current = services.clients.find_any(body["client_id"])
    services.clients.register(  # the operator configures it
        {
            "client_id": current.client_id,
            "client_name": current.client_name,
            "redirect_uris": list(current.redirect_uris),
            "scope": " ".join(current.scope),
            "token_exchange": targets,
        }
    )
    update = {**metadata, "client_id": body["client_id"], "client_name": "Case service v2"}
    del update["token_exchange"]
    response = client.put(
        body["registration_client_uri"].removeprefix("http://idp.test"),
        json=update,
        headers={"Authorization": f"Bearer {body['registration_access_token']}"},
    )
    assert response.status_code == 200, response.get_json()
    kept = services.clients.get(body["client_id"])
    assert kept.client_name == "Case service v2"
    assert [(t.audience, t.scopes) for t in kept.token_exchange] == [("certificates", ("certificates:read",))]
