"""client_credentials for another service: `audience` (the logical-name parameter of RFC 8693 §2.1)
within the client's `audiences` metadata; aud = that service, which may introspect the token."""

from __future__ import annotations

import json
import time

import pytest
from flows import ISSUER, PORTAL, basic, decode, refused

from idp.services.clients import ClientMetadataError

DEPT = {  # a department's service account
    "client_id": "dept-licensing",
    "client_name": "Licensing department",
    "client_secret": "dept-secret-0123456789-0123456789-abcdefgh",
    "grant_types": ["client_credentials"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "cases:read admin:auditor",
    "audiences": [
        {"audience": "certificates", "scopes": ["certificates:issue", "certificates:read"]},
        {"audience": "catalogue", "scopes": ["catalogue:write"]},
        {"audience": "retired", "scopes": ["retired:read"]},  # a client an admin disabled
        {"audience": "nowhere", "scopes": ["nowhere:read"]},  # no such client
    ],
}
DEPT_OPAQUE = {**DEPT, "client_id": "dept-opaque", "access_token_format": "opaque"}
PLAIN = {**DEPT, "client_id": "dept-plain", "audiences": []}
CERTIFICATES = {
    "client_id": "certificates",
    "client_name": "E-certificate service",
    "client_secret": "certificates-secret-0123456789-0123456789",
    "grant_types": ["client_credentials"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "certificates:read",
}
CATALOGUE = {**CERTIFICATES, "client_id": "catalogue", "client_name": "Item catalogue"}
RETIRED = {**CERTIFICATES, "client_id": "retired", "client_name": "Retired service"}
SPA = {
    "client_id": "spa",
    "client_name": "Single-page app",
    "redirect_uris": ["https://spa.example/cb"],
    "grant_types": ["authorization_code"],
    "token_endpoint_auth_method": "none",
    "scope": "openid profile",
}


@pytest.fixture
def registered(services):
    for metadata in (DEPT, DEPT_OPAQUE, PLAIN, CERTIFICATES, CATALOGUE, RETIRED, SPA, PORTAL):
        services.clients.register(metadata)
    services.clients.set_disabled("retired", True)
    yield services
    services.audit.close()


def request_token(client, registered_client: dict = DEPT, **form: str):
    return client.post(
        "/token",
        data={"grant_type": "client_credentials", **form},
        headers=basic(registered_client["client_id"], registered_client["client_secret"]),
    )


def introspect(client, token: str, as_client: dict = CERTIFICATES) -> dict:
    response = client.post(
        "/introspect",
        data={"token": token},
        headers=basic(as_client["client_id"], as_client["client_secret"]),
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def issued_events(services) -> list[dict]:
    assert services.audit.flush(10)
    return [json.loads(line) for line in services.audit.export("jsonl", event="token.issued")]


# -- the happy path --------------------------------------------------------------------------------


def test_a_token_for_another_service(client, registered):
    before = int(time.time())
    response = request_token(client, audience="certificates", scope="certificates:issue")
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["scope"] == "certificates:issue"
    assert "refresh_token" not in body and "id_token" not in body
    token = decode(client, body["access_token"])
    assert token.header["typ"] == "at+jwt"
    claims = token.claims
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "certificates"
    assert claims["client_id"] == "dept-licensing" and claims["sub"] == "dept-licensing"
    assert claims["scope"] == "certificates:issue"
    assert "act" not in claims and "auth_time" not in claims and "sid" not in claims
    assert before <= claims["iat"] and claims["exp"] == claims["iat"] + body["expires_in"]


def test_without_scope_the_token_carries_every_configured_scope(client, registered):
    body = request_token(client, audience="certificates").get_json()
    assert body["scope"] == "certificates:issue certificates:read"
    claims = decode(client, body["access_token"]).claims
    assert claims["aud"] == "certificates" and claims["scope"] == "certificates:issue certificates:read"


def test_catalogue_write_for_the_catalogue(client, registered):
    body = request_token(client, audience="catalogue", scope="catalogue:write").get_json()
    claims = decode(client, body["access_token"]).claims
    assert claims["aud"] == "catalogue" and claims["scope"] == "catalogue:write"


def test_the_audience_introspects_the_token(client, registered):
    token = request_token(client, audience="certificates", scope="certificates:issue").get_json()[
        "access_token"
    ]
    info = introspect(client, token)
    assert info["active"] is True and info["aud"] == "certificates"
    assert info["client_id"] == "dept-licensing" and info["sub"] == "dept-licensing"
    assert info["scope"] == "certificates:issue" and "act" not in info
    assert introspect(client, token, DEPT)["aud"] == "certificates"  # the requesting client too
    assert introspect(client, token, CATALOGUE) == {"active": False}  # another service learns nothing


def test_an_opaque_token_keeps_its_audience_in_the_record(client, registered):
    body = request_token(client, DEPT_OPAQUE, audience="catalogue").get_json()
    assert body["access_token"].count(".") == 0
    info = introspect(client, body["access_token"], CATALOGUE)
    assert info["active"] is True and info["aud"] == "catalogue" and info["client_id"] == "dept-opaque"
    assert info["scope"] == "catalogue:write"


def test_disabling_the_audience_revokes_its_tokens(client, registered, services):
    token = request_token(client, audience="catalogue").get_json()["access_token"]
    services.clients.set_disabled("catalogue", True)
    services.tokens.revoke_client("catalogue")  # what the admin service does on disable
    assert introspect(client, token, DEPT) == {"active": False}
    refused(request_token(client, audience="catalogue"), "invalid_target")


def test_without_audience_nothing_changes(client, registered):
    body = request_token(client, scope="cases:read").get_json()
    claims = decode(client, body["access_token"]).claims
    assert claims["aud"] == "dept-licensing" and claims["scope"] == "cases:read"
    assert introspect(client, body["access_token"], DEPT)["aud"] == "dept-licensing"
    admin = request_token(client, scope="admin:auditor")  # admin:* only without an audience
    assert admin.status_code == 200 and decode(client, admin.get_json()["access_token"]).claims["aud"] == (
        "dept-licensing"
    )
    empty = request_token(client, audience="", scope="cases:read")  # RFC 6749 §3.1: as if omitted
    assert decode(client, empty.get_json()["access_token"]).claims["aud"] == "dept-licensing"


def test_issuance_is_audited_with_the_audience(client, registered, services):
    assert request_token(client, audience="certificates", scope="certificates:read").status_code == 200
    assert request_token(client, scope="cases:read").status_code == 200
    with_audience, plain = issued_events(services)[-2:]
    assert with_audience["actor"] == "dept-licensing" and with_audience["purpose"] == "certificates:read"
    assert json.loads(with_audience["details"]) == {
        "grant_type": "client_credentials",
        "refresh_token": False,
        "audience": "certificates",
    }
    assert "audience" not in json.loads(plain["details"])
    assert services.audit.verify().ok


# -- refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("audience", ["portal", "cases", "dept-licensing", "CERTIFICATES"])
def test_an_unconfigured_audience_is_invalid_target(client, registered, audience):
    refused(request_token(client, audience=audience), "invalid_target")


@pytest.mark.parametrize("audience", ["retired", "nowhere"])
def test_a_disabled_or_missing_audience_client_is_invalid_target(client, registered, audience):
    refused(request_token(client, audience=audience), "invalid_target")


def test_a_client_without_audiences_is_invalid_target(client, registered):
    refused(request_token(client, PLAIN, audience="certificates"), "invalid_target")


@pytest.mark.parametrize(
    "scope",
    [
        "certificates:revoke",
        "certificates:issue catalogue:write",  # configured, but for another audience
        "cases:read",  # the client's own scope is not the audience's
        "admin:auditor",
        "openid",
    ],
)
def test_a_scope_beyond_the_configured_ones_is_invalid_scope(client, registered, scope):
    refused(request_token(client, audience="certificates", scope=scope), "invalid_scope")


@pytest.mark.parametrize(
    "form",
    [
        {"resource": "https://certificates.example/"},
        {"resource": "certificates", "audience": "certificates"},
    ],
)
def test_resource_is_invalid_target(client, registered, form):
    body = refused(request_token(client, **form), "invalid_target")
    assert "audience" in body["error_description"]


def test_a_repeated_audience_is_invalid_request(client, registered):
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials", "audience": ["certificates", "catalogue"]},
        headers=basic(DEPT["client_id"], DEPT["client_secret"]),
    )
    body = refused(response, "invalid_request")
    assert "repeated" in body["error_description"]


def test_a_public_client_is_refused(client, registered):
    response = client.post(
        "/token", data={"grant_type": "client_credentials", "client_id": "spa", "audience": "certificates"}
    )
    assert response.status_code in (400, 401), response.get_json()
    assert response.get_json()["error"] in ("invalid_client", "unauthorized_client")
    assert "access_token" not in response.get_json()


def test_a_client_not_registered_for_the_grant_is_refused(client, registered):
    refused(request_token(client, PORTAL, audience="certificates"), "unauthorized_client")


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"audience": "c" * 129}, "invalid_request"),
        ({"audience": "c" * 20_000}, "invalid_request"),
        ({"audience": "证书服务"}, "invalid_target"),
        ({"audience": "certificates\x00"}, "invalid_target"),
        ({"audience": "certificates "}, "invalid_target"),
        ({"audience": "certificates", "scope": "证书:签发"}, "invalid_scope"),
        ({"audience": "certificates", "scope": "x" * 20_000}, "invalid_scope"),
    ],
)
def test_bad_input_is_an_oauth_error(client, registered, form, error):
    response = request_token(client, **form)
    assert response.status_code < 500
    refused(response, error)


