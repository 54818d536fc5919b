"""Helpers for protocol tests: register clients and persons, drive a browser-like login."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet

ISSUER = "http://idp.test"
PORTAL = {
    "client_id": "portal",
    "client_name": "Portal",
    "client_secret": "portal-secret-0123456789-0123456789-abc",
    "redirect_uris": ["https://portal.example/cb"],
    "post_logout_redirect_uris": ["https://portal.example/bye"],
    "grant_types": ["authorization_code", "refresh_token"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "openid profile email phone",
    "first_party": True,
}
PERSON = {
    "username": "zhangsan",
    "password": "correct horse battery",
    "name": "张三",
    "id_number": "410105198503121235",
    "email": "zhangsan@example.cn",
    "phone_number": "13800000001",
}


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden_inputs(html: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            fields[name.group(1)] = unescape(value.group(1)) if value else ""
    return fields


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Authorization:
    verifier: str
    params: dict[str, str]


def authorize_params(client: dict[str, Any] = PORTAL, **extra: str) -> Authorization:
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": client["redirect_uris"][0],
        "scope": "openid profile email",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return Authorization(verifier, {k: v for k, v in params.items() if v is not None})


def follow(
    test_client, response, redirect_prefix: str, *, username: str, password: str, consent: bool = True
):
    """Follow redirects and submit the login / consent forms until the client's redirect_uri."""
    for _ in range(10):
        if response.status_code in (301, 302, 303):
            location = response.headers["Location"]
            if location.startswith(redirect_prefix):
                return location
            response = test_client.get(location)
            continue
        html = response.get_data(as_text=True)
        assert response.status_code == 200, html[:500]
        fields = hidden_inputs(html)
        action = re.search(r'<form[^>]*action="([^"]*)"', html).group(1)
        if 'name="password"' in html:
            fields.update(identifier=username, password=password)
        elif 'name="decision"' in html:
            fields["decision"] = "allow" if consent else "deny"
        elif 'name="choice"' in html:
            fields["choice"] = "continue"
        response = test_client.post(unescape(action), data=fields)
    raise AssertionError("too many steps")


def login_for_code(test_client, client: dict[str, Any] = PORTAL, person: dict[str, Any] = PERSON, **extra):
    auth = authorize_params(client, **extra)
    response = test_client.get("/authorize?" + urlencode(auth.params))
    location = follow(
        test_client,
        response,
        client["redirect_uris"][0],
        username=person["username"],
        password=person["password"],
    )
    return auth, query_of(location)


def redeem(test_client, code: str, auth: Authorization, client: dict[str, Any] = PORTAL):
    return test_client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": auth.params["redirect_uri"],
            "code_verifier": auth.verifier,
        },
        headers=basic(client["client_id"], client["client_secret"]),
    )


def decode(client, token: str):
    """A JWT issued by the provider, checked against its published JWKS."""
    return jwt.decode(token, KeySet.import_key_set(client.get("/jwks.json").get_json()), algorithms=["RS256"])


def refused(response, error: str) -> dict:
    """A token-endpoint refusal: the OAuth error, no-store, no token, an ASCII description."""
    assert response.status_code == (401 if error == "invalid_client" else 400), response.get_data(
        as_text=True
    )
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["error"] == error, body
    assert "access_token" not in body
    assert body.get("error_description", "").isascii()
    return body
