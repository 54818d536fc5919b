"""The workloads: what one timed operation is for each, plus its untimed setup."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit, urlunsplit

from bench.env import BenchError, Env, fail, json_of
from bench.forms import Form, parse_forms
from bench.http import Connection, CookieJar, Response

FORM = ("Content-Type", "application/x-www-form-urlencoded")
REDIRECTS = frozenset((301, 302, 303, 307, 308))
MAX_LOGIN_STEPS = 20


def basic_auth(client_id: str, secret: str) -> tuple[str, str]:
    """HTTP Basic client authentication (RFC 6749 2.3.1: both parts form-urlencoded first)."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return ("Authorization", "Basic " + base64.b64encode(raw).decode("ascii"))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _jwt_payload(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _pick_form(forms: list[Form]) -> Form | None:
    for test in (
        lambda f: f.has_password,
        lambda f: f.has_button("decision", "allow"),
        lambda f: f.method == "POST",
        lambda f: True,
    ):
        for form in forms:
            if test(form):
                return form
    return None


async def login(env: Env, conn: Connection) -> dict[str, Any]:
    """One complete authorization-code + PKCE login with a fresh cookie jar; the token response."""
    s = env.settings
    verifier = secrets.token_urlsafe(48)
    challenge = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
    state = secrets.token_urlsafe(12)
    nonce = secrets.token_urlsafe(12)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": s.client_id,
            "redirect_uri": s.redirect_uri,
            "scope": s.login_scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "prompt": "login",
        }
    )
    auth = env.ep.authorization
    url = auth + ("&" if "?" in auth else "?") + query
    jar = CookieJar()
    method, body = "GET", None
    password_forms = 0
    for _ in range(MAX_LOGIN_STEPS):
        headers = jar.header()
        if body is not None:
            headers.append(FORM)
        resp = await conn.send(env.request(method, url, headers, body))
        jar.update(resp)
        step = f"login {method} {urlsplit(url).path}"
        if resp.status in REDIRECTS:
            location = resp.header("location")
            if not location:
                raise fail(step, resp, "redirect without Location")
            url = urljoin(url, location)
            if url.startswith(s.redirect_uri):
                return await _redeem(env, conn, url, state, nonce, verifier)
            if resp.status not in (307, 308):
                method, body = "GET", None
            continue
        if resp.status != 200:
            raise fail(step, resp)
        form = _pick_form(parse_forms(resp.text()))
        if form is None:
            raise fail(step, resp, "page has no <form>")
        fields = list(form.hidden)
        if form.has_password:
            password_forms += 1
            if password_forms > 1:
                raise fail(step, resp, "password form shown again (wrong credentials?)")
            username = secrets.choice(s.usernames) if s.usernames else s.username
            fields += [(s.identifier_field, username), (s.password_field, s.password)]
        elif form.has_button("decision", "allow"):
            fields.append(("decision", "allow"))
        url = urljoin(url, form.action)
        encoded = urlencode(fields)
        if form.method == "GET":
            parts = urlsplit(url)
            url, method, body = urlunsplit(parts._replace(query=encoded, fragment="")), "GET", None
        else:
            method, body = form.method, encoded.encode()
    raise BenchError("login: too many redirects/forms")


async def _redeem(
    env: Env, conn: Connection, url: str, state: str, nonce: str, verifier: str
) -> dict[str, Any]:
    s = env.settings
    params = parse_qs(urlsplit(url).query)
    if "error" in params:
        raise BenchError(
            f"login callback: error={params['error'][0]}", " ".join(params.get("error_description", []))
        )
    if params.get("state") != [state]:
        raise BenchError("login callback: state mismatch", url)
    codes = params.get("code")
    if not codes:
        raise BenchError("login callback: no code", url)
    body = urlencode(
        {
            "grant_type": "authorization_code",
            "code": codes[0],
            "redirect_uri": s.redirect_uri,
            "code_verifier": verifier,
        }
    ).encode()
    headers = [basic_auth(s.client_id, s.client_secret), FORM]
    resp = await conn.send(env.request("POST", env.ep.token, headers, body))
    data = json_of("login token", resp)
    id_token = data.get("id_token")
    if not isinstance(id_token, str):
        raise fail("login token", resp, "no id_token")
    claims = _jwt_payload(id_token)
    if claims is not None and claims.get("nonce") != nonce:
        raise fail("login token", resp, "id_token nonce mismatch")
    return data


class Op:
    """One worker's operation; `run` is timed, `recover` runs (untimed) after a failed `run`."""

    def __init__(self, env: Env, conn: Connection, shared: dict[str, Any], index: int) -> None:
        self.env = env
        self.conn = conn
        self.shared = shared
        self.index = index

    async def setup(self) -> None:
        pass

    async def run(self) -> None:
        raise NotImplementedError

    async def recover(self) -> None:
        pass


class Workload:
    """A named workload; `prepare` runs once per driver process before the workers' setup."""

    name = ""
    needs_discovery = True
    op_class: type[Op] = Op

    def __init__(self) -> None:
        self.shared: dict[str, Any] = {}

    async def prepare(self, env: Env, conn: Connection) -> None:
        pass

    def make_op(self, env: Env, conn: Connection, index: int) -> Op:
        return self.op_class(env, conn, self.shared, index)


def _check_status(step: str, resp: Response, marker: bytes = b"") -> None:
    if resp.status != 200 or (marker and marker not in resp.body):
        raise fail(step, resp, "" if resp.status != 200 else f"body lacks {marker.decode()}")