def test_an_oversized_request_is_a_clean_error(client, registered):
    response = request_token(client, audience="c" * 2_000_000)
    assert response.status_code == 413 and response.get_json()["error"] == "request_too_large"


# -- client metadata ---------------------------------------------------------------------------------


def test_audiences_are_on_the_client(registered):
    client = registered.clients.get("dept-licensing")
    assert client.audiences[0].audience == "certificates"
    assert client.audiences[0].scopes == ("certificates:issue", "certificates:read")
    assert registered.clients.get("certificates").audiences == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"audiences": {"audience": "certificates"}}, "list"),
        ({"audiences": ["certificates"]}, "entries"),
        ({"audiences": [{"audience": "certificates", "scopes": ["certificates:read"], "x": 1}]}, "entries"),
        ({"audiences": [{"audience": "", "scopes": ["certificates:read"]}]}, "1-128"),
        ({"audiences": [{"audience": "c" * 129, "scopes": ["c:read"]}]}, "1-128"),
        ({"audiences": [{"audience": 7, "scopes": ["c:read"]}]}, "1-128"),
        ({"audiences": [{"audience": "a b", "scopes": ["c:read"]}]}, "invalid"),
        ({"audiences": [{"audience": "dept-x", "scopes": ["c:read"]}]}, "itself"),
        (
            {
                "audiences": [
                    {"audience": "c", "scopes": ["c:read"]},
                    {"audience": "c", "scopes": ["c:write"]},
                ]
            },
            "repeated",
        ),
        ({"audiences": [{"audience": "c", "scopes": []}]}, "non-empty"),
        ({"audiences": [{"audience": "c", "scopes": "c:read"}]}, "non-empty"),
        ({"audiences": [{"audience": "c", "scopes": ["admin:super"]}]}, "resource scopes"),
        ({"audiences": [{"audience": "c", "scopes": ["openid"]}]}, "resource scopes"),
        ({"audiences": [{"audience": "c", "scopes": ["C:Read"]}]}, "resource scopes"),
        ({"audiences": [{"audience": "c", "scopes": ["证书:签发"]}]}, "resource scopes"),
        ({"audiences": [{"audience": "c", "scopes": [1]}]}, "resource scopes"),
        ({"audiences": [{"audience": f"c{i}", "scopes": ["c:read"]} for i in range(51)]}, "at most"),
        (
            {"grant_types": ["authorization_code"], "redirect_uris": ["https://x.example/cb"]},
            "client_credentials",
        ),
    ],
)
def test_bad_audiences_metadata_is_refused(services, change, message):
    metadata = {
        **DEPT,
        "client_id": "dept-x",
        "audiences": [{"audience": "c", "scopes": ["c:read"]}],
        **change,
    }
    with pytest.raises(ClientMetadataError, match=message):
        services.clients.register(metadata)


def test_a_public_client_cannot_have_audiences(services):
    with pytest.raises(ClientMetadataError, match="public"):
        services.clients.register({**SPA, "audiences": [{"audience": "c", "scopes": ["c:read"]}]})


def test_discovery_is_unchanged(client):
    config = client.get("/.well-known/openid-configuration").get_json()
    assert not any("audience" in name for name in config)
