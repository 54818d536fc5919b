"""Hostile and malformed input at /token, /introspect, /revoke and /userinfo: always a JSON OAuth error,
never a 5xx, never a stack trace (RFC 6749 §3.2, §5.2; RFC 6750 §2-§3)."""

from __future__ import annotations

import base64

import pytest
from flows import PERSON, PORTAL, basic, login_for_code, redeem

FORM = "application/x-www-form-urlencoded"
ENDPOINTS = ["/token", "/introspect", "/revoke"]
VALID_BODY = {
    "/token": "grant_type=client_credentials&scope=profile",
    "/introspect": "token=abc",
    "/revoke": "token=abc",
}
AUTH = basic(PORTAL["client_id"], PORTAL["client_secret"])


def assert_json_error(response, statuses: tuple[int, ...], errors: tuple[str, ...]) -> dict:
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text
    assert response.status_code in statuses, (response.status_code, text)
    assert response.mimetype == "application/json", (response.mimetype, text[:200])
    assert "Traceback" not in text and 'File "' not in text
    body = response.get_json()
    assert isinstance(body, dict) and body.get("error") in errors, body
    assert "access_token" not in body and "active" not in body
    return body


@pytest.fixture
def portal(client, services):
    services.clients.register(PORTAL)
    return client


def post(client, path: str, body: bytes | str, content_type: str = FORM, headers=None, **kwargs):
    return client.post(path, data=body, content_type=content_type, headers=headers or AUTH, **kwargs)


# -- the body ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_json_body_is_invalid_request(portal, path):
    response = portal.post(path, json={"grant_type": "client_credentials", "token": "abc"}, headers=AUTH)
    assert_json_error(response, (400,), ("invalid_request",))


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "content_type", ["multipart/form-data; boundary=x", "text/plain", "application/xml", ""]
)
def test_other_content_types_are_invalid_request(portal, path, content_type):
    response = post(portal, path, VALID_BODY[path], content_type=content_type)
    assert_json_error(response, (400,), ("invalid_request",))


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_charset_parameter_on_the_form_type_is_accepted(portal, path):
    body = "grant_type=refresh_token&refresh_token=abc" if path == "/token" else VALID_BODY[path]
    response = post(portal, path, body, content_type=f"{FORM}; charset=UTF-8")
    if path == "/token":
        assert response.get_json()["error"] == "invalid_grant"  # past the format checks
    else:
        assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "body", [b"grant_type=\xff\xfe", b"token=\xc3\x28&grant_type=client_credentials", b"\xed\xa0\x80=1"]
)
def test_invalid_utf8_is_invalid_request(portal, path, body):
    assert_json_error(post(portal, path, body), (400,), ("invalid_request",))