class _StaticGet(Op):
    step = ""
    marker = b""

    def url(self) -> str:
        raise NotImplementedError

    async def setup(self) -> None:
        self.req = self.env.request("GET", self.url())

    async def run(self) -> None:
        _check_status(self.step, await self.conn.send(self.req), self.marker)


class FloorOp(_StaticGet):
    step = "healthz"

    def url(self) -> str:
        return self.env.url("/healthz")


class DiscoveryOp(_StaticGet):
    step = "discovery"
    marker = b"token_endpoint"

    def url(self) -> str:
        return self.env.url("/.well-known/openid-configuration")


class JwksOp(_StaticGet):
    step = "jwks"
    marker = b"keys"

    def url(self) -> str:
        return self.env.ep.jwks


def _cc_request(env: Env) -> bytes:
    s = env.settings
    form = {"grant_type": "client_credentials"}
    if s.cc_scope:
        form["scope"] = s.cc_scope
    headers = [basic_auth(s.cc_client_id, s.cc_client_secret), FORM]
    return env.request("POST", env.ep.token, headers, urlencode(form).encode())


class ClientCredentialsOp(Op):
    async def setup(self) -> None:
        self.req = _cc_request(self.env)

    async def run(self) -> None:
        data = json_of("token(client_credentials)", resp := await self.conn.send(self.req))
        if not isinstance(data.get("access_token"), str):
            raise fail("token(client_credentials)", resp, "no access_token")


class IntrospectionOp(Op):
    async def setup(self) -> None:
        s = self.env.settings
        headers = [basic_auth(s.cc_client_id, s.cc_client_secret), FORM]
        tokens: list[str] = self.shared["tokens"]
        self.reqs = [
            self.env.request("POST", self.env.ep.introspection, headers, urlencode({"token": t}).encode())
            for t in tokens
        ]
        self.i = self.index

    async def run(self) -> None:
        self.i += 1
        resp = await self.conn.send(self.reqs[self.i % len(self.reqs)])
        if json_of("introspection", resp).get("active") is not True:
            raise fail("introspection", resp, "active is not true")


class IntrospectionWorkload(Workload):
    name = "introspection"
    op_class = IntrospectionOp

    async def prepare(self, env: Env, conn: Connection) -> None:
        tokens = []
        req = _cc_request(env)
        for _ in range(max(1, env.settings.introspection_tokens)):
            data = json_of("setup token(client_credentials)", resp := await conn.send(req))
            if not isinstance(data.get("access_token"), str):
                raise fail("setup token(client_credentials)", resp, "no access_token")
            tokens.append(data["access_token"])
        self.shared["tokens"] = tokens


class UserinfoOp(Op):
    async def setup(self) -> None:
        bearer = ("Authorization", f"Bearer {self.shared['access_token']}")
        self.req = self.env.request("GET", self.env.ep.userinfo, [bearer])

    async def run(self) -> None:
        resp = await self.conn.send(self.req)
        if not isinstance(json_of("userinfo", resp).get("sub"), str):
            raise fail("userinfo", resp, "no sub")


class UserinfoWorkload(Workload):
    name = "userinfo"
    op_class = UserinfoOp

    async def prepare(self, env: Env, conn: Connection) -> None:
        data = await login(env, conn)
        if not isinstance(data.get("access_token"), str):
            raise BenchError("setup login: token response has no access_token")
        self.shared["access_token"] = data["access_token"]


class RefreshOp(Op):
    """Each worker owns one rotating refresh-token chain and only ever presents its latest token."""

    async def setup(self) -> None:
        data = await login(self.env, self.conn)
        token = data.get("refresh_token")
        if not isinstance(token, str):
            raise BenchError(
                "setup login: token response has no refresh_token",
                f"scope {self.env.settings.login_scope!r}; try --login-scope 'openid profile offline_access'",
            )
        self.token = token
        s = self.env.settings
        self.headers = [basic_auth(s.client_id, s.client_secret), FORM]

    async def run(self) -> None:
        body = urlencode({"grant_type": "refresh_token", "refresh_token": self.token}).encode()
        resp = await self.conn.send(self.env.request("POST", self.env.ep.token, self.headers, body))
        data = json_of("token(refresh_token)", resp)
        new = data.get("refresh_token")
        if isinstance(new, str):
            self.token = new
        if not isinstance(data.get("access_token"), str):
            raise fail("token(refresh_token)", resp, "no access_token")

    async def recover(self) -> None:
        # The chain may be broken (or the new token lost): never replay it, start a new one.
        await self.setup()


class LoginOp(Op):
    async def run(self) -> None:
        await login(self.env, self.conn)


def _simple(name: str, op: type[Op], discovery: bool = True) -> type[Workload]:
    return type(
        f"{op.__name__}Workload", (Workload,), {"name": name, "op_class": op, "needs_discovery": discovery}
    )


WORKLOADS: dict[str, type[Workload]] = {
    "floor": _simple("floor", FloorOp, discovery=False),
    "discovery": _simple("discovery", DiscoveryOp, discovery=False),
    "jwks": _simple("jwks", JwksOp),
    "client_credentials": _simple("client_credentials", ClientCredentialsOp),
    "introspection": IntrospectionWorkload,
    "userinfo": UserinfoWorkload,
    "refresh": _simple("refresh", RefreshOp),
    "login": _simple("login", LoginOp),
}
