"""Stand-in OIDC server (fake tokens, in-memory state) implementing the driver's HTTP contract."""

# Run it in ONE process (state is in memory), e.g.
#   taskset -c 0 .venv/bin/gunicorn -k gthread -w 1 --threads 8 -b 127.0.0.1:5055 bench.standin:app
# or  .venv/bin/python -m bench.standin --port 5055   (werkzeug dev server)

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import unquote, urlencode

from flask import Flask, Response, jsonify, make_response, redirect, request
from werkzeug.wrappers import Response as BaseResponse

app = Flask(__name__)

LOGIN_CLIENT = ("bench-web", "bench-web-secret", "http://127.0.0.1:9/callback")
CC_CLIENT = ("bench-svc", "bench-svc-secret")
USERS = {"bench-user": "bench-password"}
FLOW_COOKIE = "standin_flow"
SESSION_COOKIE = "standin_session"

_lock = threading.Lock()


@dataclass
class _Flow:
    params: dict[str, str]
    csrf: str
    user: str | None = None


@dataclass
class _Refresh:
    family: str
    sub: str
    scope: str
    used: bool = False


_flows: dict[str, _Flow] = {}
_codes: dict[str, tuple[_Flow, float]] = {}
_access: dict[str, dict[str, Any]] = {}
_refresh: dict[str, _Refresh] = {}
_revoked_families: set[str] = set()
_JWKS = {
    "keys": [
        {
            "kty": "RSA",
            "kid": "standin-1",
            "use": "sig",
            "alg": "RS256",
            "e": "AQAB",
            "n": base64.urlsafe_b64encode(secrets.token_bytes(256)).rstrip(b"=").decode(),
        }
    ]
}


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _oauth_error(error: str, status: int = 400) -> Response:
    resp = jsonify({"error": error})
    resp.status_code = status
    return resp


def _client() -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    cid, secret = unquote(cid), unquote(secret)
    for known_id, known_secret, *_ in (LOGIN_CLIENT, CC_CLIENT):
        if cid == known_id and hmac.compare_digest(secret, known_secret):
            return cid, secret
    return None


def _issue_access(sub: str | None, client_id: str, scope: str) -> str:
    token = secrets.token_urlsafe(32)
    with _lock:
        _access[token] = {"sub": sub, "client_id": client_id, "scope": scope, "exp": int(time.time()) + 3600}
    return token


def _issue_refresh(family: str, sub: str, scope: str) -> str:
    token = secrets.token_urlsafe(32)
    with _lock:
        _refresh[token] = _Refresh(family, sub, scope)
    return token


@app.get("/healthz")
def healthz() -> BaseResponse:
    return Response("ok\n", mimetype="text/plain")


@app.get("/.well-known/openid-configuration")
def discovery() -> BaseResponse:
    base = request.host_url.rstrip("/")
    return jsonify(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "introspection_endpoint": f"{base}/introspect",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks.json",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        }
    )


@app.get("/jwks.json")
def jwks() -> BaseResponse:
    return jsonify(_JWKS)


@app.get("/authorize")
def authorize() -> BaseResponse:
    a = request.args
    if a.get("client_id") != LOGIN_CLIENT[0] or a.get("redirect_uri") != LOGIN_CLIENT[2]:
        return Response("unknown client or redirect_uri", status=400)
    if (
        a.get("response_type") != "code"
        or a.get("code_challenge_method") != "S256"
        or not a.get("code_challenge")
    ):
        return redirect(f"{LOGIN_CLIENT[2]}?error=invalid_request&state={a.get('state', '')}")
    flow_id = secrets.token_urlsafe(16)
    with _lock:
        _flows[flow_id] = _Flow(params=dict(a.items()), csrf=secrets.token_urlsafe(16) + "&x=<1>")
    resp = make_response("", 302)
    resp.headers["Location"] = f"/login?flow={flow_id}"  # relative on purpose
    resp.set_cookie(FLOW_COOKIE, flow_id, httponly=True, samesite="Lax")
    return resp


def _flow() -> tuple[str, _Flow] | None:
    flow_id = request.args.get("flow", "")
    if request.cookies.get(FLOW_COOKIE) != flow_id:
        return None
    with _lock:
        flow = _flows.get(flow_id)
    return (flow_id, flow) if flow is not None else None


@app.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse:
    found = _flow()
    if found is None:
        return Response("no such login flow (cookie?)", status=400)
    flow_id, flow = found
    if request.method == "GET":
        csrf = escape(flow.csrf, quote=True)
        html = (
            "<!doctype html><html><body><h1>Sign in</h1>"
            '<form method="post" action="" class="login">'  # empty action: same URL
            f'<input value="{csrf}" type="hidden" name="csrf_token">'
            f'<input name="flow" type="hidden" value="{flow_id}">'
            '<input type="text" name="identifier"><input name="password" type="password">'
            '<button type="submit">Sign in</button></form></body></html>'
        )
        return Response(html, mimetype="text/html")
    f = request.form
    if f.get("csrf_token") != flow.csrf or f.get("flow") != flow_id:
        return Response("bad csrf", status=400)
    user = f.get("identifier", "")
    if USERS.get(user) is None or not hmac.compare_digest(USERS[user], f.get("password", "")):
        return Response("wrong credentials", status=200, mimetype="text/html")
    flow.user = user
    resp = make_response("", 303)
    resp.headers["Location"] = f"{request.host_url}consent?flow={flow_id}"  # absolute on purpose
    resp.set_cookie(SESSION_COOKIE, secrets.token_urlsafe(16), httponly=True, samesite="Lax")
    return resp


