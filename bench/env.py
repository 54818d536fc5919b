"""Run settings, the target server and its endpoints as read from OpenID discovery."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.http import Connection, ProtocolError, Response, build_request, target_of


class BenchError(Exception):
    """An unexpected response: `key` groups errors in the report, `detail` is one sample."""

    def __init__(self, key: str, detail: str = "") -> None:
        super().__init__(f"{key} {detail}".strip())
        self.key = key
        self.detail = detail


def fail(step: str, resp: Response | None, why: str = "") -> BenchError:
    """Build the error for a failed step (raise the result)."""
    key = step + (f": HTTP {resp.status}" if resp is not None else "") + (f" {why}" if why else "")
    detail = resp.body[:300].decode("utf-8", "replace") if resp is not None else ""
    return BenchError(key, detail)


def json_of(step: str, resp: Response, status: int = 200) -> dict[str, Any]:
    """The JSON object of a response with the expected status, or a BenchError."""
    if resp.status != status:
        raise fail(step, resp)
    try:
        data = resp.json()
    except ValueError:
        raise fail(step, resp, "body is not JSON") from None
    if not isinstance(data, dict):
        raise fail(step, resp, "JSON is not an object")
    return data


# What one operation may raise when the server misbehaves; anything else is a driver bug and propagates.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (BenchError, OSError, TimeoutError, ProtocolError, ValueError)


@dataclass(frozen=True)
class Settings:
    """Everything the command line configures about the target and the accounts to use."""

    base_url: str = "http://127.0.0.1:5000"
    timeout: float = 30.0
    cc_client_id: str = "bench-svc"
    cc_client_secret: str = "bench-svc-secret"
    cc_scope: str = ""
    client_id: str = "bench-web"
    client_secret: str = "bench-web-secret"
    redirect_uri: str = "http://127.0.0.1:9/callback"
    username: str = "bench-user"
    password: str = "bench-password"
    # --username-file: every login signs in as one of these, picked at random (all with `password`)
    usernames: tuple[str, ...] = ()
    login_scope: str = "openid profile"
    identifier_field: str = "identifier"
    password_field: str = "password"
    introspection_tokens: int = 16


@dataclass(frozen=True)
class Endpoints:
    """Absolute URLs advertised by discovery."""

    authorization: str
    token: str
    introspection: str
    userinfo: str
    jwks: str


@dataclass
class Env:
    """The target server: connection parameters, URL helpers and (after discovery) its endpoints."""

    settings: Settings
    endpoints: Endpoints | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts = urlsplit(self.settings.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--base-url must be an absolute http(s) URL, got {self.settings.base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host_header = parts.netloc
        self.prefix = parts.path.rstrip("/")
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None

    def connection(self) -> Connection:
        """A new (lazily connected) connection to the base URL's host and port."""
        return Connection(self.host, self.port, self.settings.timeout, self.tls)

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host_header}{self.prefix}{path}"

    def request(
        self, method: str, url: str, headers: list[tuple[str, str]] | None = None, body: bytes | None = None
    ) -> bytes:
        """A request for `url`, always sent to the base URL's server (only path and query are used)."""
        return build_request(method, target_of(url), self.host_header, headers or [], body)

    @property
    def ep(self) -> Endpoints:
        if self.endpoints is None:
            raise RuntimeError("discovery has not been run")
        return self.endpoints

    async def discover(self) -> Endpoints:
        """Fetch /.well-known/openid-configuration and remember the advertised endpoints."""
        conn = self.connection()
        try:
            resp = await conn.send(self.request("GET", self.url("/.well-known/openid-configuration")))
        finally:
            conn.close()
        doc = json_of("discovery", resp)
        keys = {
            "authorization": "authorization_endpoint",
            "token": "token_endpoint",
            "introspection": "introspection_endpoint",
            "userinfo": "userinfo_endpoint",
            "jwks": "jwks_uri",
        }
        missing = [v for v in keys.values() if not isinstance(doc.get(v), str)]
        if missing:
            raise BenchError("discovery: missing " + ", ".join(missing))
        found = {k: str(doc[v]) for k, v in keys.items()}
        base = urlsplit(self.settings.base_url).netloc
        for name, value in found.items():
            netloc = urlsplit(value).netloc
            if netloc and netloc != base:
                self.notes.append(
                    f"{keys[name]} is on {netloc}; requests go to {base} with the advertised path"
                )
        self.endpoints = Endpoints(**found)
        return self.endpoints
