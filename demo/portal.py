"""A tiny demo platform (relying party) for `make run`: sign in with the provider, see the claims, sign out.

It uses Authlib's Flask client with PKCE S256 and receives back-channel logout tokens, as a real
regional portal would. It is demo code, not part of the provider.
"""

from __future__ import annotations

import os
import secrets
import threading

from authlib.integrations.flask_client import OAuth
from flask import Flask, abort, redirect, render_template_string, request, session, url_for
from joserfc import jwt
from joserfc.jwk import KeySet

ISSUER = os.environ.get("DEMO_ISSUER", "http://127.0.0.1:5000")
PORTAL_URL = os.environ.get("DEMO_PORTAL_URL", "http://127.0.0.1:8001")
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"

PAGE = """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>省政务服务网 (demo portal)</title>
<body style="font-family:sans-serif;max-width:46rem;margin:2rem auto">
<h1>省政务服务网 · demo portal</h1>
{% if user %}
  <p>已登录 / Signed in as <strong>{{ user.get('name') or user.get('preferred_username') }}</strong>
     (acr {{ claims.get('acr') }}, sid {{ claims.get('sid') }})</p>
  <h2>ID token claims</h2><pre>{{ claims | tojson(indent=2) }}</pre>
  <h2>UserInfo</h2><pre>{{ user | tojson(indent=2) }}</pre>
  <form method="post" action="{{ url_for('logout') }}"><button>退出 / Sign out everywhere</button></form>
{% else %}
  <p>未登录 / Not signed in.</p>
  <p><a href="{{ url_for('login') }}">使用统一身份认证登录 / Sign in with the unified identity provider</a></p>
{% endif %}
</body></html>"""


def create_portal(client_id: str, client_secret: str) -> Flask:
    app = Flask("demo_portal")
    app.secret_key = secrets.token_bytes(32)
    app.config["SESSION_COOKIE_NAME"] = "demo_portal"
    ended_sids: set[str] = set()
    lock = threading.Lock()
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email phone", "code_challenge_method": "S256"},
    )

    def signed_in() -> bool:
        sid = session.get("claims", {}).get("sid")
        with lock:
            if sid in ended_sids:
                session.clear()  # ended by back-channel logout
        return "claims" in session

    @app.get("/")
    def index() -> str:
        return render_template_string(
            PAGE, user=session.get("user") if signed_in() else None, claims=session.get("claims", {})
        )

    @app.get("/login")
    def login():  # type: ignore[no-untyped-def]
        return oauth.idp.authorize_redirect(f"{PORTAL_URL}/callback")

    @app.get("/callback")
    def callback():  # type: ignore[no-untyped-def]
        token = oauth.idp.authorize_access_token()
        session["claims"] = dict(token["userinfo"])
        session["id_token"] = token["id_token"]
        session["user"] = dict(oauth.idp.userinfo(token=token))
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout():  # type: ignore[no-untyped-def]
        id_token = session.pop("id_token", "")
        session.clear()
        metadata = oauth.idp.load_server_metadata()
        query = f"id_token_hint={id_token}&post_logout_redirect_uri={PORTAL_URL}/&state={secrets.token_urlsafe(8)}"
        return redirect(f"{metadata['end_session_endpoint']}?{query}")

    @app.post("/backchannel-logout")
    def backchannel_logout():  # type: ignore[no-untyped-def]
        keys = KeySet.import_key_set(oauth.idp.fetch_jwk_set(force=True))
        try:
            token = jwt.decode(request.form.get("logout_token", ""), keys, algorithms=["RS256", "ES256"])
        except Exception:  # noqa: BLE001 - any invalid token is refused
            abort(400)
        claims = token.claims
        if (
            claims.get("iss") != ISSUER
            or claims.get("aud") != client_id
            or BACKCHANNEL_EVENT not in claims.get("events", {})
        ):
            abort(400)
        with lock:
            ended_sids.add(claims["sid"])
        return ("", 200)

    return app
