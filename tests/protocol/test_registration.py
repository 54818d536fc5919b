"""Dynamic client registration (RFC 7591) and management (RFC 7592): an admin issues an initial access
token, a platform registers with it, uses the credentials, reads, replaces and deletes its registration.
Every bad request is a JSON error, never a 5xx."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
import sqlalchemy as sa
from flows import ISSUER, PERSON, basic, login_for_code, redeem

from idp.services.registration import RegistrationService
from idp.store.db import build_sessionmaker

REGISTER = "/connect/register"
WEB = {
    "client_name": "电子证照",
    "redirect_uris": ["https://licences.example/cb"],
    "post_logout_redirect_uris": ["https://licences.example/bye"],
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "openid profile email",
}
BATCH = {
    "client_name": "Nightly batch",
    "grant_types": ["client_credentials"],
    "response_types": [],
    "scope": "catalogue.read",
}


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def path_of(uri: str) -> str:
    assert uri.startswith(ISSUER + "/")
    return uri.removeprefix(ISSUER)


def issue(services, **options) -> str:
    return services.registration.issue_initial_token("admin:test", **options)[1]


def register(client, token: str, metadata: dict, **kwargs):
    return client.post(REGISTER, json=metadata, headers=bearer(token), **kwargs)


def registered(client, services, metadata: dict = WEB) -> dict:
    response = register(client, issue(services), metadata)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def assert_json_error(response, status: int, errors: tuple[str, ...]) -> dict:
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text
    assert response.status_code == status, (response.status_code, text)
    assert response.mimetype == "application/json", text[:200]
    assert "Traceback" not in text
    body = response.get_json()
    assert isinstance(body, dict) and body["error"] in errors, body
    assert body["error_description"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "client_id" not in body and "registration_access_token" not in body
    return body


def assert_invalid_token(response) -> None:
    assert_json_error(response, 401, ("invalid_token",))
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def client_credentials(client, body: dict, scope: str = "catalogue.read"):
    return client.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": scope},
        headers=basic(body["client_id"], body["client_secret"]),
    )


def introspect(client, token: str, body: dict) -> dict:
    response = client.post(
        "/introspect", data={"token": token}, headers=basic(body["client_id"], body["client_secret"])
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def audit_events(services, kind: str) -> list[dict]:
    assert services.audit.flush(10)
    return [json.loads(line) for line in services.audit.export("jsonl", event=kind)]


# -- registration --------------------------------------------------------------------------------


def test_registration_answers_per_rfc_7591(client, services):
    response = register(
        client,
        issue(services),
        {
            **WEB,
            "client_id": "portal",  # the server chooses the client_id and the secret
            "client_secret": "my-own-chosen-secret-0123456789-0123456789",
            "logo_uri": "https://licences.example/logo.png",  # not understood: ignored
            "software_statement": "eyJ...",
            "x-vendor": {"nested": [1, 2, {"deep": None}]},
        },
    )
    assert response.status_code == 201, response.get_json()
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    body = response.get_json()
    assert body["client_id"] != "portal" and len(body["client_id"]) >= 22
    assert body["client_secret"] != "my-own-chosen-secret-0123456789-0123456789"
    assert len(body["client_secret"]) >= 43 and body["client_secret_expires_at"] == 0
    assert abs(body["client_id_issued_at"] - time.time()) < 60
    assert len(body["registration_access_token"]) >= 43
    assert body["registration_client_uri"] == f"{ISSUER}{REGISTER}/{body['client_id']}"
    assert body["client_name"] == "电子证照"
    assert body["redirect_uris"] == WEB["redirect_uris"]
    assert body["post_logout_redirect_uris"] == WEB["post_logout_redirect_uris"]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["response_types"] == ["code"] and body["scope"] == "openid profile email"
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert not {"logo_uri", "software_statement", "x-vendor", "first_party"} & set(body)
    assert services.clients.get("portal") is None


def test_only_digests_of_the_credentials_are_stored(client, services):
    body = registered(client, services)
    engine = services.tokens.engine()
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT * FROM clients WHERE client_id = :id"), {"id": body["client_id"]}
        ).mappings()
        stored = " ".join(str(v) for v in row.one().values())
    assert body["registration_access_token"] not in stored and body["client_secret"] not in stored
    assert hashlib.sha256(body["registration_access_token"].encode()).hexdigest() in stored


def test_registered_credentials_work_with_client_credentials(client, services):
    body = registered(client, services, BATCH)
    assert "redirect_uris" in body and body["redirect_uris"] == []
    response = client_credentials(client, body)
    assert response.status_code == 200, response.get_json()
    assert introspect(client, response.get_json()["access_token"], body)["active"] is True


def test_registered_credentials_work_in_the_code_flow(client, services):
    services.persons.upsert(PERSON)
    body = registered(client, services)
    auth, result = login_for_code(client, body)  # a third-party platform: the person consents
    tokens = redeem(client, result["code"], auth, body)
    assert tokens.status_code == 200, tokens.get_json()
    assert {"access_token", "id_token", "refresh_token"} <= set(tokens.get_json())


def test_a_public_client_registers_without_a_secret(client, services):
    body = registered(client, services, {**WEB, "token_endpoint_auth_method": "none"})
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    assert body["token_endpoint_auth_method"] == "none"


def test_null_members_are_taken_as_absent(client, services):
    body = registered(
        client, services, {**WEB, "client_name": None, "jwks": None, "post_logout_redirect_uris": None}
    )
    assert body["client_name"] == body["client_id"] and body["post_logout_redirect_uris"] == []


# -- the initial access token ---------------------------------------------------------------------


def test_a_single_use_token_is_refused_the_second_time(client, services):
    token = issue(services)
    assert register(client, token, WEB).status_code == 201
    assert_invalid_token(register(client, token, WEB))


def test_a_token_allows_max_uses_registrations(client, services):
    token = issue(services, max_uses=2)
    assert register(client, token, WEB).status_code == 201
    assert register(client, token, BATCH).status_code == 201
    assert_invalid_token(register(client, token, WEB))
    [listed] = services.registration.list_initial_tokens(include_inactive=True)
    assert listed.uses == 2 and not listed.is_active(time.time())


def test_a_revoked_token_is_refused(client, services):
    info, token = services.registration.issue_initial_token("admin:test", max_uses=5)
    assert services.registration.revoke_initial_token(info.id)
    assert_invalid_token(register(client, token, WEB))


def test_an_expired_token_is_refused(client, services):
    an_hour_ago = RegistrationService(
        build_sessionmaker(services.tokens.engine()),
        services.clients,
        tokens=services.tokens,
        issuer=ISSUER,
        clock=lambda: time.time() - 3600,
    )
    _, token = an_hour_ago.issue_initial_token("admin:test", ttl_seconds=600)
    assert_invalid_token(register(client, token, WEB))


def test_a_rejected_request_does_not_spend_the_token(client, services):
    token = issue(services)
    assert_json_error(
        register(client, token, {**WEB, "redirect_uris": ["http://evil.example/cb"]}),
        400,
        ("invalid_redirect_uri",),
    )
    assert register(client, token, WEB).status_code == 201


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic cG9ydGFsOnNlY3JldA=="},
        {"Authorization": "Bearer " + "a" * 5000},
        {"Authorization": "Bearer tökén"},
    ],
)
def test_registration_without_a_valid_initial_token_is_invalid_token(client, services, headers):
    issue(services)
    assert_invalid_token(client.post(REGISTER, json=WEB, headers=headers))


def test_another_kind_of_token_is_not_an_initial_token(client, services):
    body = registered(client, services)
    for value in (body["registration_access_token"], body["client_secret"]):
        assert_invalid_token(register(client, value, WEB))


# -- what registration refuses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope", ["admin:super_admin", "openid admin:platform_admin", "admin:anything", "ADMIN:super_admin"]
)
def test_admin_scopes_are_refused(client, services, scope):
    token = issue(services)
    body = assert_json_error(
        register(client, token, {**BATCH, "scope": scope}), 400, ("invalid_client_metadata",)
    )
    assert "admin" in body["error_description"]
    assert register(client, token, BATCH).status_code == 201  # not spent


@pytest.mark.parametrize("value", [True, "true", 1])
def test_first_party_is_refused(client, services, value):
    body = assert_json_error(
        register(client, issue(services), {**WEB, "first_party": value}), 400, ("invalid_client_metadata",)
    )
    assert "first_party" in body["error_description"]


def test_first_party_false_is_the_default_and_accepted(client, services):
    body = registered(client, services, {**WEB, "first_party": False})
    assert services.clients.get(body["client_id"]).first_party is False


BAD_METADATA = [
    ({**WEB, "redirect_uris": ["http://licences.example/cb"]}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": ["https://licences.example/cb#frag"]}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": ["licences.example/cb"]}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": ["https://[::1/cb"]}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": ["https://licences.example:99999/cb"]}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": ["https://licences.example/a b"]}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": [f"{ISSUER}/account"]}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": "https://licences.example/cb"}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": []}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": [None]}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": ["https://licences.example/" + "a" * 3000]}, "invalid_redirect_uri"),
    (
        {**WEB, "redirect_uris": [f"https://licences.example/{i}" for i in range(51)]},
        "invalid_client_metadata",
    ),
    ({k: v for k, v in WEB.items() if k != "redirect_uris"}, "invalid_redirect_uri"),
    ({**WEB, "post_logout_redirect_uris": ["javascript:alert(1)"]}, "invalid_client_metadata"),
    ({**WEB, "backchannel_logout_uri": "http://intranet.example/logout"}, "invalid_client_metadata"),
    ({**WEB, "backchannel_logout_uri": ["https://licences.example/logout"]}, "invalid_client_metadata"),
    ({**WEB, "grant_types": ["implicit"]}, "invalid_client_metadata"),
    ({**WEB, "grant_types": "authorization_code"}, "invalid_client_metadata"),
    ({**WEB, "grant_types": 7}, "invalid_client_metadata"),
    ({**WEB, "response_types": ["token"]}, "invalid_client_metadata"),
    ({**WEB, "token_endpoint_auth_method": "tls_client_auth"}, "invalid_client_metadata"),
    ({**BATCH, "token_endpoint_auth_method": "none"}, "invalid_client_metadata"),
    ({**WEB, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
    (
        {
            **WEB,
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        },
        "invalid_client_metadata",
    ),
    ({**WEB, "jwks": "not an object"}, "invalid_client_metadata"),
    ({**WEB, "id_token_signed_response_alg": "none"}, "invalid_client_metadata"),
    ({**WEB, "access_token_format": "paseto"}, "invalid_client_metadata"),
    ({**WEB, "minimum_acr": "loa-99"}, "invalid_client_metadata"),
    ({**WEB, "backchannel_logout_session_required": "yes"}, "invalid_client_metadata"),
    ({**WEB, "scope": 42}, "invalid_client_metadata"),
    ({**WEB, "scope": ["openid"]}, "invalid_client_metadata"),
    ({**WEB, "scope": 'openid "quoted"'}, "invalid_client_metadata"),
    ({**WEB, "scope": "openid prof\\ile"}, "invalid_client_metadata"),
    ({**WEB, "scope": "openid " * 200}, "invalid_client_metadata"),
    ({**WEB, "client_name": ["a", "list"]}, "invalid_client_metadata"),
    ({**WEB, "client_name": {"zh": "名称"}}, "invalid_client_metadata"),
    ({**WEB, "client_name": 12}, "invalid_client_metadata"),
    ({**WEB, "client_name": "x" * 201}, "invalid_client_metadata"),
    ({**WEB, "client_name": "nul\u0000byte"}, "invalid_client_metadata"),
    ({**WEB, "client_name": "line\nbreak"}, "invalid_client_metadata"),
    ({**WEB, "client_name": "lone \ud800 surrogate"}, "invalid_client_metadata"),
    ({**WEB, "client_name": "moc.\u202eknab"}, "invalid_client_metadata"),
    ({**WEB, "redirect_uris": ["https://licences.example/\u0000"]}, "invalid_redirect_uri"),
]


@pytest.mark.parametrize(("metadata", "error"), BAD_METADATA)
def test_bad_metadata_is_a_clear_error(client, services, metadata, error):
    token = issue(services)
    assert_json_error(register(client, token, metadata), 400, (error,))
    assert register(client, token, WEB).status_code == 201  # the token was not spent


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b'{"client_name": "x"}', "application/x-www-form-urlencoded", "invalid_request"),
        (b'{"client_name": "x"}', "text/plain", "invalid_request"),
        (b'{"client_name": "x"}', None, "invalid_request"),
        (b"", "application/json", "invalid_client_metadata"),
        (b"{", "application/json", "invalid_client_metadata"),
        (b"{'single': 'quotes'}", "application/json", "invalid_client_metadata"),
        (b"[]", "application/json", "invalid_client_metadata"),
        (b'[{"client_name": "x"}]', "application/json", "invalid_client_metadata"),
        (b'"a string"', "application/json", "invalid_client_metadata"),
        (b"42", "application/json", "invalid_client_metadata"),
        (b"null", "application/json", "invalid_client_metadata"),
        (b'{"jwks": NaN}', "application/json", "invalid_client_metadata"),
        (b'{"a": Infinity}', "application/json", "invalid_client_metadata"),
        (b'{"scope": "openid", "scope": "admin:super_admin"}', "application/json", "invalid_client_metadata"),
        (b"[" * 50_000 + b"]" * 50_000, "application/json", "request_too_large"),
        (b"[" * 20_000 + b"]" * 20_000, "application/json", "invalid_client_metadata"),
        (b'{"client_name": "\xff\xfe bad utf-8"}', "application/json", "invalid_client_metadata"),
        (b'{"n": ' + b"9" * 5000 + b"}", "application/json", "invalid_client_metadata"),
        (json.dumps({**WEB, "pad": "x" * 70_000}).encode(), "application/json", "request_too_large"),
    ],
)
def test_a_malformed_body_is_a_clear_error(client, services, body, content_type, error):
    token = issue(services)
    response = client.post(REGISTER, data=body, content_type=content_type, headers=bearer(token))
    assert_json_error(response, 413 if error == "request_too_large" else 400, (error,))
    assert register(client, token, WEB).status_code == 201


def test_non_ascii_metadata_is_accepted(client, services):
    body = registered(
        client,
        services,
        {**WEB, "client_name": "北京市\u3000政务服务", "redirect_uris": ["https://证照.example/回调"]},
    )
    assert body["client_name"] == "北京市\u3000政务服务"
    assert body["redirect_uris"] == ["https://证照.example/回调"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_the_registration_endpoint_are_405_json(client, services, method):
    response = client.open(REGISTER, method=method, headers=bearer(issue(services)))
    assert_json_error(response, 405, ("method_not_allowed",))


def test_the_registration_endpoint_is_advertised(client, services):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["registration_endpoint"] == f"{ISSUER}{REGISTER}"


def test_the_person_registration_page_is_unaffected(client, services):
    page = client.get("/register")
    assert page.status_code == 200 and page.mimetype == "text/html"


# -- management (RFC 7592) -----------------------------------------------------------------------


def test_read_returns_the_registration_without_the_secret(client, services):
    body = registered(client, services)
    response = client.get(
        path_of(body["registration_client_uri"]), headers=bearer(body["registration_access_token"])
    )
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    read = response.get_json()
    assert "client_secret" not in read and read["client_secret_expires_at"] == 0
    assert read["registration_access_token"] == body["registration_access_token"]
    assert {k: v for k, v in body.items() if k != "client_secret"} == read


def test_the_registration_access_token_opens_its_own_client_only(client, services):
    one = registered(client, services)
    two = registered(client, services)
    mine = bearer(one["registration_access_token"])
    answers = [
        client.get(path_of(two["registration_client_uri"]), headers=mine),  # another client's
        client.get(f"{REGISTER}/no-such-client", headers=mine),  # no such client
        client.get(path_of(one["registration_client_uri"]), headers=bearer("wrong")),
        client.get(path_of(one["registration_client_uri"])),
        client.get(path_of(one["registration_client_uri"]), headers=bearer(one["client_secret"])),
        client.get(f"{REGISTER}/{'x' * 300}", headers=mine),
        client.get(f"{REGISTER}/%00", headers=mine),
        client.get(f"{REGISTER}/%E2%80%AE", headers=mine),
        client.put(
            path_of(two["registration_client_uri"]), json={**WEB, "client_id": two["client_id"]}, headers=mine
        ),
        client.delete(path_of(two["registration_client_uri"]), headers=mine),
    ]
    for response in answers:
        assert_invalid_token(response)
    # an unknown client and another client's are told apart by nothing
    assert answers[0].get_json() == answers[1].get_json()
    assert services.clients.get(two["client_id"]) is not None


def test_a_client_provisioned_by_an_admin_cannot_be_managed(client, services):
    from flows import PORTAL

    services.clients.register(PORTAL)
    body = registered(client, services)
    assert_invalid_token(client.get(f"{REGISTER}/portal", headers=bearer(body["registration_access_token"])))
    assert not services.registration.delete("portal")
    assert services.clients.get("portal") is not None


def put(client, body: dict, metadata: dict, token: str | None = None, **kwargs):
    return client.put(
        path_of(body["registration_client_uri"]),
        json=metadata,
        headers=bearer(token or body["registration_access_token"]),
        **kwargs,
    )


def test_update_replaces_the_metadata_and_rotates_nothing(client, services):
    body = registered(client, services)
    response = put(
        client,
        body,
        {
            "client_id": body["client_id"],
            "client_name": "电子证照 v2",
            "redirect_uris": ["https://licences.example/v2/cb"],
            "scope": "openid profile",
            "tos_uri": "https://licences.example/tos",  # ignored
        },
    )
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    updated = response.get_json()
    assert updated["client_name"] == "电子证照 v2" and updated["redirect_uris"] == [
        "https://licences.example/v2/cb"
    ]
    assert updated["post_logout_redirect_uris"] == []  # omitted: removed (RFC 7592 §2.2)
    assert updated["scope"] == "openid profile" and "tos_uri" not in updated
    assert "client_secret" not in updated
    assert updated["registration_access_token"] == body["registration_access_token"]
    assert updated["client_id_issued_at"] == body["client_id_issued_at"]
    client_now = services.clients.get(body["client_id"])
    assert client_now.redirect_uris == ("https://licences.example/v2/cb",)
    assert services.clients.verify_secret(client_now, body["client_secret"])  # the secret is unchanged
    again = client.get(
        path_of(body["registration_client_uri"]), headers=bearer(body["registration_access_token"])
    )
    assert again.get_json()["client_name"] == "电子证照 v2"


def test_update_with_the_current_secret_is_accepted(client, services):
    body = registered(client, services)
    response = put(
        client, body, {**WEB, "client_id": body["client_id"], "client_secret": body["client_secret"]}
    )
    assert response.status_code == 200, response.get_json()
    assert "client_secret" not in response.get_json()


def test_update_to_a_secret_method_issues_a_secret(client, services):
    body = registered(client, services, {**WEB, "token_endpoint_auth_method": "none"})
    response = put(client, body, {**WEB, "client_id": body["client_id"]})  # default: client_secret_basic
    assert response.status_code == 200, response.get_json()
    secret = response.get_json()["client_secret"]
    assert services.clients.verify_secret(services.clients.get(body["client_id"]), secret)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_id": None}, "invalid_request"),
        ({"client_id": "someone-else"}, "invalid_request"),
        ({"client_secret": "not-the-current-secret-0123456789-0123456789"}, "invalid_request"),
        ({"client_secret": 12345}, "invalid_request"),
        ({"registration_access_token": "x"}, "invalid_request"),
        ({"registration_client_uri": "https://elsewhere.example"}, "invalid_request"),
        ({"client_id_issued_at": 0}, "invalid_request"),
        ({"client_secret_expires_at": 0}, "invalid_request"),
        ({"scope": "openid admin:super_admin"}, "invalid_client_metadata"),
        ({"first_party": True}, "invalid_client_metadata"),
        ({"redirect_uris": ["http://licences.example/cb"]}, "invalid_redirect_uri"),
        ({"grant_types": {"a": 1}}, "invalid_client_metadata"),
    ],
)
def test_a_bad_update_is_refused_and_changes_nothing(client, services, change, error):
    body = registered(client, services)
    metadata = {**WEB, "client_id": body["client_id"], "client_name": "changed", **change}
    assert_json_error(put(client, body, {k: v for k, v in metadata.items() if v is not None}), 400, (error,))
    assert services.clients.get(body["client_id"]).client_name == WEB["client_name"]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"client_name=x", "application/x-www-form-urlencoded"),
        (b"[]", "application/json"),
        (b"{", "application/json"),
    ],
)
def test_a_malformed_update_body_is_a_clear_error(client, services, data, content_type):
    body = registered(client, services)
    response = client.put(
        path_of(body["registration_client_uri"]),
        data=data,
        content_type=content_type,
        headers=bearer(body["registration_access_token"]),
    )
    assert_json_error(response, 400, ("invalid_request", "invalid_client_metadata"))


def test_an_update_keeps_what_an_admin_granted(client, services):
    body = registered(client, services, BATCH)
    services.clients.register(
        {
            **BATCH,
            "client_id": body["client_id"],
            "scope": "catalogue.read admin:auditor",
            "first_party": True,
        }
    )
    kept = put(
        client, body, {**BATCH, "client_id": body["client_id"], "scope": "catalogue.read admin:auditor"}
    )
    assert kept.status_code == 200, kept.get_json()
    current = services.clients.get(body["client_id"])
    assert "admin:auditor" in current.scope and current.first_party is True
    more = put(
        client, body, {**BATCH, "client_id": body["client_id"], "scope": "admin:auditor admin:super_admin"}
    )
    assert_json_error(more, 400, ("invalid_client_metadata",))


def test_delete_ends_the_registration_and_every_token(client, services):
    services.persons.upsert(PERSON)
    body = registered(
        client,
        services,
        {**WEB, "grant_types": ["authorization_code", "refresh_token", "client_credentials"]},
    )
    auth, result = login_for_code(client, body)
    person_tokens = redeem(client, result["code"], auth, body).get_json()
    service_token = client_credentials(client, body, scope="profile").get_json()
    assert introspect(client, person_tokens["access_token"], body)["active"] is True

    response = client.delete(
        path_of(body["registration_client_uri"]), headers=bearer(body["registration_access_token"])
    )
    assert response.status_code == 204 and response.data == b""
    assert response.headers["Cache-Control"] == "no-store"

    # the registration is gone: every operation is invalid_token now
    token = bearer(body["registration_access_token"])
    assert_invalid_token(client.get(path_of(body["registration_client_uri"]), headers=token))
    assert_invalid_token(client.delete(path_of(body["registration_client_uri"]), headers=token))
    assert_invalid_token(put(client, body, {**WEB, "client_id": body["client_id"]}))
    # the client cannot authenticate any more
    denied = client_credentials(client, body, scope="profile")
    assert denied.status_code == 401 and denied.get_json()["error"] == "invalid_client"
    refresh = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": person_tokens["refresh_token"]},
        headers=basic(body["client_id"], body["client_secret"]),
    )
    assert refresh.status_code == 401
    userinfo = client.get("/userinfo", headers=bearer(person_tokens["access_token"]))
    assert userinfo.status_code == 401
    # its tokens were revoked, not merely orphaned: even re-enabled by an admin, they stay inactive
    assert services.clients.set_disabled(body["client_id"], False)
    for value in (
        person_tokens["access_token"],
        person_tokens["refresh_token"],
        service_token["access_token"],
    ):
        assert introspect(client, value, body) == {"active": False}
    # and the registration access token does not come back with it
    assert_invalid_token(client.get(path_of(body["registration_client_uri"]), headers=token))


def test_management_is_audited_without_secrets(client, services):
    info, token = services.registration.issue_initial_token("admin:test")
    response = register(client, token, WEB)
    body = response.get_json()
    put(client, body, {**WEB, "client_id": body["client_id"], "client_name": "renamed"})
    client.delete(path_of(body["registration_client_uri"]), headers=bearer(body["registration_access_token"]))
    [registered_event] = audit_events(services, "client.registered")
    assert (
        registered_event["actor"] == f"dcr:{info.id}" and registered_event["client_id"] == body["client_id"]
    )
    [updated] = audit_events(services, "client.updated")
    assert updated["actor"] == body["client_id"] and updated["client_id"] == body["client_id"]
    [deleted] = audit_events(services, "client.deleted")
    assert deleted["client_id"] == body["client_id"]
    everything = "\n".join(services.audit.export("jsonl"))
    for secret in (token, body["client_secret"], body["registration_access_token"]):
        assert secret not in everything
    assert services.audit.verify().ok
