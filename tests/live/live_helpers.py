"""Helpers for the live tests: a real server process, a back-channel receiver, a browser, a relying party."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from flows import PERSON, hidden_inputs
from joserfc import jwt
from joserfc.jwk import KeySet

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(settings: Any) -> dict[str, str]:
    """The IDP_* environment that makes a separate process see exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        IDP_ISSUER=settings.issuer,
        IDP_DATABASE_URL=settings.database_url,
        IDP_REDIS_PREFIX=settings.redis_prefix,
        IDP_KEY_DIR=settings.key_dir,
        IDP_ALLOW_PRIVATE_NETWORK="true" if settings.allow_private_network else "false",
        IDP_PASSWORD_TIME_COST=str(settings.password_time_cost),
        IDP_PASSWORD_MEMORY_KIB=str(settings.password_memory_kib),
        IDP_LOGOUT_WORKER="false",
        PYTHONUNBUFFERED="1",
    )
    if settings.redis_url:
        env["IDP_REDIS_URL"] = settings.redis_url
    return env


# -- the provider in a real server --------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    access_log_path: Path
    env: dict[str, str]

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def access_log(self) -> list[str]:
        if not self.access_log_path.exists():
            return []
        return self.access_log_path.read_text(errors="replace").splitlines()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # quick shutdown; keep-alive connections are ours
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def kill(self) -> None:
        """SIGKILL the whole server at once, master and workers, as a crashed machine would go
        (needs `start_new_session=True`, so that they form their own process group)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=5)


def start_gunicorn(
    settings: Any,
    port: int,
    workdir: Path,
    *,
    workers: int = 2,
    threads: int = 4,
    extra_env: dict[str, str] | None = None,
    start_new_session: bool = False,
) -> LiveServer:
    """`gunicorn wsgi:app` on 127.0.0.1:port with the settings in its environment; waits for /healthz."""
    server = spawn_gunicorn(
        settings,
        port,
        workdir,
        workers=workers,
        threads=threads,
        extra_env=extra_env,
        start_new_session=start_new_session,
    )
    wait_until_healthy(server)
    return server


def spawn_gunicorn(
    settings: Any,
    port: int,
    workdir: Path,
    *,
    workers: int = 2,
    threads: int = 4,
    extra_env: dict[str, str] | None = None,
    start_new_session: bool = False,
) -> LiveServer:
    """Start `gunicorn wsgi:app` on 127.0.0.1:port and return at once (see `wait_until_healthy`).

    `extra_env` adds or overrides IDP_* variables; `start_new_session` puts master and workers in a
    process group of their own, which `LiveServer.kill` ends at once."""
    config = workdir / "gunicorn.conf.py"
    config.write_text("# empty: every option is on the command line\n")
    log_path = workdir / "gunicorn.log"
    access_log_path = workdir / "access.log"
    env = server_environment(settings)
    env.update(extra_env or {})
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(config),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        "30",
        "--graceful-timeout",
        "5",
        "--error-logfile",
        str(log_path),
        "--access-logfile",
        str(access_log_path),
        "--access-logformat",
        "%(p)s %(m)s %(U)s %(s)s",
        "wsgi:app",
    ]
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=start_new_session,
    )
    log_file.close()
    return LiveServer(f"http://127.0.0.1:{port}", process, log_path, access_log_path, env)


def wait_until_healthy(server: LiveServer) -> None:
    """Wait (30 s at most) until the server answers /healthz; stop it and raise if it does not."""
    process = server.process
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if requests.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"gunicorn did not answer /healthz within 30 s:\n{server.log_tail()}")


# -- a platform's back-channel logout endpoint --------------------------------------------------


@dataclass
class Receiver:
    """Records POSTed logout tokens per path; answers 503 for the first `fail_first` attempts."""

    fail_first: int = 0
    attempts: list[str] = field(default_factory=list)  # the path of every attempt, in order
    tokens: list[tuple[str, str]] = field(default_factory=list)  # (path, logout_token) accepted
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                form = parse_qs(body)
                with receiver.lock:
                    receiver.attempts.append(self.path)
                    failing = len(receiver.attempts) <= receiver.fail_first
                    if not failing:
                        receiver.tokens.append((self.path, form.get("logout_token", [""])[0]))
                self.send_response(503 if failing else 200)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="bcl-receiver", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# -- a browser ----------------------------------------------------------------------------------


def browse_to_redirect(
    browser: requests.Session, url: str, redirect_prefix: str, *, person: dict[str, Any] = PERSON
) -> str:
    """GET url and walk through login / consent forms until a redirect to the client; that redirect
    is returned and never followed (the client's host is not ours)."""
    response = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
    for _ in range(10):
        if response.status_code in (301, 302, 303, 307, 308):
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(redirect_prefix):
                return location
            response = browser.get(location, allow_redirects=False, timeout=TIMEOUT)
            continue
        assert response.status_code == 200, (response.status_code, response.text[:500])
        html = response.text
        fields = hidden_inputs(html)
        match = re.search(r'<form[^>]*action="([^"]*)"', html)
        assert match, html[:500]
        if 'name="password"' in html:
            assert fields.get("csrf_token") and fields.get("tx"), fields
            fields.update(identifier=person["username"], password=person["password"])
        elif 'name="decision"' in html:
            fields["decision"] = "allow"
        elif 'name="choice"' in html:
            fields["choice"] = "continue"
        action = urljoin(response.url, unescape(match.group(1)))
        response = browser.post(action, data=fields, allow_redirects=False, timeout=TIMEOUT)
    raise AssertionError("too many steps before the redirect to the client")


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


# -- a relying party ----------------------------------------------------------------------------

SECRET_A = "portal-secret-0123456789-0123456789-abc"
SECRET_B = "services-secret-0123456789-0123456789-x"


def clients(receiver_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    portal = {
        "client_id": "portal",
        "client_name": "Portal",
        "client_secret": SECRET_A,
        "redirect_uris": ["https://portal.example/cb"],
        "post_logout_redirect_uris": ["https://portal.example/bye"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "openid profile email phone",
        "first_party": True,
        "backchannel_logout_uri": f"{receiver_url}/bcl/portal",
    }
    services = {
        "client_id": "case-service",
        "client_name": "Case service",
        "client_secret": SECRET_B,
        "redirect_uris": ["https://cases.example/cb"],
        "post_logout_redirect_uris": ["https://cases.example/bye"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "openid profile",
        "first_party": True,
        "id_token_signed_response_alg": "ES256",
        "backchannel_logout_uri": f"{receiver_url}/bcl/case-service",
    }
    return portal, services


def discover(base_url: str) -> dict[str, Any]:
    response = requests.get(f"{base_url}/.well-known/openid-configuration", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    metadata = response.json()
    assert metadata["issuer"] == base_url
    return metadata


def relying_party(client: dict[str, Any], scope: str = "openid profile email") -> OAuth2Session:
    session = OAuth2Session(
        client["client_id"],
        client["client_secret"],
        scope=scope,
        redirect_uri=client["redirect_uris"][0],
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        revocation_endpoint_auth_method="client_secret_basic",
    )
    return session


def fetch_jwks(metadata: dict[str, Any]) -> KeySet:
    response = requests.get(metadata["jwks_uri"], timeout=TIMEOUT)
    assert response.status_code == 200
    return KeySet.import_key_set(response.json())


def left_hash(value: str) -> str:
    """at_hash for RS256 / ES256 (OIDC Core §3.1.3.6): left half of SHA-256, base64url."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def verify_id_token(
    value: str, keys: KeySet, *, issuer: str, client_id: str, nonce: str, access_token: str, alg: str
) -> dict[str, Any]:
    token = jwt.decode(value, keys, algorithms=[alg])
    assert token.header["alg"] == alg and token.header.get("kid")
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        sid={"essential": True},
        acr={"essential": True},
        amr={"essential": True},
        at_hash={"essential": True, "value": left_hash(access_token)},
    )
    registry.validate(token.claims)
    return dict(token.claims)


def verify_logout_token(
    value: str, keys: KeySet, *, issuer: str, client_id: str, now: int | None = None
) -> dict[str, Any]:
    """OIDC Back-Channel Logout 1.0 §2.4 / §2.6, as a relying party checks it (at `now`)."""
    token = jwt.decode(value, keys, algorithms=["RS256", "ES256"])
    assert token.header["typ"] == "logout+jwt"
    registry = jwt.JWTClaimsRegistry(
        now=now,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        iat={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
        sid={"essential": True},
        events={"essential": True},
    )
    registry.validate(token.claims)
    claims = dict(token.claims)
    assert BACKCHANNEL_EVENT in claims["events"] and claims["events"][BACKCHANNEL_EVENT] == {}
    assert "nonce" not in claims
    return claims
