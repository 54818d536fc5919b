"""A small relying party for the browser tests: a Flask app using Authlib's Flask client (PKCE S256),
served by a threaded werkzeug server on a real port, so that the browser does a real OIDC flow.

Its pages need no JavaScript and give the tests stable hooks: `#status`, `#name`, `#acr`, `#amr`,
`#entity-uscc`, `#error`, `#signed-out`, and the links and button that start a sign-in or a sign-out.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, abort, redirect, render_template_string, request, session, url_for
from werkzeug.serving import BaseWSGIServer, make_server

LOA3 = "urn:cn:gov:loa:3"

PAGE = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body>
<h1>{{ title }}</h1>
{% if error %}<p>Sign-in failed: <span id="error">{{ error }}</span></p>{% endif %}
{% if signed_out %}<p id="signed-out">You were signed out at the provider.</p>{% endif %}
{% if user %}
<p id="status">signed in</p>
<dl>
<dt>Name</dt><dd id="name">{{ user.get('name') or '' }}</dd>
<dt>Subject</dt><dd id="sub">{{ claims.get('sub') }}</dd>
<dt>Level of assurance</dt><dd id="acr">{{ claims.get('acr') }}</dd>
<dt>Methods</dt><dd id="amr">{{ (claims.get('amr') or []) | join(' ') }}</dd>
<dt>Acting for</dt><dd id="entity-uscc">{{ entity_uscc or '' }}</dd>
</dl>
<pre id="claims">{{ claims | tojson(indent=2) }}</pre>
<form method="post" action="{{ url_for('logout') }}"><button type="submit">Sign out everywhere</button></form>
{% else %}
<p id="status">not signed in</p>
{% endif %}
<ul>
<li><a id="login" href="{{ url_for('login') }}">Sign in with the provider</a></li>
<li><a id="step-up" href="{{ url_for('login', acr='"""
    + LOA3
    + """') }}">Sign in with two-step verification</a></li>
<li><a id="login-entity" href="{{ url_for('login', scope='openid profile entity') }}">Sign in for a company</a></li>
</ul>
</body></html>"""
)


def create_rp_app(*, issuer: str, base_url: str, client_id: str, client_secret: str, title: str) -> Flask:
    app = Flask(f"rp_{client_id}")
    app.secret_key = secrets.token_bytes(32)
    # every server here is on 127.0.0.1 and cookies ignore the port: one cookie name per platform
    app.config["SESSION_COOKIE_NAME"] = f"rp_{client_id}"
    signed_in: dict[str, dict[str, Any]] = {}  # server-side: the cookie only names an entry
    lock = threading.Lock()
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": "openid profile",
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )

    def current() -> dict[str, Any] | None:
        with lock:
            return signed_in.get(session.get("rp_sid", ""))

    def page(**context: Any) -> str:
        entry = current()
        claims = entry["claims"] if entry else {}
        entity = claims.get("entity")
        return render_template_string(
            PAGE,
            title=title,
            user=entry["userinfo"] if entry else None,
            claims=claims,
            entity_uscc=entity.get("uscc") if isinstance(entity, dict) else None,
            error=context.get("error"),
            signed_out=context.get("signed_out", False),
        )

    @app.get("/")
    def index() -> str:
        return page()

    @app.get("/login")
    def login():  # type: ignore[no-untyped-def]
        extra = {}
        if request.args.get("acr"):
            extra["acr_values"] = request.args["acr"]
        if request.args.get("scope"):
            extra["scope"] = request.args["scope"]
        session["asked_acr"] = request.args.get("acr", "")
        return oauth.idp.authorize_redirect(f"{base_url}/callback", **extra)

    @app.get("/callback")
    def callback():  # type: ignore[no-untyped-def]
        if request.args.get("iss") != issuer:  # RFC 9207: success and error both name the issuer
            abort(400)
        try:
            token = oauth.idp.authorize_access_token()
        except OAuthError as error:
            return page(error=error.error or "invalid_response")
        claims = dict(token["userinfo"])  # the verified ID token (nonce, signature, iss, aud, at_hash)
        asked = session.pop("asked_acr", "")
        if asked and claims.get("acr") != asked:
            return page(error="weaker_acr_than_asked")
        entry = {
            "claims": claims,
            "userinfo": dict(oauth.idp.userinfo(token=token)),
            "id_token": token["id_token"],
        }
        rp_sid = secrets.token_urlsafe(16)
        with lock:
            signed_in[rp_sid] = entry
        session["rp_sid"] = rp_sid
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout():  # type: ignore[no-untyped-def]
        with lock:
            entry = signed_in.pop(session.pop("rp_sid", ""), None)
        if entry is None:
            return redirect(url_for("index"))
        return oauth.idp.logout_redirect(
            post_logout_redirect_uri=f"{base_url}/signed-out", id_token_hint=entry["id_token"]
        )

    @app.get("/signed-out")
    def signed_out():  # type: ignore[no-untyped-def]
        try:
            oauth.idp.validate_logout_response()  # the state we sent comes back
        except OAuthError:
            abort(400)
        return page(signed_out=True)

    return app


@dataclass
class RelyingParty:
    """One platform: its client registration at the provider and the server answering for it."""

    client_id: str
    client_name: str
    client_secret: str
    url: str
    first_party: bool
    server: BaseWSGIServer | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    def registration(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_name": self.client_name,
            "client_secret": self.client_secret,
            "redirect_uris": [f"{self.url}/callback"],
            "post_logout_redirect_uris": [f"{self.url}/signed-out"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid profile entity",
            "first_party": self.first_party,
        }

    def start(self, issuer: str, port: int) -> RelyingParty:
        app = create_rp_app(
            issuer=issuer,
            base_url=self.url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            title=self.client_name,
        )
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name=self.client_id, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