@pytest.mark.parametrize("path", ENDPOINTS)
def test_percent_encoded_invalid_utf8_never_fails_the_server(portal, path):
    response = post(portal, path, "grant_type=%ff%fe&token=%ff%fe%00")
    assert response.status_code < 500 and response.mimetype == "application/json"
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/token", "grant_type=client_credentials&grant_type=client_credentials"),
        ("/token", "grant_type=authorization_code&code=a&code=b&redirect_uri=x&code_verifier=y"),
        ("/token", "grant_type=client_credentials&scope=profile&scope=openid"),
        ("/token", "grant_type=refresh_token&refresh_token=a&refresh_token=b"),
        ("/introspect", "token=a&token=b"),
        ("/revoke", "token=a&token=b"),
        ("/revoke", "token=a&token_type_hint=access_token&token_type_hint=refresh_token"),
    ],
)
def test_a_repeated_parameter_is_invalid_request(portal, path, body):
    body = assert_json_error(post(portal, path, body), (400,), ("invalid_request",))
    assert "repeated" in body["error_description"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_parameters_in_the_url_are_refused(portal, path):
    """Authlib reads URL and body together: a query parameter could shadow one in the body."""
    response = post(portal, f"{path}?grant_type=password&token=x", VALID_BODY[path])
    assert_json_error(response, (400,), ("invalid_request",))
    response = post(portal, f"{path}?client_secret={PORTAL['client_secret']}", VALID_BODY[path])
    assert_json_error(response, (400,), ("invalid_request",))


@pytest.mark.parametrize(
    "grant_type", ["password", "implicit", "urn:unknown", "x" * 2000, "AUTHORIZATION_CODE"]
)
def test_an_unknown_grant_type_is_unsupported_grant_type(portal, grant_type):
    response = post(portal, "/token", f"grant_type={grant_type}")
    assert_json_error(response, (400,), ("unsupported_grant_type",))


@pytest.mark.parametrize("body", ["", "scope=profile", "grant_type=", "grant_type"])
def test_a_missing_grant_type_is_invalid_request(portal, body):
    assert_json_error(post(portal, "/token", body), (400,), ("invalid_request",))


@pytest.mark.parametrize("path", ENDPOINTS)
def test_an_oversized_body_is_413_json(portal, path):
    body = "token=" + "a" * (64 * 1024 + 1)
    response = post(portal, path, body)
    assert_json_error(response, (413,), ("request_too_large", "invalid_request"))
    assert "<html" not in response.get_data(as_text=True).lower()


def test_a_body_just_under_the_limit_is_processed(portal):
    body = "grant_type=client_credentials&scope=" + "a" * (60 * 1024)
    response = post(portal, "/token", body)
    assert response.status_code == 400  # read and answered (the client may not use this grant)
    assert response.get_json()["error"] in ("unauthorized_client", "invalid_scope")


@pytest.mark.parametrize(
    "value", ["x" * 10_000, "\x00", "code\r\nX-Injected: 1", "令牌", "a.b.c", "' OR 1=1 --"]
)
def test_odd_token_and_code_values_are_answered_cleanly(portal, value):
    from urllib.parse import urlencode

    services_body = {
        "/token": urlencode(
            {
                "grant_type": "authorization_code",
                "code": value,
                "redirect_uri": PORTAL["redirect_uris"][0],
                "code_verifier": "v" * 43,
            }
        ),
        "/introspect": urlencode({"token": value}),
        "/revoke": urlencode({"token": value}),
    }
    token = post(portal, "/token", services_body["/token"])
    assert_json_error(token, (400,), ("invalid_grant",))
    assert post(portal, "/introspect", services_body["/introspect"]).get_json() == {"active": False}
    assert post(portal, "/revoke", services_body["/revoke"]).status_code == 200
    refresh = post(portal, "/token", urlencode({"grant_type": "refresh_token", "refresh_token": value}))
    assert_json_error(refresh, (400,), ("invalid_grant",))


# -- the Authorization header --------------------------------------------------------------------


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


MALFORMED_AUTHORIZATION = {
    "not-base64": "Basic !!!notbase64",
    "no-colon": "Basic " + b64(b"portal"),
    "empty-secret": "Basic " + b64(b"portal:"),
    "empty-id": "Basic " + b64(b":secret"),
    "not-utf8": "Basic " + b64(b"\xff\xfe:\xff"),
    "bad-padding": "Basic cG9ydGFsOnNlY3JldA",
    "scheme-only": "Basic",
    "scheme-and-space": "Basic ",
    "bearer": "Bearer x",
    "digest": 'Digest username="portal"',
    "very-long": "Basic " + "A" * 20_000,
    "very-long-valid-base64": "Basic " + b64(b"portal:" + b"s" * 15_000),
    "non-ascii-latin1": "Basic " + "令牌:密码".encode().decode("latin-1"),
    "non-ascii-in-base64": "Basic cG9y\u00e9dGFs",
    "utf8-credentials": "Basic " + b64("令牌:密码".encode()),
    "garbage": "\x01\x02\x03",
    "empty": "",
}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("header", MALFORMED_AUTHORIZATION.values(), ids=MALFORMED_AUTHORIZATION.keys())
def test_malformed_authorization_headers_are_client_errors(portal, path, header):
    response = post(portal, path, VALID_BODY[path], headers={"Authorization": header})
    body = assert_json_error(response, (400, 401), ("invalid_client", "invalid_request"))
    if response.status_code == 401:
        assert body["error"] == "invalid_client"
        assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_basic_and_body_credentials_together_are_refused(portal, path):
    body = f"{VALID_BODY[path]}&client_id=portal&client_secret={PORTAL['client_secret']}"
    response = post(portal, path, body)
    assert_json_error(response, (400, 401), ("invalid_request", "invalid_client"))


# -- methods -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_json(portal, path, method):
    response = portal.open(path, method=method, query_string={"grant_type": "client_credentials"})
    assert_json_error(response, (405,), ("method_not_allowed", "invalid_request"))


@pytest.mark.parametrize("path", ENDPOINTS)
def test_405_names_the_allowed_method(portal, path):
    assert "POST" in portal.get(path).headers.get("Allow", "")


# -- userinfo ------------------------------------------------------------------------------------


@pytest.fixture
def access_token(portal, services):
    services.persons.upsert(PERSON)
    auth, result = login_for_code(portal)
    response = redeem(portal, result["code"], auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def assert_bearer_challenge(response) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code == 401, (response.status_code, text)
    assert response.headers["WWW-Authenticate"].startswith("Bearer"), response.headers
    assert response.mimetype == "application/json" and "Traceback" not in text
    assert "sub" not in response.get_json()


def test_userinfo_with_the_header_over_get_and_post(portal, access_token):
    for method in ("GET", "POST"):
        response = portal.open(
            "/userinfo", method=method, headers={"Authorization": f"Bearer {access_token}"}
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["sub"]
        assert response.headers["Cache-Control"] == "no-store"


def test_userinfo_scheme_is_case_insensitive(portal, access_token):
    response = portal.get("/userinfo", headers={"Authorization": f"bearer {access_token}"})
    assert response.status_code == 200


def test_userinfo_without_credentials_has_a_bare_challenge(portal, access_token):
    """RFC 6750 §3.1: no error code when the request carried no authentication at all."""
    response = portal.get("/userinfo")
    assert_bearer_challenge(response)
    assert "error=" not in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer      ",
        "Bearer garbage",
        "Bearer a b",
        "Bearer " + "x" * 20_000,
        "Basic " + b64(b"portal:secret"),
        "Token abc",
        "Bearer 令牌".encode().decode("latin-1"),
        "\x01",
    ],
)
def test_userinfo_with_bad_credentials(portal, access_token, header):
    assert_bearer_challenge(portal.get("/userinfo", headers={"Authorization": header}))


def test_userinfo_with_a_wrong_token_says_invalid_token(portal, access_token):
    response = portal.get("/userinfo", headers={"Authorization": f"Bearer {access_token}x"})
    assert_bearer_challenge(response)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_userinfo_refuses_the_token_in_the_body_or_the_url(portal, access_token):
    assert_bearer_challenge(portal.post("/userinfo", data={"access_token": access_token}))
    assert_bearer_challenge(portal.get("/userinfo", query_string={"access_token": access_token}))


def test_userinfo_refuses_a_refresh_token(portal, services):
    services.persons.upsert(PERSON)
    auth, result = login_for_code(portal)
    tokens = redeem(portal, result["code"], auth).get_json()
    assert_bearer_challenge(
        portal.get("/userinfo", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    )
