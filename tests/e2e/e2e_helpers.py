"""Helpers for the end-to-end story: a browser-like `requests.Session` per person, tokens from the real
provider, forged tokens, and the services' URLs. Imported as `e2e_helpers` (never as `conftest`)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

TIMEOUT = 10
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

USCC = "91350100M000100Y43"  # held by the reference enterprise register, 张三 its representative
COMPANY = "示例科技有限公司"
FOOD_PERMIT = "01001530000000010000"  # 食品经营许可 (demo catalogue), needs the business licence
LICENCE_NUMBER = "350100000012345"
MARKET = "market-bureau"  # the market bureau's service account, issues business licences
OFFICERS = "case-officers"  # the case officers' service account, cases:handle at the case service

ZHANGSAN = {
    "username": "zhangsan",
    "password": "correct horse battery",
    "name": "张三",
    "id_number": "410105198503121235",
    "email": "zhangsan@example.cn",
    "phone_number": "13800000001",
}
LISI = {
    "username": "lisi",
    "password": "lisi horse battery staple",
    "name": "李四",
    "id_number": "440305199207182464",
    "email": "lisi@example.cn",
    "phone_number": "13800000002",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(app: Any, port: int = 0) -> tuple[str, Any]:
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- HTML forms ---------------------------------------------------------------------------------------


@dataclass
class Form:
    action: str
    fields: dict[str, str]
    html: str


def forms_of(html: str) -> list[Form]:
    found = []
    for match in re.finditer(r"<form([^>]*)>(.*?)</form>", html, re.S):
        action = re.search(r'action="([^"]*)"', match.group(1))
        fields = {}
        for tag in re.findall(r"<input[^>]*>", match.group(2)):
            name = re.search(r'name="([^"]*)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if name and 'type="hidden"' in tag:
                fields[name.group(1)] = unescape(value.group(1)) if value else ""
        found.append(Form(unescape(action.group(1)) if action else "", fields, match.group(2)))
    return found


def form_with(html: str, marker: str) -> Form | None:
    return next((f for f in forms_of(html) if marker in f.html), None)


# -- a person's browser ---------------------------------------------------------------------------------


@dataclass
class Browser:
    """A browser: cookies per host (the jar), redirects followed, the provider's login, consent and
    entity-chooser forms filled in as a person would. `seen` lists the provider pages met, in order."""

    person: dict[str, Any]
    provider: str
    acting: str = "self"  # what to pick on the entity chooser: "self" or an entity id
    consent: bool = True
    http: requests.Session = field(default_factory=requests.Session)
    seen: list[str] = field(default_factory=list)

    def open(self, url: str, *, stop_at: str | None = None) -> requests.Response:
        """GET url and walk on until a page that is not the provider's, or a redirect to `stop_at`
        (returned unfollowed)."""
        return self.walk(self.http.get(url, allow_redirects=False, timeout=TIMEOUT), stop_at)

    def submit(self, url: str, form: Form, **values: str) -> requests.Response:
        action = urljoin(url, form.action)
        response = self.http.post(
            action, data={**form.fields, **values}, allow_redirects=False, timeout=TIMEOUT
        )
        return self.walk(response, None)

    def walk(self, response: requests.Response, stop_at: str | None) -> requests.Response:
        for _ in range(20):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if stop_at and location.startswith(stop_at):
                    return response
                response = self.http.get(location, allow_redirects=False, timeout=TIMEOUT)
                continue
            if not response.url.startswith(self.provider + "/") or response.status_code != 200:
                return response
            html = response.text
            if login := form_with(html, 'name="password"'):
                self.seen.append("login")
                values = {"identifier": self.person["username"], "password": self.person["password"]}
                form = login
            elif consent := form_with(html, 'name="decision"'):
                self.seen.append("consent")
                values, form = {"decision": "allow" if self.consent else "deny"}, consent
            elif chooser := form_with(html, 'name="acting"'):
                self.seen.append("chooser")
                assert f'value="{self.acting}"' in chooser.html, chooser.html[:800]
                values, form = {"acting": self.acting, "continue": "1"}, chooser
            else:
                return response  # a provider page without a form we know (logged out, error)
            action = urljoin(response.url, form.action)
            response = self.http.post(
                action, data={**form.fields, **values}, allow_redirects=False, timeout=TIMEOUT
            )
        raise AssertionError("too many steps")

    def sign_in_for_tokens(self, client: dict[str, Any], scope: str) -> dict[str, Any]:
        """The authorization-code flow with PKCE as `client` (the test holds its secret): walk the
        provider's pages, stop at the client's redirect URI, redeem the code. The tokens are returned."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": client["redirect_uris"][0],
            "scope": scope,
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        redirect = self.open(f"{self.provider}/authorize?{urlencode(params)}", stop_at=params["redirect_uri"])
        assert redirect.is_redirect, (redirect.status_code, redirect.text[:500])
        query = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["Location"]).query).items()}
        assert "code" in query, query
        response = requests.post(
            f"{self.provider}/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"],
                "redirect_uri": params["redirect_uri"],
                "code_verifier": verifier,
            },
            headers=basic(client["client_id"], client["client_secret"]),
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


def page_form(response: requests.Response, action_part: str) -> Form:
    form = next((f for f in forms_of(response.text) if action_part in f.action), None)
    assert form is not None, f"no form posting to {action_part!r} on {response.url}: {response.text[:500]}"
    return form


# -- tokens from the provider ------------------------------------------------------------------------


def client_credentials(
    provider: str, client: dict[str, Any], scope: str, audience: str | None = None
) -> requests.Response:
    form = {"grant_type": "client_credentials", "scope": scope}
    if audience:
        form["audience"] = audience
    return requests.post(
        f"{provider}/token",
        data=form,
        headers=basic(client["client_id"], client["client_secret"]),
        timeout=TIMEOUT,
    )


def service_token(provider: str, client: dict[str, Any], scope: str, audience: str | None = None) -> str:
    response = client_credentials(provider, client, scope, audience)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def exchange(
    provider: str, client: dict[str, Any], subject_token: str, audience: str, scope: str
) -> requests.Response:
    return requests.post(
        f"{provider}/token",
        data={
            "grant_type": EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "audience": audience,
            "scope": scope,
        },
        headers=basic(client["client_id"], client["client_secret"]),
        timeout=TIMEOUT,
    )


def unverified_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def forged_token(issuer: str, audience: str, scope: str, kid: str, **claims: Any) -> str:
    """An access token exactly as the provider would write it, signed with a stranger's RSA key."""
    stranger = RSAKey.generate_key(2048)
    now = int(time.time())
    body = {
        "iss": issuer,
        "aud": audience,
        "sub": claims.pop("sub", audience),
        "client_id": claims.pop("client_id", audience),
        "scope": scope,
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(8),
        **claims,
    }
    return jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": kid}, body, stranger)


# -- the servers of the story (built by conftest.py) -------------------------------------------------


@dataclass
class World:
    provider: str
    services: Any  # the provider's live_services
    catalogue: str
    certificates: str
    cases: str
    apps: dict[str, Flask]
    clients: dict[str, dict[str, Any]]
    entity_id: str
    zhangsan_id: str
    lisi_id: str
    agent_authorisation_id: str

    def browser(self, person: dict[str, Any] | None = None, **options: Any) -> Browser:
        return Browser(person or LISI, self.provider, **options)

    def rp(self, name: str) -> Any:
        """The service's relying party (adapters.rp_kit.RelyingParty)."""
        return self.apps[name].extensions["rp_kit"]