@app.route("/consent", methods=["GET", "POST"])
def consent() -> BaseResponse:
    found = _flow()
    if found is None or found[1].user is None or not request.cookies.get(SESSION_COOKIE):
        return Response("not signed in", status=400)
    flow_id, flow = found
    if request.method == "GET":
        html = (
            "<!doctype html><html><body><p>Allow bench-web to see your profile?</p>"
            f'<form action="/consent?flow={flow_id}" method="POST">'
            f'<input type="hidden" name="csrf_token" value="{escape(flow.csrf, quote=True)}">'
            '<button type="submit" name="decision" value="deny">Deny</button>'
            '<button value="allow" name="decision" type="submit">Allow</button>'
            "</form></body></html>"
        )
        return Response(html, mimetype="text/html")
    if request.form.get("csrf_token") != flow.csrf:
        return Response("bad csrf", status=400)
    state = flow.params.get("state", "")
    with _lock:
        _flows.pop(flow_id, None)
    if request.form.get("decision") != "allow":
        return redirect(f"{LOGIN_CLIENT[2]}?{urlencode({'error': 'access_denied', 'state': state})}")
    code = secrets.token_urlsafe(24)
    with _lock:
        _codes[code] = (flow, time.time() + 60)
    return redirect(f"{LOGIN_CLIENT[2]}?{urlencode({'code': code, 'state': state})}")


def _id_token(sub: str, aud: str, nonce: str | None) -> str:
    now = int(time.time())
    claims = {"iss": request.host_url.rstrip("/"), "sub": sub, "aud": aud, "iat": now, "exp": now + 300}
    if nonce:
        claims["nonce"] = nonce
    head = _b64url(json.dumps({"alg": "none", "kid": "standin-1"}).encode())
    return f"{head}.{_b64url(json.dumps(claims).encode())}.{_b64url(b'fake-signature')}"


@app.post("/token")
def token() -> BaseResponse:
    client = _client()
    if client is None:
        return _oauth_error("invalid_client", 401)
    f = request.form
    grant = f.get("grant_type")
    if grant == "client_credentials":
        if client[0] != CC_CLIENT[0]:
            return _oauth_error("unauthorized_client")
        scope = f.get("scope", "")
        return jsonify(
            {
                "access_token": _issue_access(None, client[0], scope),
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": scope,
            }
        )
    if client[0] != LOGIN_CLIENT[0]:
        return _oauth_error("unauthorized_client")
    if grant == "authorization_code":
        with _lock:
            entry = _codes.pop(f.get("code", ""), None)
        if entry is None or entry[1] < time.time():
            return _oauth_error("invalid_grant")
        flow = entry[0]
        verifier = f.get("code_verifier", "")
        if _b64url(hashlib.sha256(verifier.encode()).digest()) != flow.params.get("code_challenge"):
            return _oauth_error("invalid_grant")
        if f.get("redirect_uri") != flow.params.get("redirect_uri") or flow.user is None:
            return _oauth_error("invalid_grant")
        scope = flow.params.get("scope", "")
        return jsonify(
            {
                "access_token": _issue_access(flow.user, client[0], scope),
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": _issue_refresh(secrets.token_urlsafe(8), flow.user, scope),
                "id_token": _id_token(flow.user, client[0], flow.params.get("nonce")),
                "scope": scope,
            }
        )
    if grant == "refresh_token":
        with _lock:
            old = _refresh.get(f.get("refresh_token", ""))
            if old is None or old.family in _revoked_families:
                return _oauth_error("invalid_grant")
            if old.used:  # replay: revoke the whole family
                _revoked_families.add(old.family)
                return _oauth_error("invalid_grant")
            old.used = True
        return jsonify(
            {
                "access_token": _issue_access(old.sub, client[0], old.scope),
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": _issue_refresh(old.family, old.sub, old.scope),
                "scope": old.scope,
            }
        )
    return _oauth_error("unsupported_grant_type")


@app.post("/introspect")
def introspect() -> BaseResponse:
    client = _client()
    if client is None:
        return _oauth_error("invalid_client", 401)
    with _lock:
        info = _access.get(request.form.get("token", ""))
    if info is None or info["exp"] < time.time():
        return jsonify({"active": False})
    body = {"active": True, "client_id": info["client_id"], "scope": info["scope"], "exp": info["exp"]}
    if info["sub"]:
        body["sub"] = info["sub"]
    return jsonify(body)


@app.get("/userinfo")
def userinfo() -> BaseResponse:
    auth = request.headers.get("Authorization", "")
    with _lock:
        info = _access.get(auth[7:]) if auth.startswith("Bearer ") else None
    if info is None or not info["sub"]:
        resp = _oauth_error("invalid_token", 401)
        resp.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return resp
    return jsonify({"sub": info["sub"], "name": "Bench User", "preferred_username": info["sub"]})


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="werkzeug dev server for the stand-in (threaded)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args()
    app.run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
