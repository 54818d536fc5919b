"""The kit's test platform and a tiny fake provider (discovery, JWKS, token, introspection) over HTTP."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify, request
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from adapters.rp_kit import RelyingParty, current_token

LEVELS = ["urn:cn:gov:loa:1", "urn:cn:gov:loa:2", "urn:cn:gov:loa:3"]
CLIENT_ID = "kit-platform"
CLIENT_SECRET = "kit-secret-0123456789-0123456789-0123"


@dataclass
class FakeProvider:
    """Publishes `published` keys; `token_response` and `introspection` say what the endpoints answer."""

    url: str = ""
    published: list[Any] = field(default_factory=list)
    jwks_requests: int = 0
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    token_response: tuple[int, dict[str, Any]] = (200, {"access_token": "x", "token_type": "Bearer"})
    introspection: dict[str, dict[str, Any]] = field(default_factory=dict)

    def sign(self, claims: dict[str, Any], *, key: Any = None, **header: Any) -> str:
        key = key or self.published[0]
        alg = "ES256" if isinstance(key, ECKey) else "RS256"
        return jwt.encode({"alg": alg, "kid": key.kid, **header}, claims, key)

    def claims(self, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {"iss": self.url, "aud": CLIENT_ID, "sub": "person-1", "iat": now, "exp": now + 300}
        return {**base, **extra}

    def app(self) -> Flask:
        app = Flask("fake_provider")

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            return {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "introspection_endpoint": f"{self.url}/introspect",
                "end_session_endpoint": f"{self.url}/logout",
                "jwks_uri": f"{self.url}/jwks.json",
                "acr_values_supported": LEVELS,
                "authorization_response_iss_parameter_supported": True,
            }

        @app.get("/jwks.json")
        def jwks() -> Any:
            self.jwks_requests += 1
            return {"keys": [key.as_dict(private=False) for key in self.published]}

        @app.post("/token")
        def token() -> Any:
            self.token_requests.append({"form": dict(request.form), "auth": request.authorization})
            status, body = self.token_response
            return jsonify(body), status

        @app.post("/introspect")
        def introspect() -> Any:
            return self.introspection.get(request.form["token"], {"active": False})

        return app


def make_key(kind: str = "RSA") -> Any:
    key = RSAKey.generate_key(2048) if kind == "RSA" else ECKey.generate_key("P-256")
    key.ensure_kid()
    return key


def platform_app(rp: RelyingParty) -> Flask:
    """A platform as the kit's README shows it: a page behind login and APIs behind bearer guards."""
    app = Flask("kit_platform")
    app.secret_key = secrets.token_bytes(32)
    app.config["SESSION_COOKIE_NAME"] = "kit_platform"
    rp.init_app(app)

    @app.get("/")
    @rp.require_login
    def home() -> Any:
        session = rp.current_session() or {}
        return {"user": rp.current_user(), **{k: session.get(k) for k in ("access_token", "id_token")}}

    @app.post("/refresh")
    @rp.require_login
    def refresh() -> Any:
        return {"access_token": rp.refresh()["access_token"]}

    @app.get("/api/profile")
    @rp.require_scope("profile")
    def profile() -> Any:
        return {"sub": (current_token() or {})["sub"]}

    @app.get("/api/strong")
    @rp.require_assurance(LEVELS[2])
    def strong() -> Any:
        return {"ok": True}

    @app.get("/api/entity")
    @rp.require_entity()
    def entity() -> Any:
        return {"uscc": (current_token() or {})["entity"]["uscc"]}

    @app.get("/api/entity-sign")
    @rp.require_entity(power="sign")
    def entity_sign() -> Any:
        return {"ok": True}

    return app
